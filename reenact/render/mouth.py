"""Mouth interior for an opening mouth: a warp can only stretch the lips across the gap, so we paint a plausible
dark oral cavity with upper and lower teeth inside the target's inner-lip contour. The refiner (when present)
refines this further; without it (`--no-refine`) this is what the user sees.
"""

from __future__ import annotations

import cv2
import numpy as np

# MediaPipe FaceMesh inner-lip contour, corner to corner (left mouth corner 78 -> right corner 308).
UPPER_INNER = np.array([78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308])
LOWER_INNER = np.array([78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308])
CAVITY = np.array([52.0, 18.0, 24.0])
TEETH = np.array([232.0, 226.0, 214.0])


def lip_gap(points: np.ndarray) -> float:
    """Inner lip opening at the centre (px)."""
    return float(np.linalg.norm(points[14, :2] - points[13, :2]))


def mouth_width(points: np.ndarray) -> float:
    return float(np.linalg.norm(points[308, :2] - points[78, :2]))


def _lip_line(contour: np.ndarray, xs: np.ndarray) -> np.ndarray:
    order = np.argsort(contour[:, 0])
    return np.interp(xs, contour[order, 0], contour[order, 1])


def paint_interior(roi: np.ndarray, target: np.ndarray, source_gap: float, origin: tuple[int, int]) -> np.ndarray:
    """Paint the cavity and teeth into `roi` (H, W, 3 float 0..255, modified in place) for target mesh `target`
    (N, 2+ photo px); `origin` is the ROI's (x0, y0). Blends by how much wider the mouth is than in the source."""
    pts = target[:, :2] - np.asarray(origin, dtype=np.float32)
    width, gap = mouth_width(pts), lip_gap(pts)
    amount = float(np.clip((gap - source_gap) / (0.12 * width + 1e-6), 0.0, 1.0))
    if amount <= 0.0 or gap < 1.0:
        return roi
    upper, lower = pts[UPPER_INNER], pts[LOWER_INNER]
    poly = np.concatenate([upper, lower[::-1][1:-1]])
    x0, y0 = np.floor(poly.min(0)).astype(int) - 2
    x1, y1 = np.ceil(poly.max(0)).astype(int) + 3
    x0, y0 = max(x0, 0), max(y0, 0)
    x1, y1 = min(x1, roi.shape[1]), min(y1, roi.shape[0])
    if x1 - x0 < 2 or y1 - y0 < 2:
        return roi
    # Anti-aliased mask: draw at 4x and downsample.
    big = np.zeros(((y1 - y0) * 4, (x1 - x0) * 4), np.uint8)
    cv2.fillPoly(big, [np.round((poly - [x0, y0]) * 4).astype(np.int32)], 255, lineType=cv2.LINE_AA)
    mask = cv2.resize(big, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0

    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    top, bottom = _lip_line(upper, xs[0]), _lip_line(lower, xs[0])  # (w,)
    cx = 0.5 * (pts[78, 0] + pts[308, 0])
    across = np.clip(1.0 - ((xs - cx) / (0.5 * width)) ** 2, 0.0, 1.0)  # 1 at the centre, 0 at the corners
    depth = np.clip((ys - top) / np.maximum(bottom - top, 1.0), 0.0, 1.0)
    color = CAVITY * (0.55 + 0.45 * across[..., None]) * (0.8 + 0.4 * np.abs(depth - 0.5))[..., None]
    upper_teeth = np.clip((top + min(0.4 * gap, 0.11 * width) - ys) / 1.5, 0.0, 1.0)
    lower_teeth = np.clip((ys - (bottom - min(0.18 * gap, 0.06 * width))) / 1.5, 0.0, 1.0)
    teeth = np.maximum(upper_teeth, 0.85 * lower_teeth) * (0.35 + 0.65 * across)
    shade = (0.75 + 0.25 * across)[..., None]
    color = color * (1 - teeth[..., None]) + (TEETH * shade) * teeth[..., None]
    alpha = (mask * amount)[..., None]
    patch = roi[y0:y1, x0:x1]
    roi[y0:y1, x0:x1] = patch * (1 - alpha) + color * alpha
    return roi
