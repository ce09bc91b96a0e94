"""Streaming video input with PyAV: `probe` and `read_frames` (and `VideoWriter`, re-exported from writer.py).

Policies (see docs/media.md):
- Frames come out upright RGB uint8 (H, W, 3): the display matrix of rotated phone videos is applied.
- Time: `Frame.pts` is an exact Fraction of seconds counted from the first frame. In the default "cfr" mode the
  output is a constant-rate stream at `fps` (default: the stream's own rate, `VideoInfo.fps`): slot i is at i / fps
  and shows the latest decoded frame whose time is before the middle of the gap to the next slot (frames are snapped
  to the nearest slot; a slot with no new frame repeats the previous one; of several frames in one slot the last
  wins). Constant-rate input passes through unchanged, frame for frame. Variable-rate input keeps its duration and
  stays in sync with its audio. Mode "native" yields every decoded frame with its own time instead.
- Damage (a truncated download, corrupt packets): frames before the damage are yielded, then, by `on_damage`:
  "raise" (default) raises MediaError; "stop" ends the iteration and sets `reader.damage` to a message; "skip"
  drops the bad packets, carries on (the previous frame fills the gap) and records the damage the same way.
- Memory is constant in the video length: one decoded frame is held, nothing is accumulated.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

import av
import av.container
import numpy as np

from reenact.errors import InputError, MediaError
from reenact.io._media import PathLike, as_fps, check_input_file, decode_failure, open_input
from reenact.io.orient import display_matrix, rotation_degrees, transform_for
from reenact.io.writer import VideoWriter

__all__ = ["Frame", "FrameReader", "VideoInfo", "VideoWriter", "probe", "read_frames"]

OnDamage = Literal["raise", "stop", "skip"]
Mode = Literal["cfr", "native"]

# Rates a variable-rate video is snapped to when its average is within 3 % (a phone's 29.87 -> 30).
_STANDARD_RATES = tuple(
    Fraction(r) for r in ("8", "10", "12", "15", "24000/1001", "24", "25", "30000/1001", "30", "48", "50",
                          "60000/1001", "60", "90", "100", "120", "240")
)


@dataclass(frozen=True)
class VideoInfo:
    """What `probe` learns about a video file. Sizes are as displayed (after rotation)."""

    path: Path
    width: int
    height: int
    fps: Fraction  # the constant rate read_frames outputs by default (exact, e.g. 30000/1001)
    time_base: Fraction  # the video stream's time base
    duration: float  # seconds (video stream; container if the stream does not say)
    n_frames: int  # frames in the file's index, else duration * fps rounded (an estimate)
    rotation: int  # counter-clockwise display rotation in degrees: 0, 90, 180 or 270
    codec: str
    is_vfr: bool  # guess: the average rate differs from the stream's base rate
    has_audio: bool
    audio_codec: str | None = None
    audio_sample_rate: int | None = None
    audio_channels: int | None = None


@dataclass(frozen=True, slots=True)
class Frame:
    """One upright RGB frame. `pts` is exact seconds since the first frame; `source_pts` is when the decoded picture
    shown here was presented in the file (same origin; differs from `pts` only for variable-rate input)."""

    rgb: np.ndarray  # (H, W, 3) uint8, C-contiguous
    index: int
    pts: Fraction
    source_pts: Fraction

    @property
    def time(self) -> float:
        return float(self.pts)


def video_stream(container: av.container.InputContainer, path: Path) -> av.VideoStream:
    """The first real video stream (cover art in audio files does not count), else MediaError."""
    for s in container.streams.video:
        if not (s.disposition & av.stream.Disposition.attached_pic):
            return s
    what = "an audio file" if container.streams.audio else "not a video"
    raise MediaError(
        f"{path} has no video stream ({what}); give a video file, or use it as audio where audio is asked."
    )


def _nominal_fps(stream: av.VideoStream) -> tuple[Fraction, bool]:
    """(output rate, is_vfr guess). Constant-rate streams keep their exact rate; variable ones snap to a standard."""
    avg, base = stream.average_rate, stream.base_rate
    avg = avg if avg and 0 < avg <= 1000 else None
    base = base if base and 0 < base <= 1000 else None
    if avg is None:
        guess = stream.guessed_rate
        return (guess if guess and 0 < guess <= 1000 else (base or Fraction(25))), False
    if base is None or abs(avg / base - 1) < 1e-3:
        return avg, False
    near = min(_STANDARD_RATES, key=lambda r: abs(r - avg))
    return (near if abs(near / avg - 1) < 0.03 else avg.limit_denominator(1001)), True


def probe(path: PathLike) -> VideoInfo:
    """Read a video's properties (decodes only the first frame). MediaError when it is not a readable video."""
    p = check_input_file(path, "video")
    with open_input(p, "video") as container:
        stream = video_stream(container, p)
        first = _first_frame(container, stream, p)
        matrix = display_matrix(first)
        _, swaps = transform_for(matrix)
        fps, vfr = _nominal_fps(stream)
        tb = stream.time_base or Fraction(1, 90000)
        if stream.duration:
            duration = float(stream.duration * tb)
        else:
            duration = container.duration / av.time_base if container.duration else 0.0
        n_frames = stream.frames or int(round(duration * fps))
        audio = container.streams.audio[0] if container.streams.audio else None
        w, h = first.width, first.height
        return VideoInfo(
            path=p, width=h if swaps else w, height=w if swaps else h, fps=fps, time_base=tb, duration=duration,
            n_frames=n_frames, rotation=rotation_degrees(matrix), codec=stream.codec.canonical_name, is_vfr=vfr,
            has_audio=audio is not None,
            audio_codec=audio.codec.canonical_name if audio else None,
            audio_sample_rate=audio.codec_context.sample_rate if audio else None,
            audio_channels=audio.codec_context.channels if audio else None,
        )


def _first_frame(container: av.container.InputContainer, stream: av.VideoStream, path: Path) -> av.VideoFrame:
    try:
        for frame in container.decode(stream):
            return frame
    except av.error.FFmpegError as err:
        raise decode_failure(path, "video", err, "at the first frame") from err
    raise MediaError(f"{path} has a video stream but no decodable frames; re-export the video.")


def read_frames(
    path: PathLike,
    *,
    fps: Fraction | int | float | str | None = None,
    mode: Mode = "cfr",
    on_damage: OnDamage = "raise",
    max_frames: int | None = None,
) -> FrameReader:
    """Stream upright RGB frames from a video file (see the module doc for the timing and damage policies).

    Opens the file at once (MediaError now if it is missing/unreadable/not a video), then decodes lazily. Use as an
    iterator, ideally in a `with` block so the file is closed early:

        with read_frames("driver.mp4") as frames:
            for f in frames:          # f.rgb (H, W, 3) uint8, f.index, f.pts (Fraction s), f.time (float s)
                ...
    """
    return FrameReader(path, fps=fps, mode=mode, on_damage=on_damage, max_frames=max_frames)


class FrameReader:
    """Iterator of `Frame` over one video file. `info` is the probe result, `fps` the output rate, `damage` None
    or a message when the file was damaged and `on_damage` was "stop" or "skip"."""

    def __init__(self, path: PathLike, *, fps: Fraction | int | float | str | None = None, mode: Mode = "cfr",
                 on_damage: OnDamage = "raise", max_frames: int | None = None) -> None:
        if mode not in ("cfr", "native"):
            raise InputError(f"Unknown frame mode {mode!r}; use 'cfr' or 'native'.")
        if on_damage not in ("raise", "stop", "skip"):
            raise InputError(f"Unknown damage policy {on_damage!r}; use 'raise', 'stop' or 'skip'.")
        self.info = probe(path)
        self.path = self.info.path
        self.fps = as_fps(fps) if fps is not None else self.info.fps
        self.mode, self.on_damage, self.max_frames = mode, on_damage, max_frames
        self.damage: str | None = None
        self._container = open_input(self.path, "video")
        self._gen = self._frames()

    def __iter__(self) -> FrameReader:
        return self

    def __next__(self) -> Frame:
        return next(self._gen)

    def __enter__(self) -> FrameReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._gen.close()
        self._container.close()

    # -- internals -------------------------------------------------------------------------------------------------

    def _damaged(self, err: Exception | str, at: Fraction) -> bool:
        """Apply the damage policy; returns True when decoding should continue (skip), False to stop."""
        exc = decode_failure(self.path, "video", err, f"after {float(at):.3f} s")
        if self.on_damage == "raise":
            raise exc from (err if isinstance(err, Exception) else None)
        self.damage = str(exc) if self.damage is None else self.damage
        return self.on_damage == "skip"

    def _decoded(self) -> Iterator[tuple[av.VideoFrame, Fraction, Fraction]]:
        """(frame, time since the first frame, duration) for each decoded picture, in presentation order."""
        c = self._container
        stream = video_stream(c, self.path)
        stream.thread_type = "AUTO"  # frame + slice threads: several times faster decode, same output
        tb = stream.time_base or Fraction(1, 90000)
        rate = stream.average_rate if stream.average_rate and stream.average_rate > 0 else self.fps
        default_dur = 1 / Fraction(rate)
        t0: Fraction | None = None
        last_t = Fraction(0)
        n_packets = 0
        demux = c.demux(stream)
        while True:
            try:
                packet = next(demux)
            except StopIteration:
                break
            except av.error.FFmpegError as err:  # the container itself is broken: cannot read on
                self._damaged(err, last_t)
                return
            n_packets += packet.size > 0
            try:
                frames = packet.decode()
            except av.error.FFmpegError as err:
                if self._damaged(err, last_t):
                    continue
                return
            for frame in frames:
                if frame.pts is None:  # raw elementary streams carry no times: count frames
                    t = last_t + default_dur if t0 is not None else Fraction(0)
                else:
                    t = Fraction(frame.pts) * tb
                if t0 is None:
                    t0 = t
                t = max(t - t0, last_t)  # never go back in time (broken files)
                last_t = t
                dur = Fraction(frame.duration) * tb if frame.duration else default_dur
                yield frame, t, dur
        if stream.frames and n_packets < stream.frames and _index_past_eof(stream, self.path):
            self._damaged(f"the file ends early: {n_packets} of {stream.frames} frames are present", last_t)

    def _frames(self) -> Generator[Frame, None, None]:
        limit = self.max_frames if self.max_frames is not None else -1
        transform = None
        if self.mode == "native":
            for index, (frame, t, _) in enumerate(self._decoded()):
                if index == limit:
                    return
                if transform is None:
                    transform, _ = transform_for(display_matrix(frame))
                yield Frame(transform(_to_rgb(frame)), index, t, t)
            return
        period = 1 / self.fps
        slot = 0
        prev: tuple[av.VideoFrame, Fraction] | None = None  # converted only when it fills a slot
        end = Fraction(0)
        for frame, t, dur in self._decoded():
            if transform is None:
                transform, _ = transform_for(display_matrix(frame))
            # Every slot whose midpoint to the next slot lies before this frame belongs to the previous frame.
            while prev is not None and (slot + Fraction(1, 2)) * period <= t:
                if slot == limit:
                    return
                # A repeated slot converts again: every Frame owns its array, so callers may edit it in place.
                yield Frame(transform(_to_rgb(prev[0])), slot, slot * period, prev[1])
                slot += 1
            prev = (frame, t)
            end = t + dur
        while prev is not None and transform is not None and (slot + Fraction(1, 2)) * period <= end:
            if slot == limit:
                return
            yield Frame(transform(_to_rgb(prev[0])), slot, slot * period, prev[1])
            slot += 1


def _index_past_eof(stream: av.VideoStream, path: Path) -> bool:
    """Whether the container's index points at bytes beyond the end of the file (a cut download or copy). Fewer
    packets than the index lists is not enough on its own: edit lists and odd muxers cause that in intact files."""
    entries = stream.index_entries
    if len(entries) == 0:
        return True  # no index to check against: trust the frame count
    return max(e.pos + e.size for e in entries) > path.stat().st_size


def _to_rgb(frame: av.VideoFrame) -> np.ndarray:
    """(H, W, 3) uint8 RGB using the frame's own colour matrix and range (BT.601/709, limited/full)."""
    return frame.to_ndarray(format="rgb24", src_color_range=frame.color_range or None)
