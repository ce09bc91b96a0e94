"""Small synthetic media for tests, made with PyAV (no files committed, no network).

    make_video(tmp_path / "v.mp4", n=10, fps=Fraction(30000, 1001), size=(64, 48), audio="aac")
    make_audio(tmp_path / "a.wav", seconds=1.0, sr=16000)
    frame_code(rgb) -> the frame number drawn into a frame by make_video (robust to compression)

Each video frame shows a smooth gradient plus its index as 8 black/white blocks along the top (binary, bit 0 on
the left), so tests can check order, duplication and orientation after a lossy round trip.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

_AUDIO_BY_EXT = {".wav": "pcm_s16le", ".mp3": "libmp3lame", ".m4a": "aac", ".aac": "aac", ".opus": "libopus",
                 ".ogg": "libopus", ".flac": "flac"}
_FORMAT_BY_EXT = {".m4a": "mp4", ".opus": "ogg", ".aac": "adts"}
_SAMPLE_FMT = {"pcm_s16le": "s16", "libmp3lame": "fltp", "aac": "fltp", "libopus": "s16", "flac": "s16",
               "alac": "s16p"}


FACE_FIXTURES = Path(__file__).parent / "fixtures" / "face"


def face_fixture(name: str) -> dict[str, np.ndarray]:
    """Every array of tests/fixtures/face/NAME.npz (reference outputs of the original runtimes, test images)."""
    with np.load(FACE_FIXTURES / f"{name}.npz") as d:
        return {k: d[k] for k in d.files}


def draw_frame(index: int, size: tuple[int, int]) -> np.ndarray:
    """(H, W, 3) uint8: gradient background, `index` in binary as 8 blocks on the top band."""
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([xx * 200 // max(w - 1, 1), yy * 200 // max(h - 1, 1), np.full_like(xx, 60)], -1)
    img = img.astype(np.uint8)
    bw, bh = w // 8, max(h // 4, 2)
    for bit in range(8):
        img[:bh, bit * bw:(bit + 1) * bw] = 255 if (index >> bit) & 1 else 0
    return img


def frame_code(rgb: np.ndarray) -> int:
    """Read back the index drawn by `draw_frame` (from an upright frame)."""
    h, w = rgb.shape[:2]
    bw, bh = w // 8, max(h // 4, 2)
    bits = [rgb[bh // 4: bh * 3 // 4, b * bw + bw // 4: b * bw + bw * 3 // 4].mean() > 128 for b in range(8)]
    return sum(1 << i for i, on in enumerate(bits) if on)


def tone(seconds: float, sr: int, channels: int = 1, freq: float = 440.0) -> np.ndarray:
    """(channels, n) float32 sine at 0.3 amplitude (channel c at freq * (c + 1))."""
    t = np.arange(int(round(seconds * sr))) / sr
    return np.stack([0.3 * np.sin(2 * np.pi * freq * (c + 1) * t) for c in range(channels)]).astype(np.float32)


def _add_audio(container: av.container.OutputContainer, codec: str, sr: int, channels: int) -> av.AudioStream:
    return container.add_stream(codec, rate=sr, layout="mono" if channels == 1 else "stereo")


def _encode_audio(container: av.container.OutputContainer, stream: av.AudioStream, codec: str, wave: np.ndarray,
                  sr: int) -> None:
    """Encode (C, n) float32 into `stream`."""
    layout = "mono" if wave.shape[0] == 1 else "stereo"
    fmt = _SAMPLE_FMT.get(codec, "fltp")
    step = 1024 if codec != "libopus" else 960
    for start in range(0, wave.shape[1], step):
        chunk = wave[:, start:start + step]
        if fmt == "s16":  # packed int16: (1, n * C) interleaved
            data = (np.clip(chunk, -1, 1) * 32767).astype(np.int16).T.reshape(1, -1)
        elif fmt == "s16p":
            data = (np.clip(chunk, -1, 1) * 32767).astype(np.int16)
        else:
            data = np.ascontiguousarray(chunk)
        frame = av.AudioFrame.from_ndarray(data, format=fmt, layout=layout)
        frame.sample_rate = sr
        frame.pts = start
        frame.time_base = Fraction(1, sr)
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))


def make_video(
    path: Path,
    n: int = 10,
    fps: Fraction | int = 25,
    size: tuple[int, int] = (64, 48),
    *,
    audio: str | None = None,
    audio_seconds: float | None = None,
    sr: int = 48000,
    channels: int = 1,
    rotation: int = 0,
    times: Sequence[Fraction] | None = None,
    codec: str = "libx264",
    faststart: bool = True,
    wave: np.ndarray | None = None,
) -> Path:
    """Write a test video; `audio` is an encoder name (aac, libmp3lame, libopus, pcm_s16le, alac) or None.

    `wave` ((C, n) or (n,) float32 at `sr`) replaces the default tone. `times` (seconds, exact) makes a
    variable-frame-rate file instead of n frames at fps. `rotation` writes a display matrix (counter-clockwise
    degrees, as PyAV's set_display_rotation).
    """
    fps = Fraction(fps)
    ext = path.suffix.lower()
    opts = {"movflags": "+faststart"} if faststart and ext in (".mp4", ".mov") else {}
    with av.open(str(path), "w", options=opts) as c:
        v = c.add_stream(codec, rate=fps)
        v.width, v.height = size
        v.pix_fmt = "yuv420p"
        v.options = {"preset": "ultrafast"} if codec == "libx264" else {}
        tb = Fraction(1, 90000) if times is not None else 1 / fps
        v.codec_context.time_base = tb
        if rotation:
            v.set_display_rotation(rotation)
        n_ch = channels if wave is None else (1 if wave.ndim == 1 else wave.shape[0])
        a = _add_audio(c, audio, sr, n_ch) if audio else None
        stamps = [round(Fraction(t) / tb) for t in times] if times is not None else list(range(n))
        for i, pts in enumerate(stamps):
            frame = av.VideoFrame.from_ndarray(draw_frame(i, size), format="rgb24")
            frame.pts, frame.time_base = pts, tb
            c.mux(v.encode(frame))
        c.mux(v.encode(None))
        if audio and a is not None:
            seconds = audio_seconds if audio_seconds is not None else float(len(stamps) / fps)
            data = wave if wave is not None else tone(seconds, sr, channels)
            _encode_audio(c, a, audio, data[None] if data.ndim == 1 else data, sr)
    return path


def make_audio(path: Path, seconds: float = 1.0, sr: int = 16000, channels: int = 1,
               wave: np.ndarray | None = None) -> Path:
    """Write an audio file; the codec follows the extension (.wav .mp3 .m4a .aac .opus .ogg .flac)."""
    ext = path.suffix.lower()
    data = wave if wave is not None else tone(seconds, sr, channels)
    data = data[None] if data.ndim == 1 else data
    with av.open(str(path), "w", format=_FORMAT_BY_EXT.get(ext)) as c:
        codec = _AUDIO_BY_EXT[ext]
        _encode_audio(c, _add_audio(c, codec, sr, data.shape[0]), codec, data.astype(np.float32), sr)
    return path


def audio_duration(path: Path) -> float:
    """Seconds of decoded audio in the first audio stream of `path` (counts samples, so edit lists apply)."""
    n, sr = 0, 0
    with av.open(str(path)) as c:
        for frame in c.decode(audio=0):
            n += frame.samples
            sr = frame.sample_rate
    return n / sr


def video_stream_duration(path: Path) -> float:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return float(s.duration * s.time_base)
