"""Video output: atomic files, overwrite rules, audio carried (copy / re-encode / external file) within one frame."""

from __future__ import annotations

import time
from fractions import Fraction as F
from pathlib import Path

import av
import numpy as np
import pytest
from media_utils import audio_duration, draw_frame, make_audio, make_video

from reenact.errors import MediaError, OutputError
from reenact.io.video import VideoWriter, probe, read_frames
from reenact.io.writer import EncodeThread

FPS = F(30000, 1001)


def _transcode(src: Path, out: Path, **kw: object) -> Path:
    """Stream every frame of `src` into `out` (the pipeline's shape: read_frames -> VideoWriter)."""
    info = probe(src)
    with VideoWriter(out, info.fps, preset="ultrafast", **kw) as w:  # type: ignore[arg-type]
        for f in read_frames(src):
            w.write(f.rgb)
    return out


def _audio_stream(path: Path) -> tuple[str, float]:
    """(codec, duration in seconds as the container states it)."""
    with av.open(str(path)) as c:
        s = c.streams.audio[0]
        return s.codec.canonical_name, float(s.duration * s.time_base)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".partial-" in p.name)


@pytest.mark.parametrize(
    ("codec", "ext", "expect"),
    [("aac", ".mp4", "aac"), ("libmp3lame", ".mp4", "mp3"), ("pcm_s16le", ".mkv", "aac")],
)
def test_driver_audio_is_carried_within_one_frame(tmp_path: Path, codec: str, ext: str, expect: str) -> None:
    # aac/mp3 are copied into the mp4, pcm cannot be and is re-encoded to AAC.
    src = make_video(tmp_path / f"driver{ext}", n=30, fps=FPS, audio=codec, sr=44100, channels=2)
    out = _transcode(src, tmp_path / "out.mp4", audio=src)
    got_codec, stated = _audio_stream(out)
    video_s = float(30 / FPS)
    assert got_codec == expect
    assert abs(stated - video_s) < float(1 / FPS)
    assert abs(audio_duration(out) - video_s) < float(1 / FPS)
    assert probe(out).n_frames == 30


@pytest.mark.parametrize("mode", ["copy", "encode"])
def test_audio_stays_in_sync(tmp_path: Path, mode: str) -> None:
    sr = 48000
    wave = np.zeros(sr * 2, np.float32)  # silence with a 1 kHz burst at exactly 0.5 s
    wave[sr // 2: sr // 2 + 960] = 0.5 * np.sin(2 * np.pi * 1000 * np.arange(960) / sr)
    src = make_video(tmp_path / "click.mp4", n=40, fps=25, audio="aac", sr=sr, wave=wave, audio_seconds=2.0)
    out = _transcode(src, tmp_path / "out.mp4", audio=src, audio_mode=mode)
    assert _audio_stream(out)[0] == "aac"
    with av.open(str(out)) as c:
        x = np.concatenate([fr.to_ndarray()[0] for fr in c.decode(audio=0)])
    onset = np.argmax(np.abs(x) > 0.1) / sr
    assert abs(onset - 0.5) < 1 / 25
    assert abs(len(x) / sr - 40 / 25) < 1 / 25  # 2 s of audio trimmed to the 1.6 s video


def test_external_audio_files_are_muxed_and_fitted(tmp_path: Path) -> None:
    video = make_video(tmp_path / "silent.mp4", n=30, fps=FPS)
    video_s = float(30 / FPS)
    cases = [
        ("long.wav", 1.6, 16000, "aac"),  # WAV cannot go into mp4: encoded, trimmed
        ("speech.mp3", 1.6, 44100, "mp3"),  # copied, trimmed at a packet boundary
        ("short.m4a", 0.5, 48000, "aac"),  # too short to copy when the duration is known: encoded and padded
    ]
    for name, seconds, sr, codec in cases:
        audio = make_audio(tmp_path / name, seconds=seconds, sr=sr)
        out = _transcode(video, tmp_path / f"{name}.mp4", audio=audio, expected_duration=probe(video).duration)
        got, stated = _audio_stream(out)
        assert got == codec, name
        assert abs(stated - video_s) < float(1 / FPS), name
        assert abs(audio_duration(out) - video_s) < float(1 / FPS), name


def test_short_copied_audio_without_hint_just_ends(tmp_path: Path) -> None:
    video = make_video(tmp_path / "silent.mp4", n=30, fps=FPS)
    audio = make_audio(tmp_path / "short.m4a", seconds=0.4, sr=48000)
    out = _transcode(video, tmp_path / "out.mp4", audio=audio)
    got, stated = _audio_stream(out)
    assert got == "aac" and stated < 0.5


def test_audio_source_problems(tmp_path: Path) -> None:
    video = make_video(tmp_path / "silent.mp4", n=3)
    with pytest.raises(MediaError, match="not found"):
        VideoWriter(tmp_path / "o.mp4", 25, audio=tmp_path / "nope.wav")
    with pytest.raises(MediaError, match="no audio stream"):
        _transcode(video, tmp_path / "o.mp4", audio=video)
    assert not (tmp_path / "o.mp4").exists() and _leftovers(tmp_path) == []


def test_exception_inside_writer_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    with pytest.raises(RuntimeError, match="boom"):
        with VideoWriter(out, 25, preset="ultrafast") as w:
            for i in range(5):
                w.write(draw_frame(i, (64, 48)))
            assert _leftovers(tmp_path), "frames go to a hidden temporary file while writing"
            raise RuntimeError("boom")
    assert not out.exists() and _leftovers(tmp_path) == []


def test_decode_error_mid_stream_leaves_nothing(tmp_path: Path) -> None:
    src = make_video(tmp_path / "full.mp4", n=40, size=(96, 64))
    with av.open(str(src)) as c:
        offsets = [p.pos for p in c.demux(video=0) if p.size]
    bad = tmp_path / "cut.mp4"
    bad.write_bytes(src.read_bytes()[: offsets[25]])
    out = tmp_path / "out.mp4"
    with pytest.raises(MediaError):
        _transcode(bad, out)
    assert not out.exists() and _leftovers(tmp_path) == []


def test_existing_output_and_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    out.write_bytes(b"old")
    with pytest.raises(OutputError, match="already exists"):
        VideoWriter(out, 25)
    with VideoWriter(out, 25, overwrite=True, preset="ultrafast") as w:
        w.write(draw_frame(0, (32, 32)))
    assert out.read_bytes()[:3] != b"old" and probe(out).n_frames == 1


def test_unwritable_or_wrong_outputs(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="does not exist"):
        VideoWriter(tmp_path / "no" / "such" / "dir" / "out.mp4", 25)
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="not a folder"):
        VideoWriter(tmp_path / "file" / "out.mp4", 25)
    with pytest.raises(OutputError, match="extension"):
        VideoWriter(tmp_path / "out.gif", 25)
    with pytest.raises(OutputError, match="folder"):
        VideoWriter(tmp_path, 25)
    with pytest.raises(OutputError, match="No frames"):
        with VideoWriter(tmp_path / "empty.mp4", 25):
            pass
    assert not (tmp_path / "empty.mp4").exists()


def test_bad_frames_are_programming_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="uint8"):
        with VideoWriter(tmp_path / "o.mp4", 25) as w:
            w.write(np.zeros((8, 8, 3), np.float32))
    with pytest.raises(ValueError, match="but the video is"):
        with VideoWriter(tmp_path / "o.mp4", 25, preset="ultrafast") as w:
            w.write(np.zeros((8, 8, 3), np.uint8))
            w.write(np.zeros((8, 10, 3), np.uint8))
    assert _leftovers(tmp_path) == [] and not (tmp_path / "o.mp4").exists()


def test_mkv_and_mov_outputs(tmp_path: Path) -> None:
    for ext in (".mkv", ".mov"):
        out = tmp_path / f"o{ext}"
        with VideoWriter(out, "24000/1001", preset="ultrafast") as w:
            for i in range(4):
                w.write(draw_frame(i, (32, 32)))
        assert probe(out).fps == F(24000, 1001)
        assert len(list(read_frames(out))) == 4


def test_fps_values_and_atomic_output(tmp_path: Path) -> None:
    from reenact.errors import InputError
    from reenact.io._media import as_fps
    from reenact.io.atomic import atomic_output

    assert as_fps("30000/1001") == as_fps(29.97) == F(30000, 1001)
    assert as_fps(25) == as_fps(25.0) == 25 and as_fps(12.5) == F(25, 2)
    for bad in ("fast", 0, -3, 5000):
        with pytest.raises(InputError):
            as_fps(bad)
    target = tmp_path / "report.json"
    with pytest.raises(KeyError), atomic_output(target) as tmp:
        tmp.write_text("{}")
        raise KeyError("interrupted")
    assert list(tmp_path.iterdir()) == []
    with atomic_output(target) as tmp:
        tmp.write_text("{}")
    assert target.read_text() == "{}" and list(tmp_path.iterdir()) == [target]


def test_unwritable_folder_is_an_output_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import reenact.io.atomic as atomic

    monkeypatch.setattr(atomic.os, "access", lambda *a, **k: False)  # tests run as root, so chmod cannot show it
    with pytest.raises(OutputError, match="not writable"):
        VideoWriter(tmp_path / "out.mp4", 25)


class _Sink:
    def __init__(self, fail_at: int | None = None, delay: float = 0.0) -> None:
        self.frames: list[int] = []
        self.fail_at, self.delay = fail_at, delay

    def write(self, rgb: np.ndarray) -> None:
        time.sleep(self.delay)
        if len(self.frames) == self.fail_at:
            raise OutputError("disk full")
        self.frames.append(int(rgb[0, 0, 0]))


def test_encode_thread_keeps_order_and_feeds_every_sink():
    a, b = _Sink(), _Sink()
    frame = lambda i: np.full((2, 2, 3), i, np.uint8)  # noqa: E731
    with EncodeThread(a, b, depth=4) as enc:
        for i in range(50):
            enc.write(frame(i), frame(100 + i))
    assert a.frames == list(range(50)) and b.frames == list(range(100, 150))
    assert enc.busy_s >= 0.0


def test_encode_thread_raises_the_writers_error_in_the_caller():
    sink = _Sink(fail_at=3)
    with pytest.raises(OutputError, match="disk full"):
        with EncodeThread(sink, depth=2) as enc:
            for i in range(20):
                enc.write(np.full((2, 2, 3), i, np.uint8))
    assert sink.frames == [0, 1, 2]


def test_encode_thread_drops_queued_frames_when_the_block_fails():
    sink = _Sink(delay=0.05)  # a slow encoder: most frames are still queued when the block fails
    with pytest.raises(RuntimeError):
        with EncodeThread(sink, depth=64) as enc:
            for i in range(10):
                enc.write(np.full((2, 2, 3), i, np.uint8))
            raise RuntimeError("render failed")
    assert len(sink.frames) < 5  # the queued frames were dropped, not encoded into a file that will be discarded
