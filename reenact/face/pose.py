"""Head pose from a 468/478-point mesh: weighted similarity Procrustes (Umeyama) against the canonical mesh.

Conventions (image axes: +x right, +y down; depth +z away from the camera, as in reenact.face.canonical):
    yaw    > 0 when the face turns toward the image's right (the subject's left), degrees
    pitch  > 0 when the face tilts up (chin forward, nose toward the image top), degrees
    roll   > 0 when the head rotates clockwise on screen (the subject's left eye lower), degrees
    tx, ty  image px of the canonical mesh's origin (its vertex centroid)
    scale   image px per canonical centimetre
Mirroring an image horizontally negates yaw and roll and keeps pitch.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from reenact.face.canonical import load_canonical


@dataclass
class Pose:
    yaw: float
    pitch: float
    roll: float
    tx: float
    ty: float
    scale: float
    rotation: np.ndarray | None = None  # (3, 3) image <- canonical

    def as_dict(self) -> dict[str, float]:
        return {k: round(float(getattr(self, k)), 4) for k in ("yaw", "pitch", "roll", "tx", "ty", "scale")}


@lru_cache(maxsize=1)
def stable_weights() -> np.ndarray:
    """(468,) weights: 1 on rigid parts (forehead, nose, upper cheeks), 0 on lips, jaw, eyelids and brows."""
    mesh = load_canonical()
    v = mesh.vertices
    w = np.ones(468, np.float32)
    nose_tip_y = v[1, 1]
    w[v[:, 1] > nose_tip_y + 0.8] = 0.0  # below the nose: mouth and jaw move with expression
    for g in ("left_eye", "right_eye", "left_eyebrow_upper", "left_eyebrow_lower", "right_eyebrow_upper",
              "right_eyebrow_lower", "lips_outer", "lips_inner"):
        w[mesh.group(g)] = 0.0
    return w


def umeyama(src: np.ndarray, dst: np.ndarray, w: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Weighted similarity s, R (proper rotation), t minimising sum w |s R src + t - dst|^2; rows are points."""
    w = w / w.sum()
    mu_s, mu_d = w @ src, w @ dst
    a, b = src - mu_s, dst - mu_d
    cov = (b * w[:, None]).T @ a
    u, sig, vt = np.linalg.svd(cov)
    d = np.ones(len(sig))
    d[-1] = np.sign(np.linalg.det(u @ vt))
    r = u @ np.diag(d) @ vt
    s = float((sig * d).sum() / (w @ (a**2).sum(1)))
    return s, r, mu_d - s * r @ mu_s


def angles(r: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees from a rotation image <- canonical (conventions above)."""
    # R = Ry(yaw) @ Rx(pitch) @ Rz(roll) with the signs of the conventions above.
    n = r @ np.array([0.0, 0.0, -1.0])  # facing direction (toward the camera when frontal)
    a = np.arctan2(n[0], -n[2])
    b = np.arctan2(-n[1], np.hypot(n[0], n[2]))
    ry = np.array([[np.cos(a), 0, -np.sin(a)], [0, 1, 0], [np.sin(a), 0, np.cos(a)]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), np.sin(b)], [0, -np.sin(b), np.cos(b)]])
    rz = rx.T @ ry.T @ r
    yaw, pitch, roll = np.degrees([a, b, np.arctan2(rz[1, 0], rz[0, 0])])
    return float(yaw), float(pitch), float(roll)


def estimate_pose(points: np.ndarray) -> Pose:
    """Pose of one face from its (468+, 3) landmarks (image px, z px-scaled)."""
    canon = load_canonical().vertices.astype(np.float64)
    s, r, t = umeyama(canon, points[:468].astype(np.float64), stable_weights().astype(np.float64))
    yaw, pitch, roll = angles(r)
    return Pose(yaw=yaw, pitch=pitch, roll=roll, tx=float(t[0]), ty=float(t[1]), scale=s, rotation=r.astype(np.float32))
