"""Speech audio at the audio head's rate (16 kHz mono, 10 ms frames) and timed phones: what the audio head
(reenact.speech) and forced alignment (reenact.transcript) both use, below both of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reenact.errors import InputError

SR = 16000
HOP = 160  # 10 ms -> 100 feature frames per second
RATE = SR // HOP


@dataclass
class PhoneSegment:
    phone: str
    start: float  # seconds
    end: float
    word: str = ""


def frame_db(wave: np.ndarray) -> np.ndarray:
    """RMS level per 10 ms frame in dBFS, (len(wave) // HOP,)."""
    n = len(wave) // HOP
    frames = wave[: n * HOP].reshape(n, HOP).astype(np.float64)
    return (10.0 * np.log10(np.mean(frames**2, axis=1) + 1e-12)).astype(np.float32)


def mono16k(wave: np.ndarray, sr: int) -> np.ndarray:
    wave = np.asarray(wave, dtype=np.float32)
    if wave.ndim == 2:  # (samples, channels) or (channels, samples): average the short axis
        wave = wave.mean(axis=int(np.argmin(wave.shape)))
    if wave.ndim != 1:
        raise InputError("Audio must be mono or stereo samples; got an array of shape " + str(wave.shape) + ".")
    if sr <= 0:
        raise InputError(f"Sample rate must be positive, got {sr}.")
    if sr != SR:
        from math import gcd

        from scipy.signal import resample_poly

        g = gcd(SR, sr)
        wave = resample_poly(wave, SR // g, sr // g).astype(np.float32)
    return wave
