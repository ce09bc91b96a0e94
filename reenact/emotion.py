"""Discrete emotions as EMFACS Action-Unit prototypes, and a continuous valence/arousal/dominance (VAD) space.

Discrete: each emotion is an AU17 vector (its EMFACS prototype, with relative weights so that the
strongest action is 1.0) scaled by an intensity in [0, 1].

Continuous: built as in the continuous-emotion paper (seed 004): the class centroids are our prototypes, and the
valence, arousal and dominance axes are found by linear regression of the centroids on the categories' published
pleasure-arousal-dominance ratings (Russell & Mehrabian 1977, Table 4: mean ratings of 151 emotion terms on -1..+1
scales; the rows used are named in `VAD_TERMS`, and docs/params.md says how they were checked). `AXES` (no
intercept, so (0, 0, 0) is neutral) gives `au_to_vad`; `vad_to_au` adds a thin-plate-spline residual on top of
the regression so that each category's rating lands exactly on its prototype (a purely linear 3-d map blurs the 7
prototypes into muddy mixtures). Numbers in docs/params.md.
"""

from __future__ import annotations

import functools
import re

import numpy as np
from scipy.interpolate import RBFInterpolator

from reenact.errors import InputError
from reenact.params import ARKIT52, AU17, au_to_arkit

# EMFACS prototypes (Ekman & Friesen). AU16 (disgust) is not in AU17: AU10 carries the upper-lip part.
PROTOTYPES: dict[str, dict[str, float]] = {
    "neutral": {},
    "happy": {"AU6": 0.7, "AU12": 1.0, "AU25": 0.3},
    "sad": {"AU1": 0.8, "AU4": 0.6, "AU15": 1.0, "AU17": 0.3},
    "surprise": {"AU1": 1.0, "AU2": 1.0, "AU5": 0.7, "AU25": 0.6, "AU26": 0.7},
    "fear": {"AU1": 0.9, "AU2": 0.6, "AU4": 0.6, "AU5": 0.9, "AU7": 0.4, "AU20": 1.0, "AU25": 0.5, "AU26": 0.4},
    "angry": {"AU4": 1.0, "AU5": 0.5, "AU7": 0.8, "AU23": 0.9},
    "disgust": {"AU9": 1.0, "AU10": 0.6, "AU15": 0.5, "AU17": 0.3},
    # Contempt is unilateral AU12+AU14; AU17 is bilateral, so its AU vector is weaker and emotion_to_arkit puts it
    # on the right side only.
    "contempt": {"AU12": 0.35, "AU14": 0.8},
}

ALIASES: dict[str, str] = {
    "happiness": "happy", "joy": "happy", "smile": "happy", "sadness": "sad", "unhappy": "sad",
    "surprised": "surprise", "fearful": "fear", "afraid": "fear", "scared": "fear", "anger": "angry",
    "mad": "angry", "disgusted": "disgust", "contemptuous": "contempt", "calm": "neutral", "none": "neutral",
}

# Pleasure (valence), arousal, dominance in [-1, 1]: Russell & Mehrabian (1977), "Evidence for a three-factor theory
# of emotions", J. Research in Personality 11:273-294, Table 4, the row of the term in VAD_TERMS.
VAD: dict[str, tuple[float, float, float]] = {
    "neutral": (0.0, 0.0, 0.0),
    "happy": (0.81, 0.51, 0.46),
    "sad": (-0.63, -0.27, -0.33),
    "surprise": (0.40, 0.67, -0.13),
    "fear": (-0.64, 0.60, -0.43),
    "angry": (-0.51, 0.59, 0.25),
    "disgust": (-0.60, 0.35, 0.11),
    "contempt": (-0.23, 0.31, 0.18),
}
VAD_TERMS: dict[str, str] = {"happy": "Happy", "sad": "Sad", "surprise": "Surprised", "fear": "Fearful",
                             "angry": "Angry", "disgust": "Disgusted", "contempt": "Contempt"}
EMOTIONS: tuple[str, ...] = tuple(PROTOTYPES)


def canonical_emotion(name: str) -> str:
    """`Happiness`, `anger`, ... -> the canonical name; InputError listing the choices when unknown."""
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    if key not in PROTOTYPES:
        raise InputError(f"Unknown emotion {name!r}: use one of {', '.join(EMOTIONS)}.")
    return key


def prototype(name: str) -> np.ndarray:
    """(17,) AU prototype of an emotion at full intensity."""
    v = np.zeros(len(AU17), np.float32)
    for au, w in PROTOTYPES[canonical_emotion(name)].items():
        v[AU17.index(au)] = w
    return v


def emotion_to_au(name: str, intensity: float = 1.0) -> np.ndarray:
    """(17,) AU intensities of `name` at `intensity` in [0, 1]."""
    if not 0.0 <= intensity <= 1.0:
        raise InputError(f"Emotion intensity {intensity:g} is outside [0, 1]; e.g. happy:0.6.")
    return prototype(name) * np.float32(intensity)


def emotion_to_arkit(name: str, intensity: float = 1.0) -> np.ndarray:
    """(52,) ARKit weights; like au_to_arkit(emotion_to_au(...)) but contempt stays one-sided (right)."""
    key = canonical_emotion(name)
    out = au_to_arkit(emotion_to_au(key, intensity))
    if key == "contempt":
        out[:] = 0.0
        out[ARKIT52.index("mouthSmileRight")] = 0.5 * intensity
        out[ARKIT52.index("mouthDimpleRight")] = 0.9 * intensity
    return out


def parse_emotion(spec: str) -> tuple[str, float]:
    """`"happy:0.6"` -> ("happy", 0.6); `"sad"` -> ("sad", 1.0)."""
    m = re.fullmatch(r"\s*([A-Za-z_]+)\s*(?:[:=]\s*([-+0-9.eE]+))?\s*", spec or "")
    if m is None:
        raise InputError(f"Cannot read emotion {spec!r}: write NAME or NAME:INTENSITY, e.g. happy:0.6.")
    try:
        intensity = float(m.group(2)) if m.group(2) else 1.0
    except ValueError:
        raise InputError(f"Cannot read the intensity in {spec!r}: write a number in [0, 1], e.g. happy:0.6.") from None
    if not 0.0 <= intensity <= 1.0:
        raise InputError(f"Emotion intensity in {spec!r} is outside [0, 1]; e.g. happy:0.6.")
    return canonical_emotion(m.group(1)), intensity


def _fit_axes() -> tuple[np.ndarray, float]:
    """Least squares, no intercept: centroid_k ≈ AXES @ vad_k. Returns AXES (17, 3) and the RMS residual."""
    names = [n for n in EMOTIONS if n != "neutral"]
    x = np.array([VAD[n] for n in names], np.float64)  # (7, 3)
    y = np.stack([prototype(n) for n in names]).astype(np.float64)  # (7, 17)
    w, *_ = np.linalg.lstsq(x, y, rcond=None)  # (3, 17)
    rms = float(np.sqrt(np.mean((x @ w - y) ** 2)))
    return w.T.astype(np.float32), rms


AXES, AXES_RMS = _fit_axes()  # (17, 3): columns are the valence, arousal, dominance directions in AU space


@functools.cache
def _interpolant() -> RBFInterpolator:
    # Thin-plate spline with a degree-1 polynomial: the polynomial part is a linear regression of the centroids on
    # their VAD ratings (the paper's axes, with intercept); the spline part makes the map pass exactly through every
    # centroid, so vad_to_au(*VAD["happy"]) is the happy prototype and the origin is neutral.
    x = np.array([VAD[n] for n in EMOTIONS], np.float64)
    y = np.stack([prototype(n) for n in EMOTIONS]).astype(np.float64)
    return RBFInterpolator(x, y, kernel="thin_plate_spline", degree=1)


def vad_to_au(valence: float, arousal: float, dominance: float = 0.0) -> np.ndarray:
    """(17,) AU intensities at a point of the VAD space (each coordinate in [-1, 1]), clipped to [0, 1]."""
    vad = np.array([valence, arousal, dominance], np.float64)
    if np.any(np.abs(vad) > 1.0) or not np.all(np.isfinite(vad)):
        raise InputError(f"Valence/arousal/dominance {tuple(vad.tolist())} must each lie in [-1, 1].")
    return np.clip(_interpolant()(vad[None])[0], 0.0, 1.0).astype(np.float32)


def au_to_vad(au: np.ndarray) -> np.ndarray:
    """(..., 17) AUs -> (..., 3) VAD coordinates (least-squares projection onto the axes), clipped to [-1, 1]."""
    return np.clip(np.asarray(au, np.float32) @ np.linalg.pinv(AXES).T, -1.0, 1.0)


def classify(au: np.ndarray) -> tuple[str, float]:
    """Nearest prototype direction (cosine) and the intensity along it, for a (17,) AU vector."""
    au = np.asarray(au, np.float32)
    if float(np.abs(au).sum()) < 0.05:
        return "neutral", 0.0
    best, score = "neutral", -1.0
    for n in EMOTIONS[1:]:
        p = prototype(n)
        c = float(au @ p / (np.linalg.norm(au) * np.linalg.norm(p)))
        if c > score:
            best, score = n, c
    p = prototype(best)
    return best, float(np.clip(au @ p / (p @ p), 0.0, 1.0))
