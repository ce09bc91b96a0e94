"""Mouth interior for an opening mouth. A warp can only stretch the lips and whatever is between them across the
gap, so the inside of the target's inner-lip contour is redrawn here:

- teeth ride with their jaws: the upper teeth keep their distance below the upper lip, the lower teeth above the
  lower lip. When the photo shows teeth, those real pixels are re-sampled 1:1 from the photo (no stretching);
- when the photo's lips are closed, upper and lower teeth are drawn (ivory, shaded at the corners);
- the extra opening between them is a dark oral cavity;
- or, instead of the drawn teeth and cavity, a `fill` draws the interior: `drive --mouth driver` carries the
  driver's own, `--mouth library` real mouths chosen by shape (reenact.render.interior), feathered inside the lip
  line; the photo's own teeth stay on top.
The refiner (when present) refines this; with `--no-refine` this is what the user sees.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

from reenact.face.landmarks import LIP_INNER_LOOP, LOWER_INNER, UPPER_INNER

if TYPE_CHECKING:
    from reenact.render.interior import Fill

CAVITY = np.array([52.0, 18.0, 24.0])
TEETH = np.array([226.0, 220.0, 206.0])
UPPER_SHARE = 0.6  # of a photo's visible opening, the part that belongs to the upper teeth


def lip_gap(points: np.ndarray) -> float:
    """Inner lip opening at the centre (px)."""
    return float(np.linalg.norm(points[14, :2] - points[13, :2]))


def mouth_width(points: np.ndarray) -> float:
    return float(np.linalg.norm(points[308, :2] - points[78, :2]))


def _lip_line(contour: np.ndarray, xs: np.ndarray) -> np.ndarray:
    order = np.argsort(contour[:, 0])
    return np.interp(xs, contour[order, 0], contour[order, 1])


def painted(u: np.ndarray, v: np.ndarray, depth: np.ndarray, across: np.ndarray, gap: float,
            width: float) -> np.ndarray:
    """(h, w, 3) a dark cavity shaded to the corners and the middle, with ivory teeth under each lip (heights follow
    the opening and the mouth width); u / v: px below the upper / above the lower lip."""
    color = CAVITY * (0.55 + 0.45 * across[..., None]) * (0.8 + 0.4 * np.abs(depth - 0.5))[..., None]
    drawn_up = np.clip((min(0.4 * gap, 0.11 * width) - u) / 1.5, 0.0, 1.0)
    drawn_lo = np.clip((min(0.18 * gap, 0.06 * width) - v) / 1.5, 0.0, 1.0) * 0.85
    drawn = np.maximum(drawn_up, drawn_lo) * (0.35 + 0.65 * across)
    return color * (1 - drawn[..., None]) + (TEETH * (0.75 + 0.25 * across)[..., None]) * drawn[..., None]


class MouthPainter:
    """Per source photo: its inner-lip lines and pixels; `paint` redraws one target frame's mouth."""

    def __init__(self, image: np.ndarray, points: np.ndarray, origin: tuple[int, int]) -> None:
        self.origin = np.asarray(origin, np.float32)
        self.src = points[:, :2] - self.origin  # ROI coords
        self.gap = lip_gap(self.src)
        # Only the photo's mouth region is ever re-sampled: keep that patch (ROI coords of its corner in `corner`).
        lips = self.src[np.concatenate([UPPER_INNER, LOWER_INNER])]
        pad = mouth_width(self.src) * 0.5 + 4
        x0, y0 = np.maximum(np.floor(lips.min(0) - pad).astype(int) + np.asarray(origin, int), 0)
        x1, y1 = np.ceil(lips.max(0) + pad).astype(int) + np.asarray(origin, int)
        self.image = image[y0:y1, x0:x1].astype(np.float32)
        self.corner = np.array([x0, y0], np.float32) - self.origin

    def paint(self, roi: np.ndarray, target: np.ndarray, fill: "Fill | None" = None) -> np.ndarray:
        """Redraw the mouth inside `roi` (H, W, 3 float 0..255, modified in place) for `target` (N, 2+ photo px);
        `fill(points, box)` draws the interior instead of the painted teeth and cavity (ROI px)."""
        pts = target[:, :2] - self.origin
        width, gap = mouth_width(pts), lip_gap(pts)
        if gap <= max(self.gap, 0.5) + 0.5:  # not opening beyond the photo: the warp already has it right
            return roi
        upper, lower = pts[UPPER_INNER], pts[LOWER_INNER]
        poly = pts[LIP_INNER_LOOP]
        x0, y0 = np.floor(poly.min(0)).astype(int) - 2
        x1, y1 = np.ceil(poly.max(0)).astype(int) + 3
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, roi.shape[1]), min(y1, roi.shape[0])
        if x1 - x0 < 2 or y1 - y0 < 2:
            return roi
        big = np.zeros(((y1 - y0) * 4, (x1 - x0) * 4), np.uint8)  # anti-aliased mask: draw at 4x, downsample
        cv2.fillPoly(big, [np.round((poly - [x0, y0]) * 4).astype(np.int32)], 255, lineType=cv2.LINE_AA)
        mask = cv2.resize(big, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0

        if fill is not None:  # a real interior: feathered inside the lip line (about 1.5 % of the mouth width)
            soft = cv2.GaussianBlur(mask, (0, 0), max(0.6, 0.015 * width))
            mask = mask * np.clip(2.0 * soft - 0.5, 0.0, 1.0)
        ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        top, bottom = _lip_line(upper, xs[0]), _lip_line(lower, xs[0])  # (w,) target inner lip lines
        # Matching column in the photo: proportional position between the mouth corners.
        along = (xs[0] - pts[78, 0]) / max(pts[308, 0] - pts[78, 0], 1e-3)
        sx = self.src[78, 0] + along * (self.src[308, 0] - self.src[78, 0])
        s_top, s_bottom = _lip_line(self.src[UPPER_INNER], sx), _lip_line(self.src[LOWER_INNER], sx)
        s_gap = np.maximum(s_bottom - s_top, 0.0)  # (w,) the photo's opening per column
        u, v = ys - top, bottom - ys  # distance below the upper lip / above the lower lip
        cx = 0.5 * (pts[78, 0] + pts[308, 0])
        across = np.clip(1.0 - ((xs - cx) / (0.5 * width)) ** 2, 0.0, 1.0)  # 1 at the centre, 0 at the corners
        if fill is not None:
            color = fill(pts, (int(x0), int(y0), int(x1), int(y1)))  # (h, w, 3)
        else:
            depth = np.clip(u / np.maximum(bottom - top, 1.0), 0.0, 1.0)
            color = painted(u, v, depth, across, gap, width)

        # Real teeth from the photo, re-sampled 1:1 with their jaw where the photo shows them.
        up_zone = u < UPPER_SHARE * s_gap
        lo_zone = (v < (1 - UPPER_SHARE) * s_gap) & ~up_zone
        map_y = (np.where(up_zone, s_top + u, s_bottom - v) - self.corner[1]).astype(np.float32)
        map_x = np.broadcast_to(sx - self.corner[0], xs.shape).astype(np.float32)
        real = cv2.remap(self.image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        has_real = (up_zone | lo_zone).astype(np.float32)
        has_real = cv2.GaussianBlur(has_real, (3, 3), 0.7)[..., None]
        color = color * (1 - has_real) + real * has_real

        amount = float(np.clip((gap - self.gap) / 2.0, 0.0, 1.0))  # fade in over the first 2 px of extra opening
        alpha = (mask * amount)[..., None]
        roi[y0:y1, x0:x1] = roi[y0:y1, x0:x1] * (1 - alpha) + color * alpha
        return roi
