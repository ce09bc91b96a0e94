"""End to end with the real shipped weights: drive, extract -> render, edit, and their bad inputs."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from reenact.io.image import read_image, write_image
from reenact.io.video import VideoWriter, probe, read_frames
from tests.cli_utils import run
from tests.media_utils import audio_duration, make_audio, make_video

SOURCE = Path("samples/source.jpg")


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 2 s of the sample driver with a speech-like tone muxed in (the sample itself is silent)."""
    tmp = tmp_path_factory.mktemp("drv")
    silent = tmp / "silent.mp4"
    with read_frames("samples/driver.mp4", max_frames=48) as frames, VideoWriter(silent, frames.fps, preset="ultrafast") as w:
        for f in frames:
            w.write(f.rgb)
    audio = make_audio(tmp / "voice.m4a", seconds=2.0, sr=44100)
    out = tmp / "driver.mp4"
    with read_frames(silent) as frames, VideoWriter(out, frames.fps, audio=audio, preset="ultrafast") as w:
        for f in frames:
            w.write(f.rgb)
    return out


def test_drive_end_to_end(driver: Path, tmp_path: Path) -> None:
    out, report, preview = tmp_path / "out.mp4", tmp_path / "run.json", tmp_path / "side.mp4"
    code, err = run("drive", str(SOURCE), str(driver), "-o", str(out), "--report", str(report),
                    "--preview", str(preview), "--max-size", "320")
    assert code == 0, err
    info, drv = probe(out), probe(driver)
    assert (info.width, info.height) == (320, 320)
    assert info.fps == drv.fps == Fraction(24)
    assert info.n_frames == 48
    assert info.has_audio and abs(audio_duration(out) - 2.0) <= 1 / 24
    data = json.loads(report.read_text())
    assert data["frames"] == 48 and len(data["similarities"]) == 48
    assert data["identity"]["mean"] >= data["identity"]["threshold"]
    assert data["missing_driver_frames"] == []
    assert data["refiner"] and data["shading"]  # both ship and pass their gates: on by default
    assert probe(preview).width > info.width
    # the face moves: frames differ from each other inside the face, not outside it
    with read_frames(out) as frames:
        imgs = [f.rgb.astype(int) for f in frames]
    assert max(np.abs(im - imgs[0]).max() for im in imgs) > 40
    top = np.abs(imgs[-1][:20] - imgs[0][:20])  # the top rows (background) stay put, up to H.264 noise
    assert top.mean() < 0.5 and top.max() <= 8


def test_extract_then_render(driver: Path, tmp_path: Path) -> None:
    track, plot = tmp_path / "track.csv", tmp_path / "plot.png"
    code, err = run("extract", str(driver), "-o", str(track), "--plot", str(plot))
    assert code == 0, err
    header = track.read_text().splitlines()[0].split(",")
    assert header[0] == "time" and {"AU12", "AU45", "jawOpen", "eyeBlinkLeft", "yaw"} <= set(header)
    assert len(track.read_text().splitlines()) == 49
    assert read_image(plot).shape[1] == 1200
    out = tmp_path / "rendered.mp4"
    code, err = run("render", str(SOURCE), str(track), "-o", str(out), "--max-size", "256")
    assert code == 0, err
    assert probe(out).n_frames == 48


@pytest.mark.parametrize("flavour", ["openface", "livelink", "json"])
def test_extract_formats(driver: Path, tmp_path: Path, flavour: str) -> None:
    out = tmp_path / f"t.{'json' if flavour == 'json' else 'csv'}"
    code, err = run("extract", str(driver), "-o", str(out), "--format", flavour)
    assert code == 0, err
    text = out.read_text()
    assert {"openface": "AU12_r", "livelink": "MouthSmileLeft", "json": '"channels"'}[flavour] in text


def test_extract_landmarks_json(tmp_path: Path) -> None:
    out = tmp_path / "lm.json"
    code, err = run("extract", str(SOURCE), "--landmarks", "-o", str(out))
    assert code == 0, err
    data = json.loads(out.read_text())
    face = data["frames"][0]["face"]
    assert len(face["landmarks"]) == 478 and len(face["box"]) == 4 and "yaw" in face["pose"]
    assert len(data["frames"][0]["params"]) == len(data["channels"])


def test_track_errors_name_the_column_and_row(tmp_path: Path) -> None:
    bad_col = tmp_path / "bad_col.csv"
    bad_col.write_text("time,AU12,smileyness\n0,0.5,1\n")
    code, err = run("render", str(SOURCE), str(bad_col), "-o", str(tmp_path / "a.mp4"))
    assert code == 2 and "smileyness" in err
    bad_val = tmp_path / "bad_val.csv"
    bad_val.write_text("time,AU12\n0,0.5\n0.04,1.7\n")
    code, err = run("render", str(SOURCE), str(bad_val), "-o", str(tmp_path / "b.mp4"))
    assert code == 2 and "AU12" in err and "row 2" in err
    assert not list(tmp_path.glob("*.mp4"))


def test_edit_and_grid(tmp_path: Path) -> None:
    out = tmp_path / "smile.png"
    code, err = run("edit", str(SOURCE), "--au", "26=0.8", "--emotion", "surprise:0.7", "-o", str(out))
    assert code == 0, err
    edited, original = read_image(out), read_image(SOURCE)
    assert edited.shape == original.shape
    assert np.abs(edited.astype(int) - original).max() > 40
    grid = tmp_path / "grid.png"
    code, err = run("edit", str(SOURCE), "--au", "12=1", "--arkit", "jawOpen=0.6", "--grid", "-o", str(grid))
    assert code == 0, err
    assert read_image(grid).shape == (2 * 256, 5 * 256, 3)


def test_no_face_in_source_or_driver(tmp_path: Path) -> None:
    blank = tmp_path / "wall.png"
    write_image(blank, np.full((200, 200, 3), 180, np.uint8))
    code, err = run("drive", str(blank), "samples/driver.mp4", "-o", str(tmp_path / "o.mp4"))
    assert code == 2 and "No face" in err and "wall.png" in err
    faceless = make_video(tmp_path / "faceless.mp4", n=12, size=(128, 96))
    code, err = run("drive", str(SOURCE), str(faceless), "-o", str(tmp_path / "o.mp4"))
    assert code == 2 and "No face" in err and "faceless.mp4" in err
    assert not (tmp_path / "o.mp4").exists()


def test_identity_fallback_and_strict(driver: Path, tmp_path: Path) -> None:
    out, report = tmp_path / "strict.mp4", tmp_path / "strict.json"
    # An impossible threshold: every changed frame fails, is softened and re-rendered, and --strict exits 3.
    code, err = run("drive", str(SOURCE), str(driver), "-o", str(out), "--max-size", "256", "--threshold", "0.9999",
                    "--strict", "--report", str(report))
    assert code == 3, err
    assert "identity threshold" in err
    data = json.loads(report.read_text())
    assert data["fallback_frames"] and data["identity"]["n_below"] > 0
    assert out.exists()  # kept for inspection, as the message says


def test_identity_command(tmp_path: Path) -> None:
    code, out = run("identity", str(SOURCE), str(SOURCE))
    assert code == 0 and "same person" in out
    report = tmp_path / "id.json"
    code, out = run("identity", str(SOURCE), "samples/driver.mp4", "--report", str(report))
    assert code == 3 and "NOT the same person" in out and "144 frames" in out
    assert len(json.loads(report.read_text())["similarities"]) == 144
    blank = tmp_path / "wall.png"
    write_image(blank, np.full((120, 120, 3), 200, np.uint8))
    code, out = run("identity", str(blank), str(SOURCE))
    assert code == 2 and "wall.png" in out
    # a clip whose face leaves for 3 frames, 13 frames long (not a whole number of tracking batches)
    with read_frames(SOURCE.parent / "driver.mp4") as frames:
        face = [f.rgb for _, f in zip(range(10), frames)]
    clip = tmp_path / "gap.mp4"
    with VideoWriter(clip, 24, preset="ultrafast") as w:
        for rgb in face[:5] + [np.zeros_like(face[0])] * 3 + face[5:]:
            w.write(rgb)
    code, out = run("identity", str(SOURCE), str(clip), "--report", str(report), "--overwrite")
    sims = json.loads(report.read_text())["similarities"]
    assert code == 3 and len(sims) == 13 and sims[5:8] == [-1.0, -1.0, -1.0] and min(sims[:5] + sims[8:]) > -1.0  # scored: a face


def test_train_estimator_on_user_photos(tmp_path: Path) -> None:
    from reenact.weights import load_model

    code, err = run("train", "estimator", "--steps", "5", "--data", str(SOURCE), "--out", str(tmp_path / "w"),
                    "--workdir", str(tmp_path / "work"))
    assert code == 0, err
    net = load_model("estimator", "cpu", tmp_path / "w")  # contract, sha256 and strict keys check out
    assert net.contract.kwargs["n_out"] == 52
    assert (tmp_path / "work" / "meshes.npz").exists()
    assert run("train", "refiner")[0] == 2


def test_models_leave_torch_threads_alone() -> None:
    import torch

    from reenact.pipeline import Models

    before = torch.get_num_threads()
    torch.set_num_threads(before + 1)
    try:
        Models(torch.device("cpu")).estimator  # building and loading must not touch the process-wide setting
        assert torch.get_num_threads() == before + 1
    finally:
        torch.set_num_threads(before)


def test_a_share_of_the_motion_halves_shapes_turn_and_eye_area_alike() -> None:
    """The identity fallback's softening: every part of the motion at the failing frames, in one place."""
    from fractions import Fraction

    import inspect

    from reenact.render.renderer import FaceRenderer
    from reenact.rendering import PER_FRAME, Motion

    assert set(PER_FRAME) <= set(inspect.signature(FaceRenderer.render_with_points).parameters)
    rest = np.full(52, 0.2, np.float32)
    motion = Motion(np.ones((4, 52), np.float32), np.full((4, 3), 6.0, np.float32), Fraction(25),
                    area=np.full((4, 16), 2.0, np.float32), shut=np.ones(4, np.float32))
    shapes, streams = motion.frames(np.array([1, 3]), 0.5, rest)
    assert np.allclose(shapes, 0.6) and shapes.shape == (2, 52)
    assert set(streams) == set(PER_FRAME)  # every per-frame stream reaches the renderer
    assert np.allclose(streams["rotation"], 3.0) and np.allclose(streams["area"], 1.0)
    assert np.allclose(streams["shut"], 0.5)
    bare = Motion(np.ones((4, 52), np.float32), None, Fraction(25))
    assert list(bare.frames(np.array([0]), 0.5, rest)[1].values()) == [None, None, None]
    whole, streams = motion.frames(np.array([2]))
    assert np.array_equal(whole, motion.shapes[[2]]) and np.array_equal(streams["area"], motion.area[[2]])
