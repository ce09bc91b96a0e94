"""An anatomical crease basis for the expression-shading fit (`python -m reenact.train.shading --creases R`).

A per-texel map learnt from five people paints *their* creases onto everyone (docs/shading.md); but where creases
form is anatomy, the same on every face: the glabella's vertical lines when the brows are pulled down (AU4), the
nasal root and the nose's side walls in a sneer (AU9), the nasolabial fold in a smile or a raised upper lip, crow's
feet and the lower-lid fold with the cheek raiser (AU6), the forehead's horizontal lines when the brows go up (AU1,
AU2), the marionette lines of the lip-corner depressor (AU15). Game and film rigs draw these with authored "wrinkle
maps" blended by the expression weights; here each is a line (a polyline through canonical FaceMesh landmarks, in
the shading's texture space) with two profiles, a narrow groove and a broader shadow, and the fit learns only one
amplitude per (Action Unit, crease, profile) from the footage: a few dozen numbers instead of 7,500 per AU, so what
is learnt is how deep a crease gets, not where one person has hers. The chin's fold under the lower lip is left
out: it sits on the lip's edge, which the tracker places too loosely, and it made a talking person left out of the
fit worse.

`basis()` -> (J, TEX, TEX) patterns (unit peak, both sides of the face together); `allowed(aus)` -> the (AU,
pattern) pairs the fit may use: each crease responds only to the AUs of the muscles that make it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from reenact.render.shade import TextureSpace

PROFILES = {"groove": 0.8, "shadow": 2.0}  # Gaussian sigma across the line, texels (1 texel ~ 1.2 mm of face)


@dataclass(frozen=True)
class Crease:
    """A crease on the subject's right side as (landmark, landmark, t) interpolation points; mirrored to the left."""

    name: str
    path: tuple[tuple[int, int, float], ...]  # each point = uv[a] + t * (uv[b] - uv[a])
    aus: tuple[str, ...]


def _p(a: int, b: int | None = None, t: float = 0.0) -> tuple[int, int, float]:
    return (a, a if b is None else b, t)


# Landmarks: FaceMesh indices, subject's right side (image left in the canonical texture). 8/9: between the brows,
# 55/107: inner brow head, 168/6: nasal root and bridge, 33: outer eye corner, 129: nostril wing, 61: mouth corner.
CREASES: tuple[Crease, ...] = (
    Crease("glabella", (_p(168, 55, 0.35), _p(8, 55, 0.4), _p(9, 107, 0.4)), ("AU4",)),
    Crease("nasal root", (_p(168, 193, 0.9), _p(168, 6, 0.35)), ("AU4", "AU9")),
    Crease("nose side", (_p(122), _p(114)), ("AU9", "AU10")),
    Crease("forehead low", (_p(70, 104, 0.35), _p(107, 108, 0.35), _p(9, 151, 0.35)), ("AU1", "AU2")),
    Crease("forehead mid", (_p(70, 104, 0.7), _p(107, 108, 0.7), _p(9, 151, 0.7)), ("AU1", "AU2")),
    Crease("forehead high", (_p(70, 104, 1.05), _p(107, 108, 1.05), _p(9, 151, 1.05)), ("AU1", "AU2")),
    Crease("crow's feet up", (_p(33, 70, 0.3), _p(33, 70, 0.6)), ("AU6", "AU7", "AU12")),
    Crease("crow's feet mid", (_p(33, 143, 0.6), _p(33, 143, 1.4)), ("AU6", "AU7", "AU12")),
    Crease("crow's feet down", (_p(33, 111, 0.5), _p(33, 111, 1.1)), ("AU6", "AU7", "AU12")),
    Crease("lower lid fold", (_p(111, 230, 0.5), _p(230, 119, 0.4), _p(119, 114, 0.6)), ("AU6", "AU7")),
    Crease("nasolabial", (_p(129), _p(203), _p(206), _p(216), _p(212)), ("AU6", "AU9", "AU10", "AU12", "AU20")),
    Crease("dimple", (_p(212, 216, 0.15), _p(212, 202, 0.5)), ("AU14",)),
    Crease("marionette", (_p(57, 202, 0.3), _p(202), _p(202, 152, 0.25)), ("AU15",)),
)


@lru_cache(maxsize=1)
def basis() -> tuple[np.ndarray, tuple[tuple[str, str], ...]]:
    """(J, TEX, TEX) float32 patterns in [0, 1] on the skin, and their (crease, profile) names."""
    space = TextureSpace.default()
    n = space.size
    mirror = _mirror_index()
    out, names = [], []
    for crease in CREASES:
        line = np.zeros((n * 8, n * 8), np.uint8)  # drawn at 8x and blurred down: a sub-texel, antialiased line
        for side in (lambda i: i, lambda i: mirror[i]):
            pts = np.array([space.uv[side(a)] + t * (space.uv[side(b)] - space.uv[side(a)])
                            for a, b, t in crease.path])
            cv2.polylines(line, [np.round(pts * 8 * 16).astype(np.int32)], False, 255, 8, cv2.LINE_AA, shift=4)
        line = cv2.resize(line.astype(np.float32) / 255, (n, n), interpolation=cv2.INTER_AREA)
        for profile, sigma in PROFILES.items():
            p = cv2.GaussianBlur(line, (0, 0), sigma) * space.skin
            out.append(p / max(float(p.max()), 1e-6))
            names.append((crease.name, profile))
    return np.stack(out).astype(np.float32), tuple(names)


def allowed(aus: tuple[str, ...]) -> list[tuple[int, int]]:
    """(AU position in `aus`, pattern index) pairs the fit may use."""
    _, names = basis()
    by_name = {c.name: c.aus for c in CREASES}
    return [(aus.index(au), j) for j, (crease, _) in enumerate(names) for au in by_name[crease] if au in aus]


@lru_cache(maxsize=1)
def _mirror_index() -> np.ndarray:
    """(468,) index of each FaceMesh vertex's left/right mirror, from the canonical face's x symmetry."""
    from reenact.face.canonical import load_canonical

    return np.asarray(load_canonical().mirror)[:468]
