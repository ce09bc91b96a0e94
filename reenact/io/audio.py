"""Audio input: decode + resample anything FFmpeg reads (WAV, MP3, M4A, FLAC, OGG, a video's sound track), and
log-mel features aligned to video frame times.

    wave, sr = load_audio("speech.mp3", sr=16000)            # (n,) float32 in [-1, 1]
    for block in stream_audio("talk.m4a", sr=16000, block_seconds=30.0): ...   # constant memory
    mel = log_mel(wave, sr, fps=Fraction(30000, 1001))      # (n_frames, 80): row i is centred on frame i's time

Timing: samples start at the audio stream's first sample (a leading gap before the stream starts is not inserted).
Silence and zero-length files: a file with an audio stream but no samples is a MediaError.
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from functools import lru_cache

import av
from pathlib import Path

import numpy as np

from reenact.errors import InputError, MediaError
from reenact.io._audio_track import audio_stream
from reenact.io._media import PathLike, as_fps, check_input_file, decode_failure, open_input

__all__ = ["load_audio", "log_mel", "stream_audio", "write_wav"]


def _decode(path: PathLike, sr: int, mono: bool) -> Iterator[np.ndarray]:
    """Yield (C, n) float32 blocks as decoded (C = 1 when mono, else the source's channels, at most 2)."""
    if sr < 1000 or sr > 384_000:
        raise InputError(f"Sample rate {sr} is out of range; use e.g. 16000 or 48000.")
    p = check_input_file(path, "audio")
    with open_input(p, "audio") as container:
        stream = audio_stream(container, p)
        channels = stream.codec_context.channels or 1
        # Mono is the mean of left and right: FFmpeg's own stereo->mono matrix adds them at 0.707 each, which makes
        # correlated (speech) signals louder by 3 dB and can clip.
        resampler = av.AudioResampler(format="fltp", layout="mono" if channels == 1 else "stereo", rate=sr)

        def convert(frames: list[av.AudioFrame]) -> Iterator[np.ndarray]:
            for out in frames:
                arr = out.to_ndarray()  # (C, n) float32
                yield arr.mean(axis=0, keepdims=True) if mono and arr.shape[0] > 1 else arr

        try:
            for packet in container.demux(stream):
                for frame in packet.decode():
                    yield from convert(resampler.resample(frame))
            yield from convert(resampler.resample(None))
        except av.error.FFmpegError as err:
            raise decode_failure(p, "audio", err, "while decoding") from err


def load_audio(path: PathLike, sr: int = 16000, mono: bool = True) -> tuple[np.ndarray, int]:
    """Decode a whole file resampled to `sr`: ((n,) if mono else (C, n) float32 in [-1, 1], sr)."""
    blocks = list(_decode(path, sr, mono))
    wave = np.concatenate(blocks, axis=1) if blocks else np.zeros((1, 0), np.float32)
    if wave.shape[1] == 0:
        raise MediaError(f"{path} has an audio stream but no audio samples (0 s long); give a file with sound.")
    wave = wave.astype(np.float32, copy=False)
    return (wave[0] if mono else wave), sr


def stream_audio(path: PathLike, sr: int = 16000, block_seconds: float = 10.0,
                 mono: bool = True) -> Iterator[np.ndarray]:
    """Yield consecutive blocks of exactly round(block_seconds * sr) samples ((n,) or (C, n) float32); the last
    block is shorter. Memory stays at about one block, so hour-long recordings are fine."""
    size = int(round(block_seconds * sr))
    if size <= 0:
        raise InputError(f"Block length {block_seconds} s is too short; use a positive number of seconds.")
    pending: list[np.ndarray] = []
    have = 0
    total = 0
    for chunk in _decode(path, sr, mono):
        pending.append(chunk)
        have += chunk.shape[1]
        while have >= size:
            buf = np.concatenate(pending, axis=1)
            block, rest = buf[:, :size], buf[:, size:]
            pending, have = [rest], rest.shape[1]
            total += size
            yield block[0] if mono else block
    if have:
        buf = np.concatenate(pending, axis=1)
        total += have
        yield buf[0] if mono else buf
    if total == 0:
        raise MediaError(f"{path} has an audio stream but no audio samples (0 s long); give a file with sound.")


@lru_cache(maxsize=8)
def _mel_basis(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    import librosa  # imported here: librosa is slow to import and only this needs it

    return librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax).astype(np.float32)


def log_mel(
    wave: np.ndarray,
    sr: int,
    fps: Fraction | int | float | str,
    n_mels: int = 80,
    *,
    n_frames: int | None = None,
    steps_per_frame: int = 1,
    win_seconds: float = 0.025,
    fmin: float = 55.0,
    fmax: float | None = 7600.0,
    chunk: int = 4096,
) -> np.ndarray:
    """Log-mel spectrogram sampled at video frame times: (n_frames * steps_per_frame, n_mels) float32.

    Row j is a Hann-windowed spectrum centred exactly on t_j = j / (fps * steps_per_frame) seconds (so rows
    i*s .. i*s+s-1 belong to video frame i, the first of them centred on the frame's own time); the signal is
    zero-padded at both ends. Values are ln(mel power + 1e-6) with librosa's Slaney mel filterbank. `n_frames`
    defaults to the number of frames that start inside the audio (ceil(duration * fps)); give the video's frame
    count to get one row per frame whatever the audio length (missing audio is silence).
    """
    if wave.ndim != 1:
        raise InputError(f"log_mel needs a mono (n,) wave, got shape {wave.shape}; load it with mono=True.")
    rate = as_fps(fps) * steps_per_frame
    if n_frames is None:
        n_frames = -(-len(wave) * rate.numerator // (sr * rate.denominator))  # ceil(duration * fps)
        n_frames = -(-n_frames // steps_per_frame)
    rows = n_frames * steps_per_frame
    win = max(int(round(win_seconds * sr)), 16)
    n_fft = 1 << (win - 1).bit_length()  # next power of two >= window
    basis = _mel_basis(sr, n_fft, n_mels, fmin, min(fmax or sr / 2, sr / 2))  # (n_mels, n_fft // 2 + 1)
    window = np.hanning(win + 2)[1:-1].astype(np.float32)  # periodic-ish Hann without zero end points
    half = win // 2
    padded = np.concatenate([np.zeros(half, np.float32), wave.astype(np.float32), np.zeros(win, np.float32)])
    out = np.empty((rows, n_mels), np.float32)
    for start in range(0, rows, chunk):  # bounded memory on hour-long audio
        j = np.arange(start, min(start + chunk, rows))
        centre = (j * sr * rate.denominator + rate.numerator // 2) // rate.numerator  # round(t_j * sr), exact
        idx = centre[:, None] + np.arange(win)[None, :]  # (J, win) into `padded` (offset by `half`)
        idx = np.minimum(idx, len(padded) - 1)  # frames past the end read zeros
        frames = padded[idx] * window  # (J, win)
        spec = np.abs(np.fft.rfft(frames, n=n_fft, axis=1)) ** 2  # (J, n_fft // 2 + 1)
        out[start:start + len(j)] = np.log(spec.astype(np.float32) @ basis.T + 1e-6)
    return out


def write_wav(path: PathLike, wave: np.ndarray, sr: int = 16000) -> Path:
    """Write float samples in [-1, 1], (n,) mono or (C, n), as 16-bit PCM WAV (clipped)."""
    import wave as wavfile

    data = np.asarray(wave, np.float32)
    data = data[None] if data.ndim == 1 else data
    pcm = (np.clip(data.T, -1.0, 1.0) * 32767).astype("<i2")  # (n, C) interleaved
    with wavfile.open(str(path), "wb") as w:
        w.setnchannels(data.shape[0])
        w.setsampwidth(2)
        w.setframerate(int(sr))
        w.writeframes(pcm.tobytes())
    return Path(path)
