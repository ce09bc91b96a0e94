"""A command's outputs together or not at all, OS errors as one line, damaged media and caches, big photos
(GitHub issue 20).

The failures are real where the machine allows (a truncated video written with the project's own writer, a damaged
cache file, a 12000x9000 photo, a 249-byte name) and simulated where it does not (a full disk, a folder the tests'
root user could still write to).
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from reenact.errors import InputError, OutputError
from reenact.io.atomic import OutputGroup
from tests.cli_utils import run

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "samples" / "source.jpg"
DRIVER = ROOT / "samples" / "driver.mp4"


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if ".partial-" in p.name)


def one_error_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in text, text
    return lines[0]


@pytest.fixture()
def track(tmp_path: Path) -> Path:
    path = tmp_path / "track.csv"
    path.write_text("time,jawOpen\n0,0\n0.2,0.5\n")  # 6 frames at 25 fps
    return path


def full_disk_for(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Writing text to a file whose name contains `name` fails as on a full disk."""
    real = Path.write_text

    def write_text(self: Path, *args: object, **kwargs: object) -> int:
        if name in self.name:
            raise OSError(errno.ENOSPC, "No space left on device", str(self))
        return real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "write_text", write_text)


# ------------------------------------------------------------------------------------------------ the commit group
def test_group_commits_all_or_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(RuntimeError), OutputGroup() as outputs:
        outputs.write_text(tmp_path / "a.json", "a")
        outputs.stage(tmp_path / "b.mp4").write_bytes(b"b")
        raise RuntimeError("the second output failed")
    assert list(tmp_path.iterdir()) == []
    real = os.replace
    calls = []

    def rename_fails_second(src: object, dst: object) -> None:  # the second rename fails: the first is undone
        calls.append(dst)
        if len(calls) == 2:
            raise OSError(errno.EIO, "Input/output error")
        real(src, dst)

    monkeypatch.setattr(os, "replace", rename_fails_second)
    with pytest.raises(OutputError, match="Cannot move"), OutputGroup() as outputs:
        outputs.write_text(tmp_path / "a.json", "a")
        outputs.write_text(tmp_path / "b.json", "b")
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    (tmp_path / "b.json").write_text("old")
    with pytest.raises(OutputError, match="already exists"), OutputGroup() as outputs:
        outputs.write_text(tmp_path / "a.json", "a")
        outputs.write_text(tmp_path / "b.json", "b")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.json"] and (tmp_path / "b.json").read_text() == "old"


def test_render_report_on_a_full_disk_leaves_no_video(tmp_path: Path, track: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    full_disk_for("report", monkeypatch)
    out = tmp_path / "out.mp4"
    code, text = run("render", str(SOURCE), str(track), "-o", str(out), "--report", str(tmp_path / "report.json"),
                     "--mouth", "paint")
    assert code == 2 and "no space left" in one_error_line(text) and "report.json" in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["track.csv"]  # no video, no report, no temporary


def test_drive_preview_and_report_appear_together(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    driver = tmp_path / "short.mp4"
    cut(DRIVER, driver, 8)
    args = ("drive", str(SOURCE), str(driver), "-o", str(tmp_path / "out.mp4"), "--preview",
            str(tmp_path / "side.mp4"), "--report", str(tmp_path / "report.json"), "--mouth", "paint")
    full_disk_for("report", monkeypatch)
    code, text = run(*args)
    assert code == 2 and "no space left" in one_error_line(text)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["short.mp4"]
    monkeypatch.undo()
    code, text = run(*args)
    assert code == 0, text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4", "report.json", "short.mp4", "side.mp4"]


def test_library_render_commits_its_own_group(tmp_path: Path, track: Path) -> None:
    from reenact.pipeline import Models, RenderOptions, RenderSpec, render

    report = render(RenderSpec(SOURCE, track, tmp_path / "lib.mp4", RenderOptions(mouth="paint")), Models())
    assert report.frames == 6 and (tmp_path / "lib.mp4").stat().st_size > 0 and leftovers(tmp_path) == []


# ------------------------------------------------------------------------------------------------ names and OS errors
def test_a_249_byte_output_name_is_written(tmp_path: Path, track: Path) -> None:
    out = tmp_path / ("n" * 245 + ".mp4")
    code, text = run("render", str(SOURCE), str(track), "-o", str(out), "--mouth", "paint")
    assert code == 0, text
    assert out.stat().st_size > 0 and leftovers(tmp_path) == []


@pytest.mark.parametrize("command", ["render", "extract", "edit"])
def test_a_300_byte_output_name_is_one_line(tmp_path: Path, track: Path, command: str) -> None:
    out = tmp_path / ("n" * 296 + (".csv" if command == "extract" else ".png" if command == "edit" else ".mp4"))
    args = {"render": ("render", str(SOURCE), str(track)), "extract": ("extract", str(DRIVER)),
            "edit": ("edit", str(SOURCE), "--au", "12=0.5")}[command]
    code, text = run(*args, "-o", str(out))
    assert code == 2 and "at most 255" in one_error_line(text)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["track.csv"]


def test_a_folder_name_too_long_is_one_line(tmp_path: Path, track: Path) -> None:
    code, text = run("render", str(SOURCE), str(track), "-o", str(tmp_path / ("d" * 300) / "out.mp4"))
    assert code == 2 and "too long" in one_error_line(text)


def test_unwritable_batch_output_folder_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = Path.mkdir

    def denied(self: Path, *args: object, **kwargs: object) -> None:
        if self.name == "locked":
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "mkdir", denied)
    code, text = run("batch", str(SOURCE), str(DRIVER), "-o", str(tmp_path / "locked"))
    line = one_error_line(text)
    assert code == 2 and "permission denied" in line and "locked" in line


def test_identity_report_on_a_full_disk_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    full_disk_for("same", monkeypatch)
    code, text = run("identity", str(SOURCE), str(SOURCE), "--report", str(tmp_path / "same.json"))
    assert code == 2 and "no space left" in one_error_line(text)
    assert list(tmp_path.iterdir()) == []


def test_os_errors_read_the_same_everywhere() -> None:
    from reenact.errors import ReenactError, from_os_error

    for code, words in [(errno.ENOSPC, "no space left"), (errno.EACCES, "permission denied"),
                        (errno.ENAMETOOLONG, "too long"), (errno.EROFS, "read-only")]:
        err = from_os_error(OSError(code, os.strerror(code), "out/x.mp4"))
        assert isinstance(err, OutputError) and err.exit_code == 2 and words in str(err) and "out/x.mp4" in str(err)
    other = from_os_error(OSError(errno.EIO, "Input/output error", "x"))
    assert type(other) is ReenactError and other.exit_code == 1


# ------------------------------------------------------------------------------------------------ damaged media
def cut(src: Path, dst: Path, frames: int, keep: float = 1.0) -> Path:
    """The first `frames` frames of `src` written with reenact's own VideoWriter, then only the first `keep` of the
    file's bytes kept (a download or copy that stopped)."""
    from reenact.io.video import VideoWriter, read_frames

    full = dst.with_name(f"full{dst.suffix}")
    with read_frames(src) as reader, VideoWriter(full, reader.fps, crf=23, preset="ultrafast") as writer:
        for f in reader:
            if f.index >= frames:
                break
            writer.write(f.rgb)
    data = full.read_bytes()
    full.unlink()
    dst.write_bytes(data[: int(len(data) * keep)])
    return dst


@pytest.mark.parametrize("suffix", [".mkv", ".mp4"])
def test_truncated_driver_renders_what_decodes_and_says_so(tmp_path: Path, suffix: str) -> None:
    driver = cut(DRIVER, tmp_path / f"cut{suffix}", 48, keep=0.6)
    out, report = tmp_path / "out.mp4", tmp_path / "run.json"
    code, text = run("drive", str(SOURCE), str(driver), "-o", str(out), "--report", str(report), "--mouth", "paint")
    assert code == 0, text
    data = json.loads(report.read_text())
    damage = data["damage"]
    assert damage["frames_expected"] == 48 and 10 < damage["frames_decoded"] < 48, damage
    assert data["frames"] == damage["frames_decoded"]
    warning = [line for line in text.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1 and f"{damage['frames_decoded']} of 48" in warning[0] and "cut" in warning[0]


def test_truncated_driver_under_strict_is_exit_2(tmp_path: Path) -> None:
    driver = cut(DRIVER, tmp_path / "cut.mkv", 48, keep=0.6)
    code, text = run("drive", str(SOURCE), str(driver), "-o", str(tmp_path / "out.mp4"), "--strict")
    line = one_error_line(text)
    assert code == 2 and "--strict" in line and "of 48 frames" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.mkv"]


def test_intact_driver_reports_no_damage(tmp_path: Path) -> None:
    from reenact.analysis import Models, video_track

    driver = cut(DRIVER, tmp_path / "whole.mkv", 24)
    track = video_track(driver, Models())
    assert len(track) == 24 and "damage" not in track.meta


# ------------------------------------------------------------------------------------------------ batch cache
def test_batch_cache_heals_and_force_rebuilds(tmp_path: Path) -> None:
    from reenact.batch import BatchConfig, plan_jobs, run_batch

    driver = cut(DRIVER, tmp_path / "talk.mp4", 6)
    out = tmp_path / "out"
    jobs = plan_jobs(SOURCE, driver, out)
    first = run_batch(jobs, out, BatchConfig(device="cpu"))
    assert (first.ok, first.tracks_extracted) == (1, 1)
    [cache] = (out / ".reenact-cache" / "tracks").glob("*.json")
    cache.write_text(cache.read_text()[:100])  # a damaged entry: cut short
    second = run_batch(jobs, out, BatchConfig(device="cpu", force=True))
    assert (second.ok, second.failed, second.tracks_extracted) == (1, 0, 1)
    assert json.loads(cache.read_text())["meta"]["frames"] == 6  # replaced by a whole one
    cache.write_text("{}")
    jobs[0].output.unlink()
    third = run_batch(jobs, out, BatchConfig(device="cpu"))  # healed without --force too
    assert (third.ok, third.tracks_extracted) == (1, 1)
    fourth = run_batch(jobs, out, BatchConfig(device="cpu", force=True))  # --force tracks again a good entry too
    assert (fourth.ok, fourth.tracks_extracted, fourth.tracks_cached) == (1, 1, 0)


def test_batch_rerun_with_nothing_to_do_loads_no_model(tmp_path: Path) -> None:
    """Every output done: the batch imports neither torch, OpenCV nor PyAV (benchmarks/bench_batch.py times it)."""
    import subprocess
    import sys

    out = tmp_path / "out"
    out.mkdir()
    (out / "source__driver.mp4").write_bytes(b"done")
    code = ("import sys\nfrom tests.checkout import use_checkout_cli\nuse_checkout_cli()\n"
            "from reenact_cli.app import app\n"
            "try:\n    app(['--device', 'cpu', 'batch', *sys.argv[1:]])\n"
            "except SystemExit as e:\n    assert not e.code\n"
            "print(sorted(m for m in ('torch', 'cv2', 'av') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code, str(SOURCE), str(DRIVER), "-o", str(out)], capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "0 ok, 1 skipped" in proc.stdout and proc.stdout.strip().endswith("[]"), proc.stdout + proc.stderr


# ------------------------------------------------------------------------------------------------ photos and options
def test_large_photo_with_a_tight_face_is_found(tmp_path: Path) -> None:
    """12000x9000 with a 1170 px face and nothing around it: the whole photo letterboxed to the detector's input
    shows the face at 12-19 px; the tiles find it."""
    from PIL import Image

    face = Image.open(SOURCE).convert("RGB").crop((150, 40, 300, 210))
    k = 1170 / 94  # the sample's face is about 94 px wide
    face = face.resize((round(face.width * k), round(face.height * k)), Image.Resampling.BILINEAR)
    photo = Image.new("RGB", (12000, 9000), (200, 200, 200))
    photo.paste(face, (9000, 6000))
    photo.save(tmp_path / "big.jpg", quality=85)
    del photo
    code, text = run("edit", str(tmp_path / "big.jpg"), "-o", str(tmp_path / "edit.png"), "--au", "12=0.5")
    assert code == 0, text
    assert (tmp_path / "edit.png").stat().st_size > 0


def test_speak_options_and_identity_threshold_are_checked_in_the_library() -> None:
    import math

    import numpy as np

    from reenact.identity import IdentityChecker
    from reenact.speak import SpeakOptions

    for bad in (math.nan, math.inf, -0.5, 2.5):
        with pytest.raises(InputError, match="--strength"):
            SpeakOptions(strength=bad)
    with pytest.raises(InputError, match="--fps"):
        SpeakOptions(fps=0)  # type: ignore[arg-type]
    SpeakOptions(strength=2.0)

    class Embedder:  # never reached: the threshold is refused first
        threshold = 0.5

    for bad in (math.nan, -1.0, 2.0, 0.0, 1.0):
        with pytest.raises(InputError, match="--threshold"):
            IdentityChecker(Embedder(), np.zeros((8, 8, 3), np.uint8), np.zeros((478, 3)),  # type: ignore[arg-type]
                            bad)


def livelink_csv(path: Path, rate: int, seconds: float, start_frame: int = 0) -> Path:
    """A Live Link Face take: one row per frame at `rate`, timecodes HH:MM:SS:FF.fff counting FF to rate - 1."""
    from reenact.params import LIVELINK52, LIVELINK_EXTRA

    rows = ["Timecode,BlendShapeCount," + ",".join(LIVELINK52 + LIVELINK_EXTRA)]
    for i in range(int(seconds * rate)):
        n = start_frame + i
        sec, ff = divmod(n, rate)
        tc = f"10:{sec // 60 % 60:02d}:{sec % 60:02d}:{ff:02d}.500"
        rows.append(f"{tc},61," + ",".join(["0.1"] * (len(LIVELINK52) + len(LIVELINK_EXTRA))))
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.mark.parametrize("rate", [30, 60])
def test_livelink_take_is_read_at_its_recorded_rate(tmp_path: Path, rate: int) -> None:
    from fractions import Fraction

    from reenact.params import Track

    track = Track.read(livelink_csv(tmp_path / "take.csv", rate, 2.5, start_frame=7))
    assert track.meta["timecode_fps"] == str(rate)
    assert track.frame_rate() == Fraction(rate)
    assert abs(float(track.times[-1]) - (2.5 * rate - 1) / rate) < 0.01  # 2.5 s, not 2.5 * rate / 60 s


def test_livelink_export_round_trips_whatever_its_frame_fields(tmp_path: Path) -> None:
    """reenact's own exports write 60ths of a second with fractions: sparse or 25 fps rows are not a 30 fps take."""
    import numpy as np

    from reenact.params import Track

    for times in (np.arange(60) / 25, np.arange(60) / 50, np.arange(90) / 60, np.array([0.0, 1.2, 2.3, 3.1]),
                  np.arange(10) / 2):
        path = Track(times, np.zeros((len(times), 1), np.float32), ["jawOpen"]).write(tmp_path / "ll.csv", "livelink")
        back = Track.read(path)
        assert np.allclose(back.times, times, atol=1e-4), (times, back.times)


def test_batch_renders_a_damaged_driver_as_far_as_it_decodes(tmp_path: Path) -> None:
    from reenact.batch import BatchConfig, JobOptions, plan_jobs, run_batch
    from reenact.pipeline import RenderOptions

    driver = cut(DRIVER, tmp_path / "cut.mkv", 48, keep=0.6)
    out = tmp_path / "out"
    events: list[dict] = []
    summary = run_batch(plan_jobs(SOURCE, driver, out), out, BatchConfig(device="cpu"), events.append)
    [job] = summary.jobs
    assert job.status == "ok" and "of 48 frames decode" in job.message and 10 < job.frames < 48
    assert any(e["event"] == "track" and "of 48 frames decode" in e.get("message", "") for e in events)
    strict = JobOptions(render=RenderOptions(strict=True))
    summary = run_batch(plan_jobs(SOURCE, driver, out, strict), out, BatchConfig(device="cpu", force=True))
    [job] = summary.jobs
    assert job.status == "failed" and job.exit_code == 2 and "--strict" in job.message
