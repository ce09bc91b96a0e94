"""Pure functions on parameter tracks `x[T, C]`: gap filling, neutral calibration, filtering, jitter.

Channel classes decide the filter cutoffs: blinks and the jaw/mouth move fast (a blink lasts ~100-150 ms, a syllable
~200 ms) so they keep 10 and 8 Hz (a 3-frame blink still shuts: its peak survives the filter at 24-30 fps); brows,
cheeks and the nose move slower. Head pose keeps 3 Hz: a talking head's quick nods are real motion (the reference
mesh's head pitch follows the tracked one better at 3 Hz than at 1.5, docs/fidelity.md "Sixth pass"), and the
tracker's pose noise left at 3 Hz is a few hundredths of a degree per frame. The offline default
is a zero-phase Butterworth (filtfilt: no lag, a step keeps its level); the online One Euro filter (Casiez et al.,
CHI 2012) adapts its cutoff to the speed, so it is smooth at rest and keeps up with fast motion.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy.signal import butter, filtfilt

from reenact.errors import InputError, NoFaceError
from reenact.params import ARKIT52, AU17, EYE_AREA, GAZE, POSE, RANGES, VISEME15, canonical_channel

# Offline cutoff (Hz) and One Euro beta (per unit/s of the channel) by class.
CLASSES: dict[str, tuple[float, float]] = {
    "blink": (10.0, 1.0),
    "mouth": (8.0, 1.0),
    "eye_area": (8.0, 1.0),
    "eye": (4.0, 1.0),
    "gaze": (4.0, 0.05),
    "brow": (2.5, 1.0),
    "pose_angle": (3.0, 0.05),
    "pose_shift": (1.5, 0.02),
}
_EXPRESSION = set(AU17) | set(ARKIT52) | set(VISEME15)


def channel_class(name: str) -> str:
    """Which of CLASSES a channel belongs to."""
    name = canonical_channel(name)
    if name in ("AU45",) or name.startswith("eyeBlink"):
        return "blink"
    if name in POSE:
        return "pose_angle" if name in ("yaw", "pitch", "roll") else "pose_shift"
    if name in GAZE:
        return "gaze"
    if name in EYE_AREA:  # lids in them: fast (their blinks are the rig's, they fade out at a blink)
        return "eye_area"
    if name in VISEME15 or name.startswith(("jaw", "mouth", "tongue")) or name in (
            "AU10", "AU12", "AU14", "AU15", "AU17", "AU20", "AU23", "AU25", "AU26"):
        return "mouth"
    if name.startswith("eye") or name in ("AU5", "AU7"):
        return "eye"
    return "brow"  # brows, cheeks, nose: AU1, AU2, AU4, AU6, AU9, brow*, cheek*, noseSneer*


def cutoffs_for(channels: Sequence[str], fps: float) -> np.ndarray:
    """(C,) offline cutoffs in Hz, capped below Nyquist."""
    return np.array([min(CLASSES[channel_class(c)][0], 0.45 * fps) for c in channels], np.float64)


def fill_gaps(x: np.ndarray, method: str = "linear") -> tuple[np.ndarray, np.ndarray]:
    """Fill frames with NaN (no face): `linear` interpolation or `hold` the last value. Returns (filled, missing (T,)).

    Leading and trailing gaps hold the nearest valid frame. Raises NoFaceError when no frame is valid.
    """
    x = np.asarray(x, np.float32)  # (T, C)
    missing = ~np.all(np.isfinite(x), axis=1)  # a frame is missing when any channel is
    if missing.all():
        raise NoFaceError("No frame of the video has a face; use a clip where the face is visible.")
    if not missing.any():
        return x.copy(), missing
    t = np.arange(len(x))
    ok = np.flatnonzero(~missing)
    out = x.copy()
    if method == "linear":
        for c in range(x.shape[1]):
            out[missing, c] = np.interp(t[missing], ok, x[ok, c])
    elif method == "hold":
        src = ok[np.clip(np.searchsorted(ok, t, side="right") - 1, 0, len(ok) - 1)]  # last valid at or before t
        out = x[src].copy()
    else:
        raise InputError(f"fill_gaps method must be 'linear' or 'hold', not {method!r}")
    return out, missing


def neutral_calibrate(x: np.ndarray, channels: Sequence[str], percentile: float = 5.0
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Subtract each expression channel's low percentile (the driver's resting value), as OpenFace does.

    A driver whose resting face reads as AU4=0.2 (a naturally low brow) then drives 0, so the first frame need not
    be neutral. Pose and gaze are left alone. Returns (calibrated x clipped to [0, 1], neutral (C,)).
    """
    x = np.asarray(x, np.float32)
    neutral = np.zeros(x.shape[1], np.float32)
    out = x.copy()
    for c, name in enumerate(channels):
        if canonical_channel(name) in _EXPRESSION:
            neutral[c] = np.nanpercentile(x[:, c], percentile) if np.isfinite(x[:, c]).any() else 0.0
            out[:, c] = np.clip(x[:, c] - neutral[c], 0.0, 1.0)
    return out, neutral


def zero_phase(x: np.ndarray, fps: float, cutoff_hz: np.ndarray | float, order: int = 2) -> np.ndarray:
    """Zero-phase low-pass (Butterworth forward-backward) per channel; sequences too short to pad pass unchanged."""
    x = np.asarray(x, np.float32)
    cut = np.broadcast_to(np.asarray(cutoff_hz, np.float64), (x.shape[1],))
    out = x.copy()
    for fc in np.unique(cut):
        cols = np.flatnonzero(cut == fc)
        if fc >= 0.5 * fps:
            continue
        b, a = butter(order, fc / (0.5 * fps))
        if len(x) <= 3 * max(len(a), len(b)):
            continue
        out[:, cols] = filtfilt(b, a, x[:, cols].astype(np.float64), axis=0, padtype="odd").astype(np.float32)
    return out


@dataclass
class OneEuro:
    """Online One Euro filter over C channels. Call once per frame with the frame's values and time in seconds."""

    min_cutoff: np.ndarray  # (C,) Hz at rest
    beta: np.ndarray  # (C,) cutoff increase per unit/s of speed
    d_cutoff: float = 1.0
    _x: np.ndarray | None = None
    _dx: np.ndarray | None = None
    _t: float | None = None

    @staticmethod
    def _alpha(cutoff: np.ndarray, dt: float) -> np.ndarray:
        tau = 1.0 / (2 * np.pi * cutoff)
        return 1.0 / (1.0 + tau / dt)

    def __call__(self, x: np.ndarray, t: float) -> np.ndarray:
        x = np.asarray(x, np.float64)
        if self._x is None or self._t is None or t <= self._t:
            self._x, self._dx, self._t = x.copy(), np.zeros_like(x), t
            return x.astype(np.float32)
        dt = t - self._t
        dx = (x - self._x) / dt
        self._dx = self._dx + self._alpha(np.full_like(x, self.d_cutoff), dt) * (dx - self._dx)
        cutoff = self.min_cutoff + self.beta * np.abs(self._dx)
        self._x = self._x + self._alpha(cutoff, dt) * (x - self._x)
        self._t = t
        return self._x.astype(np.float32)


def one_euro_for(channels: Sequence[str], fps: float) -> OneEuro:
    """A One Euro filter with per-class settings (rest cutoff = half the offline cutoff)."""
    classes = [CLASSES[channel_class(c)] for c in channels]
    return OneEuro(np.array([min(c[0] / 2.0, 0.45 * fps) for c in classes]), np.array([c[1] for c in classes]))


def one_euro(x: np.ndarray, fps: float, channels: Sequence[str]) -> np.ndarray:
    """Run the online filter over a whole (T, C) array (for tests and `--online`)."""
    f = one_euro_for(channels, fps)
    return np.stack([f(row, i / fps) for i, row in enumerate(np.asarray(x, np.float32))]) if len(x) else x


def jitter(x: np.ndarray) -> np.ndarray:
    """(C,) mean absolute second difference per channel: frame-to-frame shake, ~0 for smooth motion."""
    x = np.asarray(x, np.float64)
    if len(x) < 3:
        return np.zeros(x.shape[1], np.float32)
    return np.nanmean(np.abs(np.diff(x, n=2, axis=0)), axis=0).astype(np.float32)


def clip_to_ranges(x: np.ndarray, channels: Sequence[str]) -> np.ndarray:
    lo = np.array([RANGES[canonical_channel(c)][0] for c in channels], np.float32)
    hi = np.array([RANGES[canonical_channel(c)][1] for c in channels], np.float32)
    return np.clip(x, lo, hi)


PEAK_MARGIN = 0.1  # a blink channel's rise above its filtered value beyond this is kept (see keep_blink_peaks)


def keep_blink_peaks(raw: np.ndarray, smoothed: np.ndarray, channels: Sequence[str]) -> np.ndarray:
    """Blink channels: where the raw value rises more than PEAK_MARGIN above the filtered one, keep the excess.

    A real blink is shut for one or two frames at 25-30 fps; even the blink class's 10 Hz filter halves such a peak
    (a one-frame shut eye read 0.86 came out 0.67), while the jitter it is there for is a few hundredths. Only rises
    pass (a blink closes), so an open eye stays as smooth as before."""
    out = smoothed.copy()
    for c, name in enumerate(channels):
        if channel_class(name) == "blink":
            out[:, c] += np.maximum(raw[:, c] - smoothed[:, c] - PEAK_MARGIN, 0.0)
    return out


def smooth_track(x: np.ndarray, channels: Sequence[str], fps: float, mode: str = "offline",
                 calibrate: bool = True, gaps: str = "linear") -> tuple[np.ndarray, np.ndarray]:
    """The whole chain used by `extract`/`drive`: fill gaps -> calibrate -> filter -> clip to each range.

    mode: `offline` (zero-phase, default), `online` (One Euro) or `none`. Returns (x (T, C), missing (T,)).
    """
    x, missing = fill_gaps(x, gaps)
    if calibrate:
        x, _ = neutral_calibrate(x, channels)
    if mode == "offline":
        x = keep_blink_peaks(x, zero_phase(x, fps, cutoffs_for(channels, fps)), channels)
    elif mode == "online":
        x = one_euro(x, fps, channels)
    elif mode != "none":
        raise InputError(f"smooth mode must be offline, online or none, not {mode!r}")
    return clip_to_ranges(x, channels), missing
