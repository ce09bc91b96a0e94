"""`VideoWriter`: H.264 (libx264, yuv420p, BT.709) output with exact rational fps, atomic rename, optional audio.

    with VideoWriter("out.mp4", fps=Fraction(30000, 1001), audio="driver.mp4") as w:
        for rgb in frames:             # (H, W, 3) uint8 RGB
            w.write(rgb)
    # out.mp4 appears only here, complete; on an exception inside the block nothing is left behind.

Policies (see docs/media.md):
- Odd sizes: H.264 4:2:0 needs even sizes, so an odd width/height is padded by one column/row replicating the edge
  pixels (no resampling, no lost pixels; the output is at most 1 px larger).
- Timing: frame n has pts n in a time base of 1/fps, so 30000/1001 is kept exactly; duration = n_frames / fps.
- Audio (`audio=` a video or audio file): copied when the container accepts its codec, else re-encoded to AAC; cut
  or padded to the video's duration (see _audio_track.py). `audio_mode` forces "copy" or "encode".
- The file is written as a hidden sibling (`.NAME.partial-PID-XXXXXX.mp4`) and renamed on success; an existing
  output is an OutputError unless `overwrite=True`. With `group=` (an OutputGroup) the finished file stays staged
  and is renamed with the command's other outputs by the group's commit.
"""

from __future__ import annotations

import queue
import threading
import time
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Protocol

import av
import av.container
import numpy as np

from reenact.errors import OutputError, ReenactError
from reenact.io._audio_track import AudioMode, AudioTrack
from reenact.io._media import PathLike, as_fps, check_input_file
from reenact.io.atomic import OutputGroup, check_output_path, commit, discard, temp_name
from reenact.options import PRESETS, check_x264  # noqa: F401  # PRESETS: re-exported

_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}
_BT709 = 1  # AVCOL_PRI_BT709 == AVCOL_TRC_BT709 == AVCOL_SPC_BT709
_RANGE_MPEG = 1  # limited ("TV") range, what players expect from yuv420p H.264

class VideoWriter:
    """Streaming H.264 writer. Call `write(rgb)` per frame; `close()` (or leaving the `with` block) finishes."""

    def __init__(
        self,
        path: PathLike,
        fps: Fraction | int | float | str,
        *,
        crf: int = 18,
        preset: str = "medium",
        audio: PathLike | None = None,
        audio_mode: AudioMode = "auto",
        overwrite: bool = False,
        threads: int = 0,
        expected_duration: float | Fraction | None = None,
        group: OutputGroup | None = None,
    ) -> None:
        self.path = check_output_path(path, overwrite)
        fmt = _FORMATS.get(self.path.suffix.lower())
        if fmt is None:
            raise OutputError(f"Cannot write video {self.path}: use the extension .mp4, .mov or .mkv.")
        self.format: str = fmt
        check_x264(crf, preset)
        if audio_mode not in ("auto", "copy", "encode"):
            raise OutputError(f"Unknown audio mode {audio_mode!r}; use 'auto', 'copy' or 'encode'.")
        self.fps = as_fps(fps)
        self.crf, self.preset, self.threads, self.overwrite = crf, preset, threads, overwrite
        self.audio_path = check_input_file(audio, "audio") if audio is not None else None
        self.audio_mode = audio_mode
        self.expected = Fraction(expected_duration) if expected_duration is not None else None
        self.frames_written = 0
        self.size: tuple[int, int] | None = None  # (width, height) of the frames given to write()
        self.group = group
        self._tmp = temp_name(self.path) if group is None else group.stage(self.path)
        self._container: av.container.OutputContainer | None = None
        self._video: av.VideoStream | None = None
        self._audio: AudioTrack | None = None
        self._closed = False

    # -- public ----------------------------------------------------------------------------------------------------

    @property
    def duration(self) -> Fraction:
        """Seconds written so far (exact)."""
        return self.frames_written / self.fps

    def write(self, rgb: np.ndarray) -> None:
        """Append one (H, W, 3) uint8 RGB frame. Every frame must have the size of the first."""
        if self._closed:
            raise ValueError("VideoWriter.write() after close()")
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"VideoWriter.write() needs an (H, W, 3) uint8 RGB array, got {rgb.shape} {rgb.dtype}")
        h, w = rgb.shape[:2]
        if self.size is None:
            self._open(w, h)
        elif self.size != (w, h):
            raise ValueError(f"frame {self.frames_written} is {w}x{h} but the video is {self.size[0]}x{self.size[1]}")
        assert self._container is not None and self._video is not None
        if h % 2 or w % 2:  # (H, W, 3) -> (H + h%2, W + w%2, 3), edge pixels repeated
            rgb = np.pad(rgb, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        frame = frame.reformat(format="yuv420p", dst_colorspace="ITU709", dst_color_range="MPEG")
        frame.colorspace, frame.color_range = _BT709, _RANGE_MPEG
        frame.pts = self.frames_written
        frame.time_base = 1 / self.fps
        self.frames_written += 1
        try:
            self._container.mux(self._video.encode(frame))
            if self._audio is not None:
                self._audio.pump(self.duration, self._container)
        except av.error.FFmpegError as err:
            raise _write_error(self.path, err) from err

    def close(self) -> None:
        """Flush the encoder, finish the audio track, and rename the file into place."""
        if self._closed:
            return
        self._closed = True
        if self._container is None:
            raise OutputError(f"No frames were written to {self.path}; nothing was saved.")
        try:
            assert self._video is not None
            self._container.mux(self._video.encode(None))  # flush: x264 holds lookahead frames
            if self._audio is not None:
                self._audio.finish(self.duration, self._container)
            self._container.close()
        except BaseException as err:
            self._abort()
            if isinstance(err, av.error.FFmpegError):
                raise _write_error(self.path, err) from err
            raise
        if self.group is None:  # else the group renames it with the command's other outputs
            commit(self._tmp, self.path, self.overwrite)

    def abort(self) -> None:
        """Stop without producing an output (the temporary file is removed)."""
        self._closed = True
        self._abort()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    # -- internals -------------------------------------------------------------------------------------------------

    def _open(self, width: int, height: int) -> None:
        self.size = (width, height)
        try:
            self._container = av.open(str(self._tmp), mode="w", format=self.format,
                                      options={"movflags": "+faststart"} if self.format in ("mp4", "mov") else {})
        except (av.error.FFmpegError, OSError) as err:
            raise OutputError(f"Cannot create {self.path} ({_short(err)}); check the folder and free space.") from err
        try:
            v = self._container.add_stream("libx264", rate=self.fps)
            v.width, v.height = width + width % 2, height + height % 2
            v.pix_fmt = "yuv420p"
            v.time_base = Fraction(1, self.fps.numerator)  # a hint; mp4 may pick a multiple (still exact)
            v.codec_context.time_base = 1 / self.fps
            v.codec_context.framerate = self.fps
            v.codec_context.color_primaries = v.codec_context.color_trc = _BT709
            v.codec_context.colorspace, v.codec_context.color_range = _BT709, _RANGE_MPEG
            v.thread_count = self.threads
            v.options = {"crf": str(self.crf), "preset": self.preset}
            self._video = v
            if self.audio_path is not None:
                self._audio = AudioTrack(self.audio_path, self._container, self.format, self.audio_mode,
                                         self.expected)
        except BaseException:
            self._abort()
            raise

    def _abort(self) -> None:
        if self._audio is not None:
            self._audio.close()
        if self._container is not None:
            try:
                self._container.close()
            except (av.error.FFmpegError, OSError):
                pass  # the file is being thrown away; its trailer does not matter
        discard(self._tmp)


class FrameSink(Protocol):
    def write(self, rgb: np.ndarray) -> None: ...


class EncodeThread:
    """Feeds frames to a writer from one background thread, so encoding overlaps the caller's rendering.

    libx264 and the colour conversion release the GIL, so on a 2-core machine the encoder runs beside the renderer
    instead of after it. At most `depth` frames wait (memory stays bounded); a writer error is raised by the next
    `write()` or by leaving the block, and an exception in the block drops whatever is still queued.
    """

    def __init__(self, *sinks: FrameSink, depth: int = 32) -> None:
        self.sinks = sinks
        self._queue: queue.Queue[tuple[np.ndarray, ...] | None] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._stop = False
        self.busy_s = 0.0  # time spent writing, on the encode thread (for per-stage timings)
        self._thread = threading.Thread(target=self._run, name="reenact-encode", daemon=True)
        self._thread.start()

    def write(self, *frames: np.ndarray) -> None:
        """One frame per sink, in the sinks' order."""
        self._raise()
        self._queue.put(frames)

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            if self._error is not None or self._stop:
                continue  # drain without writing after a failure
            start = time.perf_counter()
            try:
                for sink, frame in zip(self.sinks, item):
                    sink.write(frame)
            except BaseException as err:  # handed to the caller's thread by _raise()
                self._error = err
            self.busy_s += time.perf_counter() - start

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def __enter__(self) -> EncodeThread:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop = exc_type is not None
        self._queue.put(None)
        try:
            self._thread.join()
        except BaseException:  # a signal (SIGTERM, Ctrl-C) while waiting: drop the queue, and let the thread finish
            self._stop = True  # before the writers behind it close their files under it
            self._thread.join()
            raise
        if exc_type is None:
            self._raise()


def _short(err: BaseException) -> str:
    return str(getattr(err, "strerror", None) or err).rstrip(".")


def _write_error(path: Path, err: av.error.FFmpegError) -> ReenactError:
    """Disk full / permission problems are the user's to fix (OutputError); anything else is an encoder failure."""
    if isinstance(err, (av.error.PermissionError, av.error.OSError)) or getattr(err, "errno", None) in (13, 28, 30):
        return OutputError(f"Cannot write {path} ({_short(err)}); check free space and permissions.")
    return ReenactError(f"Encoding {path} failed ({_short(err)}); please report this with the input files.")
