"""Video input: exact rational timing, rotation, variable frame rate, damaged and wrong files."""

from __future__ import annotations

from fractions import Fraction as F
from pathlib import Path

import av
import numpy as np
import pytest
from media_utils import draw_frame, frame_code, make_audio, make_video

from reenact.errors import InputError, MediaError
from reenact.io.video import VideoWriter, probe, read_frames


@pytest.mark.parametrize("fps", [F(30000, 1001), F(25), F(24000, 1001)])
def test_encode_then_decode_same_frames_and_pts(tmp_path: Path, fps: F) -> None:
    out = tmp_path / "rt.mp4"
    n = 12
    with VideoWriter(out, fps, preset="ultrafast") as w:
        for i in range(n):
            w.write(draw_frame(i, (64, 48)))
    info = probe(out)
    assert info.fps == fps and not info.is_vfr
    assert (info.width, info.height, info.n_frames, info.rotation) == (64, 48, n, 0)
    assert info.duration == pytest.approx(float(n / fps), abs=1e-6)
    frames = list(read_frames(out))
    assert [f.index for f in frames] == list(range(n))
    assert [f.pts for f in frames] == [i / fps for i in range(n)]  # exact Fractions
    assert [f.source_pts for f in frames] == [f.pts for f in frames]
    assert [frame_code(f.rgb) for f in frames] == list(range(n))
    assert frames[3].time == pytest.approx(3 / float(fps))
    for f in frames:
        assert f.rgb.shape == (48, 64, 3) and f.rgb.dtype == np.uint8 and f.rgb.flags.c_contiguous
        assert np.abs(f.rgb.astype(int) - draw_frame(f.index, (64, 48))).mean() < 4


def test_container_pts_are_exact_multiples(tmp_path: Path) -> None:
    fps = F(30000, 1001)
    out = tmp_path / "pts.mp4"
    with VideoWriter(out, fps, preset="ultrafast") as w:
        for i in range(5):
            w.write(draw_frame(i, (32, 32)))
    with av.open(str(out)) as c:
        s = c.streams.video[0]
        times = sorted(F(p.pts) * s.time_base for p in c.demux(s) if p.size)
    assert times == [i / fps for i in range(5)]


def test_odd_size_is_padded_by_edge_replication(tmp_path: Path) -> None:
    out = tmp_path / "odd.mp4"
    src = [draw_frame(i, (63, 47)) for i in range(3)]
    with VideoWriter(out, 25, preset="ultrafast", crf=0) as w:
        for img in src:
            w.write(img)
    frames = list(read_frames(out))
    assert len(frames) == 3 and frames[0].rgb.shape == (48, 64, 3)
    got = frames[1].rgb.astype(int)
    assert np.abs(got[:47, :63] - src[1]).mean() < 3
    # the added column/row repeat the edge pixels
    assert np.abs(got[:47, 63] - got[:47, 62]).mean() < 3 and np.abs(got[47, :63] - got[46, :63]).mean() < 3


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_display_matrix_rotation_gives_upright_frames(tmp_path: Path, rotation: int) -> None:
    src = make_video(tmp_path / f"rot{rotation}.mp4", n=3, size=(64, 48), rotation=rotation)
    info = probe(src)
    assert info.rotation == rotation
    assert (info.width, info.height) == ((48, 64) if rotation in (90, 270) else (64, 48))
    for f in read_frames(src):
        expected = np.rot90(draw_frame(f.index, (64, 48)), rotation // 90)  # counter-clockwise quarter turns
        assert f.rgb.shape == expected.shape and f.rgb.flags.c_contiguous
        assert np.abs(f.rgb.astype(int) - expected).mean() < 4
        assert frame_code(np.rot90(f.rgb, -(rotation // 90))) == f.index


def test_variable_frame_rate_policy(tmp_path: Path) -> None:
    # 30 fps, then a 3-frame gap, then a burst at 60 fps, then 30 fps again: 1.0 s in all.
    times = [F(i, 30) for i in range(10)] + [F(13, 30) + F(i, 60) for i in range(10)]
    times += [F(18, 30) + F(i, 30) for i in range(1, 12)]
    src = make_video(tmp_path / "vfr.mp4", times=times)
    info = probe(src)
    assert info.is_vfr and info.fps == 30
    frames = list(read_frames(src))
    assert len(frames) == 30  # duration kept: 1.0 s at 30 fps
    codes = [frame_code(f.rgb) for f in frames]
    assert codes[:13] == list(range(10)) + [9, 9, 9]  # the gap repeats the last frame
    assert codes[13:18] == [10, 12, 14, 16, 18]  # the burst: the latest frame of each slot wins
    assert codes[18:] == list(range(19, 31))
    assert frames[11].source_pts == F(9, 30) and frames[11].pts == F(11, 30)
    native = list(read_frames(src, mode="native"))
    assert [frame_code(f.rgb) for f in native] == list(range(len(times)))
    assert [f.pts for f in native] == times


def test_output_rate_can_be_chosen(tmp_path: Path) -> None:
    src = make_video(tmp_path / "60.mp4", n=20, fps=60)
    frames = list(read_frames(src, fps=30))
    assert [frame_code(f.rgb) for f in frames] == list(range(0, 20, 2))
    assert [f.pts for f in frames] == [F(i, 30) for i in range(10)]
    assert len(list(read_frames(src, max_frames=4))) == 4


def test_reader_closes_and_info(tmp_path: Path) -> None:
    src = make_video(tmp_path / "a.mp4", n=5, audio="aac")
    with read_frames(src) as reader:
        assert reader.info.has_audio and reader.info.audio_codec == "aac" and reader.fps == 25
        first = next(reader)
    assert first.index == 0
    with pytest.raises(InputError):
        read_frames(src, mode="bogus")  # type: ignore[arg-type]


# -- bad input -------------------------------------------------------------------------------------------------------


def test_missing_empty_text_and_folder(tmp_path: Path) -> None:
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 20)
    cases = {tmp_path / "missing.mp4": "not found", empty: "empty", text: "not a readable video", tmp_path: "folder"}
    for path, words in cases.items():
        for fn in (probe, read_frames):
            with pytest.raises(MediaError, match=words) as err:
                fn(path)
            assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_audio_only_file_is_not_a_video(tmp_path: Path) -> None:
    audio = make_audio(tmp_path / "speech.m4a", seconds=0.3)
    with pytest.raises(MediaError, match="no video stream"):
        read_frames(audio)


def _truncated(tmp_path: Path) -> Path:
    src = make_video(tmp_path / "full.mp4", n=40, size=(96, 64))
    with av.open(str(src)) as c:
        offsets = [p.pos for p in c.demux(video=0) if p.size]
    bad = tmp_path / "cut.mp4"
    bad.write_bytes(src.read_bytes()[: offsets[25]])  # moov (faststart) intact, media data cut at frame 25
    return bad


def test_truncated_video_policies(tmp_path: Path) -> None:
    bad = _truncated(tmp_path)
    seen = []
    with pytest.raises(MediaError, match="truncated") as err:
        for f in read_frames(bad):
            seen.append(f.index)
    assert "cut.mp4" in str(err.value) and 20 <= len(seen) <= 25  # good frames came first
    reader = read_frames(bad, on_damage="stop")
    assert len(list(reader)) == 25 and reader.damage is not None and "25 of 40" in reader.damage


def test_corrupt_packets_raise_or_are_skipped(tmp_path: Path) -> None:
    src = make_video(tmp_path / "full.mp4", n=40, size=(96, 64))
    with av.open(str(src)) as c:
        offsets = [p.pos for p in c.demux(video=0) if p.size]
    data = bytearray(src.read_bytes())
    noise = np.random.default_rng(0).integers(0, 256, offsets[22] - offsets[20], dtype=np.uint8)
    data[offsets[20]:offsets[22]] = noise.tobytes()
    bad = tmp_path / "corrupt.mp4"
    bad.write_bytes(bytes(data))
    with pytest.raises(MediaError, match="damaged"):
        list(read_frames(bad))
    reader = read_frames(bad, on_damage="skip")
    frames = list(reader)
    assert len(frames) == 40 and reader.damage is not None  # the timeline is kept, bad packets dropped
    assert frame_code(frames[-1].rgb) == 39


def test_moov_missing_is_a_media_error(tmp_path: Path) -> None:
    src = make_video(tmp_path / "rec.mp4", n=20, faststart=False)  # index at the end, as a camera writes it
    bad = tmp_path / "interrupted.mp4"
    bad.write_bytes(src.read_bytes()[:-300])
    with pytest.raises(MediaError, match="interrupted.mp4"):
        probe(bad)
