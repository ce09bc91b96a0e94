"""Carry one audio stream from a source file into the writer's container, in step with the video.

Two ways, chosen per source codec and output container:
- copy: the compressed packets are remuxed unchanged (timestamps shifted and rescaled) when the container accepts
  the codec (mp4: aac, mp3, alac, ac3, eac3, opus). Cut at the packet boundary nearest to the video's end (off by
  at most half a packet: AAC 11 ms); a packet that ends at time 0 is kept (decoder priming, hidden by an edit list).
  Padding is not possible without re-encoding, so when the writer is told the expected video duration and the
  source audio is shorter, "auto" encodes instead; without that hint a short copied track simply ends early.
- encode: decoded, resampled (rate kept if AAC allows it and it is >= 32 kHz, else 48 kHz; <= 2 channels) and
  encoded to AAC, sample-exactly trimmed or padded with silence to the video's duration (the container's edit
  list says the exact length; decoders may still return the last AAC frame's padding).

Timing origin: the source's first video frame if the source is a video (the driver: so lips stay in sync with what
`read_frames` yielded as frame 0), else the start of the audio stream. `pump(t)` is called after each video frame so
the file is interleaved and nothing is buffered; `finish(duration)` ends the track.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Literal

import av
import av.container
import numpy as np

from reenact.errors import MediaError
from reenact.io._media import decode_failure, open_input

AudioMode = Literal["auto", "copy", "encode"]

COPYABLE = {
    "mp4": {"aac", "mp3", "alac", "ac3", "eac3", "opus"},
    "mov": {"aac", "mp3", "alac", "ac3", "eac3", "pcm_s16le", "pcm_s24le"},
    "matroska": {"aac", "mp3", "alac", "ac3", "eac3", "opus", "vorbis", "flac", "pcm_s16le", "pcm_s24le"},
}
_AAC_RATES = {8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000}
_AAC_FRAME = 1024


def audio_stream(container: av.container.InputContainer, path: Path) -> av.AudioStream:
    if not container.streams.audio:
        raise MediaError(f"{path} has no audio stream; give a file with sound (WAV, MP3, M4A, or a video with audio).")
    return container.streams.audio[0]


def _origin(container: av.container.InputContainer) -> Fraction:
    """Seconds in the source that map to output time 0."""
    for s in container.streams.video:
        if not (s.disposition & av.stream.Disposition.attached_pic) and s.start_time is not None and s.time_base:
            return Fraction(s.start_time) * s.time_base
    a = container.streams.audio[0]
    return Fraction(a.start_time) * a.time_base if a.start_time is not None and a.time_base else Fraction(0)


class AudioTrack:
    def __init__(self, source: Path, out: av.container.OutputContainer, fmt: str, mode: AudioMode,
                 expected: Fraction | None = None) -> None:
        self.path = source
        self.src = open_input(source, "audio")
        self.inp = audio_stream(self.src, source)
        self.origin = _origin(self.src)
        codec = self.inp.codec.canonical_name  # "mp3", not the decoder's "mp3float"
        # MPEG-2/2.5 layer III (mp3 below 32 kHz, e.g. 8 kHz telephone audio) is refused by the mp4 muxer.
        low_rate_mp3 = codec == "mp3" and (self.inp.codec_context.sample_rate or 0) < 32000
        self.copy = mode == "copy" or (
            mode == "auto" and codec in COPYABLE.get(fmt, set()) and not low_rate_mp3 and not self._too_short(expected)
        )
        if self.copy and codec not in COPYABLE.get(fmt, set()):
            raise MediaError(f"{source}: {codec} audio cannot be copied into this container; use audio mode 'encode'.")
        self.packets = self.src.demux(self.inp)
        self.pending: av.Packet | None = None
        self.done = False
        if self.copy:
            self.out = out.add_stream_from_template(self.inp)
        else:
            ctx = self.inp.codec_context
            # >= 32 kHz keeps an AAC frame (1024 samples) under 32 ms, i.e. under one video frame at 30 fps.
            self.rate = ctx.sample_rate if ctx.sample_rate in _AAC_RATES and ctx.sample_rate >= 32000 else 48000
            self.layout = "mono" if ctx.channels == 1 else "stereo"
            self.out = out.add_stream("aac", rate=self.rate, layout=self.layout)
            self.out.bit_rate = 128_000 if self.layout == "mono" else 192_000
            self.resampler = av.AudioResampler(format="fltp", layout=self.layout, rate=self.rate)
            self.buf = np.zeros((1 if self.layout == "mono" else 2, 0), np.float32)  # (C, n) not yet encoded
            self.written = 0  # samples handed to the encoder (output time = written / rate)
            self.started = False
            self.start: Fraction | None = None

    def _too_short(self, expected: Fraction | None) -> bool:
        """Whether the source audio ends over 1/30 s before `expected` seconds of video (copying cannot pad)."""
        s = self.inp
        if expected is None or not s.duration or not s.time_base:
            return False
        start = Fraction(s.start_time or 0) * s.time_base - self.origin
        return start + Fraction(s.duration) * s.time_base < expected - Fraction(1, 30)

    # -- common ----------------------------------------------------------------------------------------------------

    def pump(self, until: Fraction, out: av.container.OutputContainer) -> None:
        """Mux audio up to output time `until` (seconds)."""
        if self.copy:
            self._copy_until(until, out)
        else:
            self._encode_until(until, out)

    def finish(self, duration: Fraction, out: av.container.OutputContainer) -> None:
        """Write the rest of the track up to `duration` (trim), pad with silence when encoding, flush."""
        self.pump(duration, out)
        if not self.copy:
            target = int(round(duration * self.rate))
            if self.written + self.buf.shape[1] < target:  # the source ended early: pad with silence
                pad = np.zeros((self.buf.shape[0], target - self.written - self.buf.shape[1]), np.float32)
                self.buf = np.concatenate([self.buf, pad], axis=1)
            self._emit(out, target, final=True)
            out.mux(self.out.encode(None))
        self.close()

    def close(self) -> None:
        self.src.close()

    def _next_packet(self) -> av.Packet | None:
        if self.pending is not None:
            p, self.pending = self.pending, None
            return p
        if self.done:
            return None
        try:
            return next(self.packets)
        except StopIteration:
            self.done = True
            return None
        except av.error.FFmpegError as err:
            raise decode_failure(self.path, "audio", err, "while reading its audio") from err

    # -- copy ------------------------------------------------------------------------------------------------------

    def _copy_until(self, until: Fraction, out: av.container.OutputContainer) -> None:
        tb = self.inp.time_base or Fraction(1, self.inp.codec_context.sample_rate or 48000)
        shift = int(round(self.origin / tb))
        while (p := self._next_packet()) is not None:
            if p.size == 0 or p.pts is None:
                continue
            t, dur = Fraction(p.pts - shift) * tb, Fraction(p.duration or 0) * tb
            if t + dur / 2 >= until:  # nearest packet boundary: the end is off by at most half a packet
                self.pending = p
                return
            if t + dur < 0:  # ends before the first video frame (a packet ending at 0 is kept: decoder priming)
                continue
            p.pts -= shift
            if p.dts is not None:
                p.dts -= shift
            p.stream = self.out
            out.mux(p)

    # -- encode ----------------------------------------------------------------------------------------------------

    def _encode_until(self, until: Fraction, out: av.container.OutputContainer) -> None:
        target = int(round(until * self.rate))
        while self.written + self.buf.shape[1] < target and not self.done:
            p = self._next_packet()
            if p is None:
                for f in self.resampler.resample(None):
                    self._take(f)
                break
            try:
                frames = self.inp.decode(p)
            except av.error.FFmpegError as err:
                raise decode_failure(self.path, "audio", err, "while decoding its audio") from err
            for frame in frames:
                if self.start is None and frame.pts is not None and frame.time_base:
                    self.start = Fraction(frame.pts) * frame.time_base - self.origin  # first decoded sample's time
                for f in self.resampler.resample(frame):
                    self._take(f)
        self._emit(out, target, final=False)

    def _take(self, frame: av.AudioFrame) -> None:
        """Append resampled samples; the first block is aligned to the origin (leading cut or silence)."""
        arr = frame.to_ndarray().astype(np.float32, copy=False)  # (C, n) planar float
        if not self.started:
            self.started = True
            offset = int(round((self.start or 0) * self.rate))
            if offset < 0:
                arr = arr[:, -offset:]
            elif offset > 0:
                arr = np.concatenate([np.zeros((arr.shape[0], offset), np.float32), arr], axis=1)
        self.buf = np.concatenate([self.buf, arr], axis=1)

    def _emit(self, out: av.container.OutputContainer, target: int, final: bool) -> None:
        """Encode whole AAC frames up to `target` samples (all of it, trimmed to target, when final)."""
        while True:
            room = target - self.written
            n = min(_AAC_FRAME, self.buf.shape[1], room)
            if n <= 0 or (n < _AAC_FRAME and not final):
                return
            chunk, self.buf = self.buf[:, :n], self.buf[:, n:]
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format="fltp", layout=self.layout)
            frame.sample_rate = self.rate
            frame.pts = self.written
            frame.time_base = Fraction(1, self.rate)
            self.written += n
            out.mux(self.out.encode(frame))
