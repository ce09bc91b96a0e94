"""Track files round-trip (issue 20): hand-made CSVs, and every export format read back at its own frame rate."""

from __future__ import annotations

import errno
import tracemalloc
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from reenact.errors import TrackError
from reenact.io.video import VideoWriter, probe, read_frames
from reenact.params import ARKIT52, Track
from reenact.pipeline import frame_times, track_fps
from tests.cli_utils import run

SOURCE = Path("samples/source.jpg")


def test_csv_with_utf8_bom_is_read(tmp_path: Path) -> None:
    path = tmp_path / "sheet.csv"
    path.write_bytes("\ufefftime,AU12\r\n0,0.1\r\n0.04,0.5\r\n".encode("utf-8"))
    track = Track.read(path)
    assert track.channels == ["AU12"] and len(track) == 2
    assert track.column("AU12")[1] == pytest.approx(0.5)


def test_csv_with_only_a_time_column_is_one_message(tmp_path: Path) -> None:
    path = tmp_path / "times.csv"
    path.write_text("time\n0\n0.04\n0.08\n")
    with pytest.raises(TrackError, match="only a `time` column"):
        Track.read(path)
    code, out = run("render", str(SOURCE), str(path), "-o", str(tmp_path / "out.mp4"))
    assert code == 2 and "only a `time` column" in out and "Traceback" not in out
    assert not (tmp_path / "out.mp4").exists()


RATES = [Fraction(24), Fraction(25), Fraction(30000, 1001)]
FORMATS = [("csv", ".csv"), ("json", ".json"), ("openface", ".csv"), ("livelink", ".csv")]


def _track(n: int, fps: Fraction) -> Track:
    """`n` rows at `fps` with a slow smile and a head turn, as `extract` writes them (meta fps as a string)."""
    ramp = np.linspace(0.0, 1.0, n, dtype=np.float32)
    values = np.stack([ramp, ramp[::-1] * 0.5, ramp * 20 - 10], axis=1)
    return Track(np.arange(n) / float(fps), values, ["mouthSmileLeft", "jawOpen", "yaw"], {"fps": str(fps)})


@pytest.mark.parametrize("fmt,suffix", FORMATS)
@pytest.mark.parametrize("fps", RATES, ids=str)
@pytest.mark.parametrize("n", [2, 7, 144, 180])
def test_every_format_round_trips_frames_fps_and_duration(tmp_path: Path, fmt: str, suffix: str, fps: Fraction,
                                                          n: int) -> None:
    track = _track(n, fps)
    back = Track.read(track.write(tmp_path / f"t{suffix}", fmt))
    rate = track_fps(back)
    assert len(back) == n
    assert rate == fps and isinstance(rate, Fraction)
    times = frame_times(back, rate)
    assert len(times) == n  # render makes one frame per row
    assert Fraction(len(times)) / rate == Fraction(n) / fps  # the same duration, exactly
    np.testing.assert_allclose(back.times, track.times, atol=1e-5)


def test_livelink_timecodes_are_unique_and_not_negative(tmp_path: Path) -> None:
    for fps in (Fraction(25), Fraction(30000, 1001), Fraction(24000, 1001)):
        path = _track(3000, fps).write(tmp_path / "ll.csv", "livelink")
        codes = [line.split(",")[0] for line in path.read_text().splitlines()[1:]]
        assert len(set(codes)) == len(codes) == 3000
    vfr = Track(np.array([0.0, 0.031, 0.07, 0.1, 0.1339, 0.2]), np.zeros((6, 1)), ["jawOpen"])
    back = Track.read(vfr.write(tmp_path / "vfr.csv", "livelink"))
    np.testing.assert_allclose(back.times, vfr.times, atol=1e-5)
    with pytest.raises(TrackError, match="negative"):
        Track(np.array([-1.0, 0.0]), np.zeros((2, 1)), ["jawOpen"]).write(tmp_path / "neg.csv", "livelink")


def test_openface_with_millisecond_timestamps_keeps_its_rate(tmp_path: Path) -> None:
    """OpenFace itself writes timestamps in ms: a 24 fps clip of 144 frames was read as 500/21 fps, 143 frames."""
    for fps, n in ((Fraction(24), 144), (Fraction(30000, 1001), 180)):
        path = tmp_path / "of.csv"
        rows = ["frame,timestamp,AU12_r"] + [f"{i + 1},{i / float(fps):.3f},1.0" for i in range(n)]
        path.write_text("\n".join(rows) + "\n")
        back = Track.read(path)
        assert track_fps(back) == fps and len(frame_times(back, fps)) == n


def test_sparse_keyframes_are_interpolated_at_the_output_rate(tmp_path: Path) -> None:
    path = tmp_path / "keys.csv"
    path.write_text("time,jawOpen\n0,0\n2,1\n4,0\n")
    track = Track.read(path)
    assert track.frame_rate() is None and track_fps(track) == 25
    times = frame_times(track, Fraction(25))
    assert len(times) == 101
    jaw = track.at(times)[:, 0]
    assert jaw[25] == pytest.approx(0.5) and jaw[50] == pytest.approx(1.0)  # a ramp, not a slideshow
    assert len(frame_times(track, Fraction(30000, 1001))) == round(4 * 30000 / 1001) + 1  # --fps 30000/1001


def test_a_rate_outside_8_to_240_fps_is_not_rendered_at(tmp_path: Path) -> None:
    keys = Track(np.arange(3) * 2.0, np.zeros((3, 1)), ["jawOpen"], {"fps": "1/2"})
    assert track_fps(Track.read(keys.write(tmp_path / "keys.json"))) == 25  # keyframes, whatever meta says
    dense = Track(np.arange(100) / 1000.0, np.zeros((100, 1)), ["jawOpen"])
    assert track_fps(Track.read(dense.write(tmp_path / "dense.csv"))) == 25  # 1000 rows a second: resampled


def test_a_ten_hour_gap_or_negative_times_are_one_message(tmp_path: Path) -> None:
    path = tmp_path / "gap.csv"
    path.write_text("time,jawOpen\n0,0\n36000,1\n")
    code, out = run("render", str(SOURCE), str(path), "-o", str(tmp_path / "out.mp4"))
    assert code == 2 and "36000 s apart" in out and "Traceback" not in out
    assert not (tmp_path / "out.mp4").exists()
    path.write_text("time,jawOpen\n-2,0\n-1,1\n")
    code, out = run("render", str(SOURCE), str(path), "-o", str(tmp_path / "out.mp4"))
    assert code == 2 and "the last row is at -1 s" in out


@pytest.fixture(scope="module")
def drivers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The sample driver's first 12 frames re-timed at 24, 25 and 30000/1001 fps, and at a phone's uneven ~30 fps."""
    tmp = tmp_path_factory.mktemp("drivers")
    out = {}
    for name, fps in (("24", Fraction(24)), ("25", Fraction(25)), ("ntsc", Fraction(30000, 1001))):
        out[name] = tmp / f"{name}.mp4"
        with read_frames("samples/driver.mp4", max_frames=12) as frames, \
                VideoWriter(out[name], fps, preset="ultrafast") as writer:
            for frame in frames:
                writer.write(frame.rgb)
    out["vfr"] = tmp / "vfr.mp4"
    with read_frames("samples/driver.mp4", max_frames=12) as frames, av.open(str(out["vfr"]), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = frames.info.width, frames.info.height, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 90000)
        for i, frame in enumerate(frames):
            picture = av.VideoFrame.from_ndarray(frame.rgb, format="rgb24")
            picture.pts, picture.time_base = 3000 * i + (0, 450, -300, 900)[i % 4], Fraction(1, 90000)
            container.mux(stream.encode(picture))
        container.mux(stream.encode(None))
    return out


@pytest.mark.parametrize("driver,fmt", [("ntsc", "livelink"), ("25", "livelink"), ("vfr", "livelink"),
                                        ("24", "openface"), ("ntsc", "openface"), ("vfr", "openface"),
                                        ("ntsc", "csv"), ("vfr", "csv"), ("ntsc", "json"), ("vfr", "json")])
def test_extract_then_render_keeps_frames_and_rate(drivers: dict[str, Path], tmp_path: Path, driver: str,
                                                   fmt: str) -> None:
    track, video = tmp_path / f"track.{'json' if fmt == 'json' else 'csv'}", tmp_path / "out.mp4"
    code, out = run("extract", str(drivers[driver]), "-o", str(track), "--format", fmt)
    assert code == 0, out
    rows = len(Track.read(track))
    code, out = run("render", str(SOURCE), str(track), "-o", str(video), "--max-size", "256")
    assert code == 0, out
    info, source = probe(video), probe(drivers[driver])
    assert info.n_frames == rows
    if driver == "vfr" and fmt != "json":  # an odd measured rate (7200/241): 12 rows of times carry it to 1e-4
        assert abs(info.fps / source.fps - 1) < 1e-4
    else:
        assert info.fps == source.fps
    assert abs(rows / source.fps - source.duration) < 1 / source.fps


@pytest.mark.parametrize("fmt", ["csv", "openface", "livelink"])
def test_a_large_csv_is_parsed_in_little_memory(tmp_path: Path, fmt: str) -> None:
    """A 200 MB CSV track peaked at 2.5 GB while parsing (every cell a Python string at once)."""
    n = 6000
    values = np.random.default_rng(0).uniform(0, 1, (n, 52)).astype(np.float32)
    path = Track(np.arange(n) / 30.0, values, list(ARKIT52)).write(tmp_path / "big.csv", fmt)
    tracemalloc.start()
    try:
        back = Track.read(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(back) == n and track_fps(back) == 30
    assert peak < 4 * path.stat().st_size  # was 10 to 15 times


def test_livelink_errors_name_the_row(tmp_path: Path) -> None:
    path = _track(3, Fraction(25)).write(tmp_path / "ll.csv", "livelink")
    lines = path.read_text().splitlines()
    lines[2] = "soon" + lines[2][lines[2].index(","):]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(TrackError, match=r"Timecode row 2 is 'soon', not HH:MM:SS:FF.fff"):
        Track.read(path)
    with pytest.raises(TrackError, match="no Timecode column"):
        Track.read(_track(3, Fraction(25)).write(tmp_path / "plain.csv"), "livelink")


@pytest.mark.parametrize("fmt", ["csv", "json", "livelink"])
def test_extract_on_a_full_disk_is_one_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str) -> None:
    def full(self: Track, path: Path, flavour: str = "auto") -> Path:
        Path(path).write_text("time,AU12\n0,")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Track, "write", full)
    out = tmp_path / "out" / f"t.{'json' if fmt == 'json' else 'csv'}"
    out.parent.mkdir()
    code, text = run("extract", str(SOURCE), "-o", str(out), "--format", fmt)
    assert code == 2 and "No space left on device" in text and "Traceback" not in text  # as the video writer
    assert list(out.parent.iterdir()) == []  # neither the track nor its temporary
