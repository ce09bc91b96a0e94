"""The driver's own mouth interior carried into the photo (issue 19; Averbuch-Elor et al., "Bringing Portraits to
Life", 2017). A painted cavity cannot show teeth, tongue and soft shadow; the driving video has them, frame by frame.

Per output frame, the pixels inside the driver's inner-lip contour are mapped into the rendered face's inner-lip
contour (`Carrier.fill`, called by `MouthPainter.paint` for its box):

- mouth frame: both mouths are measured along their corner-to-corner axis (78 -> 308) as a fraction of the mouth
  width, and across it in px; a target column maps to the driver column at the same fraction;
- teeth ride with their jaws: a target pixel u px below the upper lip and v px above the lower lip is read at
  u / s below the driver's upper lip and at v / s above its lower lip (s = target / driver mouth width), blended by
  its relative depth u / (u + v): the upper teeth keep their size and their place under the upper lip, the lower
  teeth under the lower lip, and only what is between them (tongue, shadow) stretches with the opening;
- colour and brightness: per-channel gains that bring the driver's lip-adjacent skin to the photo's (a ring outside
  the outer lips in both); a change of light scales colours, so gains (not offsets) keep dark shadows dark;
- sharpness: a driver mouth larger than the photo's is blurred before it is shrunk, as a camera would have;
- the lip line is feathered inside the contour by the painter; nothing outside the target contour is touched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from reenact.render.mouth import LOWER_INNER, UPPER_INNER

# The driver points kept per frame (KEEP order): the inner-lip loop (corner 78 along the upper lip to 308, back along
# the lower lip) then the outer-lip loop (for the skin ring around the mouth).
INNER_LOOP = np.concatenate([UPPER_INNER, LOWER_INNER[::-1][1:-1]])  # (20,)
OUTER_LOOP = np.array([61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 375, 321, 405, 314, 17, 84, 181, 91, 146])
KEEP = np.concatenate([INNER_LOOP, OUTER_LOOP])  # (40,) mesh indices
UPPER = np.arange(11)  # positions in KEEP: the upper inner lip, corner to corner
LOWER = np.array([0, *range(19, 10, -1), 10])  # the lower inner lip, corner 78 to corner 308
OUTER = np.arange(20, 40)
RING = (1.1, 1.6)  # the skin ring: between the outer-lip loop scaled by these factors about the mouth centre
GAIN_RANGE = (0.5, 2.0)  # colour gains beyond this are a tracking failure, not a change of light

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 in ROI px
Fill = Callable[[np.ndarray, Box], np.ndarray]  # (ROI points (478, 2+), box) -> (y1 - y0, x1 - x0, 3) float colours


def check_points(points: np.ndarray, n: int, what: str) -> np.ndarray:
    points = np.asarray(points, np.float32)
    if points.ndim != 2 or points.shape[0] != n or points.shape[1] < 2:
        raise ValueError(f"{what} must be ({n}, 2) points, got shape {points.shape}")
    return points[:, :2]


def skin_gains(image: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(3,) mean RGB of the skin ring around the lips of `image` (H, W, 3); points: (40, 2) KEEP points in its px."""
    outer = points[OUTER]
    centre = outer.mean(0)
    rings = [np.round(centre + (outer - centre) * k).astype(np.int32) for k in RING]
    x0, y0 = np.maximum(rings[1].min(0) - 1, 0)
    x1, y1 = np.minimum(rings[1].max(0) + 2, [image.shape[1], image.shape[0]])
    if x1 - x0 < 2 or y1 - y0 < 2:
        raise ValueError("the mouth lies outside the image")
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillPoly(mask, [rings[1] - [x0, y0]], 1)
    cv2.fillPoly(mask, [rings[0] - [x0, y0]], 0)
    sel = mask.astype(bool)
    if sel.sum() < 4:
        raise ValueError("the mouth is too small to measure its skin")
    return image[y0:y1, x0:x1][sel].reshape(-1, 3).astype(np.float32).mean(0) + 1.0  # +1: no zero division


@dataclass
class DriverMouth:
    """One driver frame's mouth: the pixels around it and its points (in the crop's px)."""

    crop: np.ndarray  # (h, w, 3) uint8
    points: np.ndarray  # (40, 2) KEEP points, crop px
    skin: np.ndarray  # (3,) mean RGB of the lip-adjacent skin

    @property
    def width(self) -> float:
        return float(np.linalg.norm(self.points[10] - self.points[0]))


def crop_mouth(frame: np.ndarray, points: np.ndarray) -> DriverMouth | None:
    """The mouth of a driver frame (H, W, 3) uint8 with its (40, 2) KEEP points in frame px; None where the frame had
    no face (NaN points) or the mouth is degenerate."""
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"a driver frame must be (H, W, 3), got shape {frame.shape}")
    points = check_points(points, len(KEEP), "the driver's mouth points")
    if not np.isfinite(points).all():
        return None
    width = float(np.linalg.norm(points[10] - points[0]))
    if width < 4:  # a mouth a few px wide has no interior worth carrying
        return None
    outer = points[OUTER]
    centre = outer.mean(0)
    reach = np.abs(outer - centre).max(0) * RING[1] + 2  # the skin ring and everything inside it
    x0, y0 = np.maximum(np.floor(centre - reach).astype(int), 0)
    x1, y1 = np.minimum(np.ceil(centre + reach).astype(int) + 1, [frame.shape[1], frame.shape[0]])
    if x1 - x0 < 4 or y1 - y0 < 4:
        return None
    crop = np.ascontiguousarray(frame[y0:y1, x0:x1])
    local = points - np.array([x0, y0], np.float32)
    try:
        skin = skin_gains(crop, local)
    except ValueError:
        return None
    return DriverMouth(crop, local, skin)


def _mouth_axes(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """(corner 78, unit axis 78 -> 308, unit normal pointing down the face, mouth width px) of (40, 2) KEEP points."""
    c0, c1 = points[0].astype(np.float64), points[10].astype(np.float64)
    width = max(float(np.linalg.norm(c1 - c0)), 1e-3)
    e = (c1 - c0) / width
    return c0, e, np.array([-e[1], e[0]]), width


def _lines(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The inner lips in the mouth frame: (along, across) of the upper and of the lower lip, sorted along."""
    c0, e, n, width = _mouth_axes(points)
    out = []
    for idx in (UPPER, LOWER):
        d = points[idx] - c0
        a, b = d @ e / width, d @ n
        order = np.argsort(a)
        out += [a[order], b[order]]
    return out[0], out[1], out[2], out[3]


@dataclass
class Carrier:
    """Per source photo: its lip-adjacent skin colour; `filler(mouth)` gives `MouthPainter.paint` the carried
    interior of one driver frame."""

    image: np.ndarray  # (H, W, 3) uint8 photo
    points: np.ndarray  # (478, 2+) its landmarks, photo px
    skin: np.ndarray = field(init=False)  # (3,)

    def __post_init__(self) -> None:
        self.skin = skin_gains(self.image, check_points(self.points, 478, "the photo's landmarks")[KEEP])

    def filler(self, mouth: DriverMouth) -> Fill:
        def fill(pts: np.ndarray, box: Box) -> np.ndarray:
            return self.fill(mouth, pts, box)
        return fill

    def fill(self, mouth: DriverMouth, pts: np.ndarray, box: Box) -> np.ndarray:
        """(y1 - y0, x1 - x0, 3) float32 0..255: the driver's interior over `box` of a frame whose mesh is `pts`
        (478, 2+) in the same px as the box."""
        target = check_points(pts, 478, "the target mesh")[KEEP]
        x0, y0, x1, y1 = box
        if x1 <= x0 or y1 <= y0:
            raise ValueError(f"empty box {box}")
        tc, te, tn, tw = _mouth_axes(target)
        dc, de, dn, dw = _mouth_axes(mouth.points)
        ta_up, tb_up, ta_lo, tb_lo = _lines(target)
        da_up, db_up, da_lo, db_lo = _lines(mouth.points)
        ys, xs = np.mgrid[y0:y1, x0:x1]
        px, py = xs - tc[0], ys - tc[1]  # (h, w)
        a = (px * te[0] + py * te[1]) / tw  # along the target mouth, 0..1 corner to corner
        b = px * tn[0] + py * tn[1]  # across it, px down the face
        u = b - np.interp(a, ta_up, tb_up)  # below the target's upper lip
        v = np.interp(a, ta_lo, tb_lo) - b  # above its lower lip
        s = tw / dw
        from_up = np.interp(a, da_up, db_up) + u / s  # the driver point under its upper lip, at the teeth's size
        from_lo = np.interp(a, da_lo, db_lo) - v / s  # ... over its lower lip
        t = np.clip(u / np.maximum(u + v, 1e-3), 0.0, 1.0)
        bd = from_up * (1 - t) + from_lo * t
        ad = a * dw
        map_x = (dc[0] + ad * de[0] + bd * dn[0]).astype(np.float32)
        map_y = (dc[1] + ad * de[1] + bd * dn[1]).astype(np.float32)
        crop = mouth.crop
        if s < 0.8:  # shrinking: blur first so the driver's finer detail does not alias into the photo
            crop = cv2.GaussianBlur(crop, (0, 0), 0.45 / s)
        carried = cv2.remap(crop, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        gains = np.clip(self.skin / mouth.skin, *GAIN_RANGE).astype(np.float32)
        return np.minimum(carried.astype(np.float32) * gains, 255.0)


@dataclass
class DriverMouths:
    """The driver's mouths for one drive: its video (read again, streaming, while rendering) and (T, 40, 2) KEEP
    points per driver frame in its px (NaN where no face was tracked), collected while tracking."""

    path: Path
    points: list[np.ndarray] = field(default_factory=list)

    def on_frame(self, frame: object, landmarks: object) -> None:
        """`reenact.analysis.video_track`'s per-frame hook: keep the mouth points (a few hundred bytes a frame)."""
        pts = getattr(landmarks, "points", None)
        self.points.append(np.full((len(KEEP), 2), np.nan, np.float32) if pts is None
                           else np.asarray(pts, np.float32)[KEEP, :2])

    def crop(self, index: int, frame: np.ndarray | None) -> DriverMouth | None:
        """Driver frame `index`'s mouth (None past the end, without a frame, or without a face)."""
        if frame is None or not 0 <= index < len(self.points):
            return None
        return crop_mouth(frame, self.points[index])
