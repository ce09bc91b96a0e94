"""Parameter-driven edits of a still photo: Action Units, ARKit shapes, discrete emotions, valence/arousal/dominance.

Edits are absolute for the channels they name and leave every other channel at the photo's own value: `--au 12=0`
removes a smile the photo has, `--au 12=0.8` sets one. A photo's brow raise reads 0 (its reading is anatomy:
reenact.estimate.photo_reading), so `--au 1=1` always draws the whole raise. An emotion or a V/A/D point is a whole
facial expression, so it takes the place of the photo's own: `--emotion X:k` blends every expression channel (all but
gaze) from the photo's value to X's prototype, k of the way (`angry:1` on a smiling photo drops the smile; `neutral:1`
neutralises the face, `neutral:0.5` halves the photo's expression). SliderGAN's emotion edits work the same way (the
class prototype replaces the expression); adding the prototype on top of a photo's smile made anger and disgust
unrecognisable to an expression classifier (docs/emotion_eval.md). `--au`/`--arkit` values apply after the emotion, so
they can adjust it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from reenact.emotion import emotion_to_arkit, parse_emotion, vad_to_au
from reenact.errors import InputError
from reenact.params import ARKIT52, au_to_arkit
from reenact.retarget import arkit_indices, parse_assignments


_EXPRESSION = np.array([not n.startswith("eyeLook") for n in ARKIT52])  # every channel but gaze


@dataclass
class Controls:
    au: dict[str, float] = field(default_factory=dict)
    arkit: dict[str, float] = field(default_factory=dict)
    emotion: tuple[str, float] | None = None
    vad: tuple[float, float, float] | None = None

    @classmethod
    def parse(cls, au: list[str], arkit: list[str], emotion: str | None, vad: str | None) -> "Controls":
        au_values = {(k if k.upper().startswith("AU") else f"AU{k}"): v for k, v in parse_assignments(au, "--au").items()}
        vad_values = None
        if vad:
            try:
                parts = tuple(float(x) for x in vad.split(","))
            except ValueError:
                parts = ()
            if len(parts) not in (2, 3) or any(not -1.0 <= x <= 1.0 for x in parts):
                raise InputError(f"--vad {vad!r}: give valence,arousal[,dominance] each in [-1, 1], e.g. 0.6,0.4,0.1.")
            vad_values = (parts + (0.0,))[:3]
        out = cls(au_values, parse_assignments(arkit, "--arkit"), parse_emotion(emotion) if emotion else None, vad_values)
        for name, v in {**out.au, **out.arkit}.items():
            arkit_indices(name)  # validates the name
            if not 0.0 <= v <= 1.0:
                raise InputError(f"{name}={v:g} is outside [0, 1]; intensities run from 0 (off) to 1 (full).")
        if out.empty:
            raise InputError("Nothing to edit: give --au, --arkit, --emotion or --vad (e.g. --au 12=0.8).")
        return out

    @property
    def empty(self) -> bool:
        return not (self.au or self.arkit or self.emotion or self.vad)

    def apply(self, source: np.ndarray, scale: float = 1.0) -> np.ndarray:
        """(52,) source ARKit shapes -> (52,) edited shapes; `scale` sweeps every control from the source (0) to it (1)."""
        target = source.astype(np.float32).copy()
        if self.emotion or self.vad:
            full = np.zeros(len(ARKIT52), np.float32)  # (52,) the expression asked for, at full strength
            if self.emotion:
                full = np.maximum(full, emotion_to_arkit(self.emotion[0], 1.0))
            if self.vad:
                full = np.maximum(full, np.clip(au_to_arkit(vad_to_au(*self.vad)), 0.0, 1.0))
            k = self.emotion[1] if self.emotion else 1.0
            target[_EXPRESSION] = (1.0 - k) * source[_EXPRESSION] + k * full[_EXPRESSION]
        for name, v in {**self.au, **self.arkit}.items():
            target[arkit_indices(name)] = v
        return source + scale * (target - source)

    def labels(self) -> list[str]:
        out = [f"AU{k[2:]}={v:g}" for k, v in self.au.items()] + [f"{k}={v:g}" for k, v in self.arkit.items()]
        if self.emotion:
            out.append(f"{self.emotion[0]}:{self.emotion[1]:g}")
        if self.vad:
            out.append("vad=" + ",".join(f"{x:g}" for x in self.vad))
        return out

    def each(self) -> list["Controls"]:
        """One Controls per named control (the rows of --grid)."""
        rows = [Controls(au={k: v}) for k, v in self.au.items()] + [Controls(arkit={k: v}) for k, v in self.arkit.items()]
        if self.emotion:
            rows.append(Controls(emotion=self.emotion))
        if self.vad:
            rows.append(Controls(vad=self.vad))
        return rows


def label(image: np.ndarray, text: str) -> np.ndarray:
    """A copy of `image` with `text` in a dark band at the top."""
    out = image.copy()
    h = max(14, image.shape[0] // 14)
    out[:h] = (out[:h] * 0.35).astype(np.uint8)
    cv2.putText(out, text, (4, int(h * 0.75)), cv2.FONT_HERSHEY_SIMPLEX, h / 30, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def crop_box(points: np.ndarray, shape: tuple[int, ...], margin: float = 0.35) -> tuple[int, int, int, int]:
    """Square box around the face for grid cells."""
    lo, hi = points[:, :2].min(0), points[:, :2].max(0)
    c, half = (lo + hi) / 2, (hi - lo).max() * (0.5 + margin)
    x0, y0 = int(max(0, c[0] - half)), int(max(0, c[1] - half))
    return x0, y0, int(min(shape[1], c[0] + half)), int(min(shape[0], c[1] + half))
