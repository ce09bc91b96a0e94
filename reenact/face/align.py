"""Similarity crops from landmarks, and their inverse for paste-back.

`crop_matrix(points, size)` gives the 2x3 matrix image px -> crop px that puts the face's rigid points (forehead,
nose, eye corners, cheeks) where the frontal canonical mesh has them in a `size` x `size` crop: the face is centred,
upright (roll removed) and at a fixed scale, so crops of one face across frames line up. Yaw and pitch are left alone
(a similarity cannot remove them).
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from reenact.face.canonical import load_canonical
from reenact.face.pose import stable_weights

# Fraction of the crop side covered by the canonical face's width (ear to ear ~ 14 cm): leaves hair/chin margin.
FACE_FRACTION = 0.62


@lru_cache(maxsize=8)
def template(size: int, face_fraction: float = FACE_FRACTION) -> np.ndarray:
    """(468, 2) target crop px of the canonical mesh's frontal projection."""
    v = load_canonical().vertices[:, :2].astype(np.float64)
    k = size * face_fraction / np.ptp(v[:, 0])
    centre = np.array([size / 2, size / 2]) - k * np.array([0.0, v[:, 1].mean() - 0.6])  # nudge up: room for the chin
    return v * k + centre


def similarity_2d(src: np.ndarray, dst: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted 2-D similarity (no reflection) src -> dst as a 2x3 matrix."""
    w = w / w.sum()
    mu_s, mu_d = w @ src, w @ dst
    a, b = src - mu_s, dst - mu_d
    u, sig, vt = np.linalg.svd((b * w[:, None]).T @ a)
    d = np.array([1.0, np.sign(np.linalg.det(u @ vt))])
    r = u @ np.diag(d) @ vt
    s = (sig * d).sum() / (w @ (a**2).sum(1))
    return np.concatenate([s * r, (mu_d - s * r @ mu_s)[:, None]], 1)


def crop_matrix(points: np.ndarray, size: int = 256, face_fraction: float = FACE_FRACTION) -> np.ndarray:
    """2x3 float64 matrix image px -> crop px for one face's (468+, 2|3) landmarks."""
    w = stable_weights().astype(np.float64) + 0.05  # mostly rigid points; a little of everything for stability
    return similarity_2d(points[:468, :2].astype(np.float64), template(size, face_fraction), w)


def invert(m: np.ndarray) -> np.ndarray:
    """Inverse of a 2x3 affine (crop px -> image px)."""
    return cv2.invertAffineTransform(m)


def warp_to_crop(rgb: np.ndarray, m: np.ndarray, size: int) -> np.ndarray:
    """(size, size, C) crop of `rgb` through image->crop matrix `m` (bilinear, replicated border)."""
    return cv2.warpAffine(rgb, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def transform_points(points: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Apply a 2x3 matrix to (N, 2|3) points (z, when present, is scaled by the matrix's scale)."""
    out = points.astype(np.float64).copy()
    out[:, :2] = points[:, :2] @ m[:, :2].T + m[:, 2]
    if points.shape[1] > 2:
        out[:, 2] = points[:, 2] * np.sqrt(abs(np.linalg.det(m[:, :2])))
    return out.astype(np.float32)


def paste_back(frame: np.ndarray, crop: np.ndarray, m: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Blend `crop` (made with image->crop matrix `m`) back into a copy of `frame`.

    `mask` (size, size) float in [0, 1] weights the crop (1 = crop pixel); default: a feathered full square.
    """
    h, w = frame.shape[:2]
    size = crop.shape[0]
    if mask is None:
        mask = np.zeros((size, size), np.float32)
        edge = max(size // 16, 1)
        mask[edge:-edge, edge:-edge] = 1.0
        mask = cv2.GaussianBlur(mask, (0, 0), edge / 2)
    inv = invert(m)
    back = cv2.warpAffine(crop, inv, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    alpha = cv2.warpAffine(mask.astype(np.float32), inv, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    alpha = alpha[..., None] if frame.ndim == 3 else alpha
    out = frame.astype(np.float32) * (1 - alpha) + back.astype(np.float32) * alpha
    return np.clip(out + 0.5, 0, 255).astype(frame.dtype) if frame.dtype == np.uint8 else out.astype(frame.dtype)
