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
- teeth: told apart as in the library (`teeth_weight`), they keep the driver's light (their luma) but take the
  photo's own teeth colour, or where the photo shows none the library's neutral prior (`neutral_teeth`): the
  driver's own teeth colour (yellow teeth, say) is the driver's, not the photo's person's;
- sharpness: a driver mouth larger than the photo's is blurred before it is shrunk, as a camera would have;
- the lip line is feathered inside the contour by the painter; nothing outside the target contour is touched.

Without a driving video (speak, edit, render), `MouthLibrary` holds real open mouths cut from talking-face footage
(weights/mouth_library.*), and `LibraryPicker` chooses and blends them per frame by the mouth's shape, carried by the
same mapping (`Carrier.fill_library`): only their light is carried, their colour is rebuilt from the photo's skin,
teeth and the rest apart (`LibraryLook`, docs/mouth.md).

With `DriverMouths(..., creases=True)` (opt-in), a driver's frame also carries its fine creases (`DriverMouths` then
keeps its meshes; reenact.render.shade.DriverCreases).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import torch

from reenact.face.landmarks import LIP_INNER_LOOP as INNER_LOOP
from reenact.face.landmarks import LIP_LOOPS as KEEP
from reenact.registry import register_model
from reenact.render.shade import DriverCreases

# The driver points kept per frame (KEEP, reenact.face.landmarks.LIP_LOOPS): the inner-lip loop (corner 78 along the
# upper lip to 308, back along the lower lip) then the outer-lip loop (for the skin ring around the mouth).
UPPER = np.arange(11)  # positions in KEEP: the upper inner lip, corner to corner
LOWER = np.array([0, *range(19, 10, -1), 10])  # the lower inner lip, corner 78 to corner 308
OUTER = np.arange(20, 40)
RING = (1.1, 1.6)  # the skin ring: between the outer-lip loop scaled by these factors about the mouth centre
GAIN_RANGE = (0.5, 2.0)  # colour gains beyond this are a tracking failure, not a change of light

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 in ROI px
Fill = Callable[[np.ndarray, Box], np.ndarray]  # (ROI points (478, 2+), box) -> (y1 - y0, x1 - x0, 3) float colours


def luma_of(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma of (..., 3) RGB."""
    return np.asarray(rgb, np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


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


@dataclass(frozen=True)
class LibraryLook:
    """How a library mouth takes on the photo's colour (docs/mouth.md). The footage's mouths are another person's
    under another light, so its colours are first made relative to that person's lip-adjacent skin (a pixel over the
    skin's colour, per channel), then rebuilt on the photo's skin. Teeth and the rest (tongue, cavity, inner lips)
    are told apart and placed separately: teeth are nearly white under any light, while the rest takes the skin's
    hue; one set of skin gains for both turned the footage's yellow teeth grey or lavender on pale photos."""

    # The rest's mean colour over the skin's, and the teeth's where the photo shows none of its own: measured on the
    # real open mouths of the tuning clips, each person once (the mean of cap12 and cap13's, then of that and
    # WolfgangLanger's; tools/eval_mouth.py --colour-stats).
    rest: tuple[float, float, float] = (0.64, 0.50, 0.54)
    teeth: float = 0.935  # luma over the skin's; their colour is neutral (grey), with `teeth_tint` of the skin's hue
    teeth_tint: float = 0.3
    # A pixel is teeth where it is whiter than the skin (min(G, B) / R over the skin's, ramp) and bright enough
    # (its luma over the skin's, ramp); tongue and lips are redder than the skin, the cavity is dark.
    whiteness: tuple[float, float] = (0.85, 1.1)
    brightness: tuple[float, float] = (0.45, 0.7)
    min_teeth_px: float = 6.0  # fewer teeth px than this (photo or entry): its teeth colour is not measured


LOOK = LibraryLook()


def ramp(x: np.ndarray, lo_hi: tuple[float, float]) -> np.ndarray:
    return np.clip((x - lo_hi[0]) / (lo_hi[1] - lo_hi[0]), 0.0, 1.0)


def teeth_weight(rgb: np.ndarray, skin: np.ndarray, look: LibraryLook = LOOK) -> np.ndarray:
    """(...) 0..1 how much each pixel of (..., 3) RGB is teeth, judged against the lip-adjacent skin (3,)."""
    rel = np.asarray(rgb, np.float32) / np.asarray(skin, np.float32)  # (..., 3)
    white = np.minimum(rel[..., 1], rel[..., 2]) / np.maximum(rel[..., 0], 1e-3)
    return ramp(white, look.whiteness) * ramp(luma_of(rel), look.brightness)


def neutral_teeth(skin: np.ndarray, look: LibraryLook = LOOK) -> np.ndarray:
    """(3,) teeth for a photo that shows none: grey at `look.teeth` of the skin's (3,) luma, `look.teeth_tint` of
    the way toward the skin's own hue."""
    y = float(luma_of(skin))
    return (look.teeth * (y + look.teeth_tint * (np.asarray(skin, np.float32) - y))).astype(np.float32)


def weighted_colour(rgb: np.ndarray, weight: np.ndarray, min_weight: float) -> np.ndarray | None:
    """(3,) the weighted mean colour of (N, 3) pixels, or None where the weights sum under `min_weight`."""
    total = float(weight.sum())
    if total < min_weight:
        return None
    return (np.asarray(rgb, np.float32) * weight[:, None]).sum(0) / total


def inside_loop(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(H, W) bool: inside the inner-lip loop of (40, 2) KEEP points."""
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [np.round(points[:len(INNER_LOOP)]).astype(np.int32)], 1)
    return mask.astype(bool)


def photo_teeth(image: np.ndarray, points: np.ndarray, skin: np.ndarray, look: LibraryLook = LOOK) -> np.ndarray | None:
    """(3,) the colour of the teeth a photo (H, W, 3) shows between its lips ((40, 2) KEEP points), or None."""
    x0, y0 = np.maximum(np.floor(points[:len(INNER_LOOP)].min(0)).astype(int), 0)
    x1, y1 = np.ceil(points[:len(INNER_LOOP)].max(0)).astype(int) + 1
    crop = image[y0:y1, x0:x1]
    if crop.size == 0:
        return None
    px = crop[inside_loop(points - [x0, y0], crop.shape[:2])]  # (N, 3)
    return weighted_colour(px, teeth_weight(px, skin, look), look.min_teeth_px)


@dataclass
class DriverMouth:
    """One driver frame's mouth: the pixels around it and its points (in the crop's px)."""

    crop: np.ndarray  # (h, w, 3) uint8
    points: np.ndarray  # (40, 2) KEEP points, crop px
    skin: np.ndarray  # (3,) mean RGB of the lip-adjacent skin
    creases: np.ndarray | None = None  # (TEX, TEX) the frame's fine log ratio (reenact.render.shade.DriverCreases)

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
    teeth: np.ndarray | None = field(init=False)  # (3,) the teeth the photo shows between its lips, if any
    rest_width: float = field(init=False)  # the photo's `width_ratio`: its mouth width at rest, for the library

    def __post_init__(self) -> None:
        keep = check_points(self.points, 478, "the photo's landmarks")[KEEP]
        self.skin = skin_gains(self.image, keep)
        self.teeth = photo_teeth(self.image, keep, self.skin)
        self.rest_width = width_ratio(self.points)

    def filler(self, mouth: DriverMouth) -> Fill:
        def fill(pts: np.ndarray, box: Box) -> np.ndarray:
            return self.fill(mouth, pts, box)
        return fill

    def maps(self, mouth: DriverMouth, pts: np.ndarray, box: Box) -> tuple[np.ndarray, np.ndarray, float]:
        """(map_x, map_y) (y1 - y0, x1 - x0) float32: where each pixel of `box` of a frame whose mesh is `pts`
        (478, 2+) reads `mouth.crop`, and s = target / driver mouth width."""
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
        return map_x, map_y, s

    def fill(self, mouth: DriverMouth, pts: np.ndarray, box: Box, look: LibraryLook = LOOK) -> np.ndarray:
        """(y1 - y0, x1 - x0, 3) float32 0..255: the driver's interior over `box` of a frame whose mesh is `pts`
        (478, 2+) in the same px as the box, in the photo's colour and light: per-channel gains bring the driver's
        lip-adjacent skin to the photo's (clipped to GAIN_RANGE); its teeth (told apart as the library's,
        `teeth_weight`) keep that light (their luma) but take the photo's own teeth colour, or where the photo shows
        none the library's neutral prior (`neutral_teeth`): the gains alone put the driver's own teeth colour
        (yellow teeth) on every photo."""
        map_x, map_y, s = self.maps(mouth, pts, box)
        carried = remap(mouth.crop, map_x, map_y, s).astype(np.float32)  # (h, w, 3) the driver's colours
        m = teeth_weight(carried, mouth.skin, look)[..., None]  # on the box, not the larger crop: cheaper
        own = carried * np.clip(self.skin / mouth.skin, *GAIN_RANGE).astype(np.float32)
        teeth = self.teeth if self.teeth is not None else neutral_teeth(self.skin, look)
        teeth = (teeth / luma_of(teeth)).astype(np.float32)  # (3,) colour per unit of luma
        return np.minimum(own * (1 - m) + luma_of(own)[..., None] * teeth * m, 255.0)

    def fill_library(self, mouth: "LibraryMouth", pts: np.ndarray, box: Box, look: LibraryLook = LOOK) -> np.ndarray:
        """Like `fill`, for a library mouth: its rest (tongue, cavity) rebuilt on the photo's skin colour, its teeth
        given the photo's own teeth colour, or where the photo shows none, the tuning clips' teeth-over-skin."""
        map_x, map_y, s = self.maps(mouth, pts, box)
        carried = remap(mouth.layers, map_x, map_y, s)  # (h, w, 2) luma + teeth weight
        y, m = carried[..., :1], carried[..., 1:]
        rest = self.skin * np.asarray(look.rest, np.float32) / mouth.rest  # (3,) colour per unit of entry luma
        teeth = (self.teeth if self.teeth is not None else neutral_teeth(self.skin, look)) / mouth.teeth
        return np.minimum(y * (rest * (1 - m) + teeth * m), 255.0)  # (h, w, 3)


def remap(crop: np.ndarray, map_x: np.ndarray, map_y: np.ndarray, s: float) -> np.ndarray:
    """`crop` (h, w, C) read at the maps; a crop shrunk (s < 0.8) is blurred first so that its finer detail does
    not alias into the photo."""
    if s < 0.8:
        crop = cv2.GaussianBlur(crop, (0, 0), 0.45 / s)
    return cv2.remap(crop, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


FACE_STEPS = 4.0  # a driver's face mesh is kept in quarter px (int16: +-8192 px from its mouth corner)


@dataclass
class DriverMouths:
    """The driver's mouths for one drive: its video (read again, streaming, while rendering) and (T, 40, 2) KEEP
    points per driver frame in its px (NaN where no face was tracked), collected while tracking.

    `creases`: also carry the driver's fine creases (reenact.render.shade.DriverCreases). Off by default: on another
    person's photo they carry the driver's skin texture and the tracker's mis-registration as grey blotches; they help
    self-reenactment only (docs/mouth.md). Only with them are the driver's meshes kept."""

    path: Path
    creases: bool = field(default=False, kw_only=True)
    points: list[np.ndarray] = field(default_factory=list)
    # (468, 2) int16 per frame (None without a face), for the creases only: quarter px from the frame's mouth corner
    # 78 (KEEP[0]), 1.9 KB a frame instead of 3.7 as float32; a quarter px is far below the creases' 3-texel scale.
    faces: list[np.ndarray | None] = field(default_factory=list)
    found: DriverCreases | None = field(init=False, default=None, repr=False)  # the creases' reference face

    def __post_init__(self) -> None:
        self.found = DriverCreases() if self.creases else None

    def on_frame(self, frame: object, landmarks: object) -> None:
        """`reenact.analysis.video_track`'s per-frame hook: keep the mouth points (a few hundred bytes a frame) and,
        with `creases`, the face mesh and the first face's texture."""
        pts = getattr(landmarks, "points", None)
        if pts is None:
            self.points.append(np.full((len(KEEP), 2), np.nan, np.float32))
            if self.found is not None:
                self.faces.append(None)
            return
        pts = np.asarray(pts, np.float32)
        self.points.append(pts[KEEP, :2])
        if self.found is None:
            return
        self.faces.append(np.round((pts[:468, :2] - pts[KEEP[0], :2]) * FACE_STEPS).astype(np.int16))
        rgb = getattr(frame, "rgb", None)
        if rgb is not None:  # the same rounded mesh as every later frame is read with
            self.found.remember(np.asarray(rgb), self.face(len(self.faces) - 1))

    def crop(self, index: int, frame: np.ndarray | None) -> DriverMouth | None:
        """Driver frame `index`'s mouth (None past the end, without a frame, or without a face), with its creases
        when they are carried."""
        if frame is None or not 0 <= index < len(self.points):
            return None
        mouth = crop_mouth(frame, self.points[index])
        face = self.face(index) if self.found is not None else None
        if mouth is not None and self.found is not None and face is not None:
            mouth.creases = self.found.at(frame, face)
        return mouth

    def face(self, index: int) -> np.ndarray | None:
        """(468, 2) driver frame `index`'s mesh in its px, or None without a face."""
        q = self.faces[index] if 0 <= index < len(self.faces) else None
        return None if q is None else q.astype(np.float32) / FACE_STEPS + self.points[index][0]


# --- the mouth library (speak, edit, render: no driving video) -------------------------------------------------------
# Real open mouths from redistributable talking-face footage (tools/build_mouth_library.py), each a small patch in
# its own mouth frame: corner 78 at (LIB_PAD, LIB_H / 2 + centre offset), the corner-to-corner axis horizontal and
# LIB_SPAN px long. A patch is a `DriverMouth`, carried by the same mapping as a driver's (`Carrier.fill_library`).
LIBRARY = "mouth_library"  # weights/NAME.safetensors + NAME.json
LIB_W, LIB_H, LIB_SPAN = 64, 48, 48  # patch px; mouth width (corner to corner) in patch px
LIB_PAD = (LIB_W - LIB_SPAN) // 2
LIB_SIGMA = 0.6  # softness of the choice, in library-spread units of (opening, width): two neighbours share a frame
LIB_TOP = 2  # entries blended per frame (the strongest of the smoothed choice)
LIB_FOLLOW = 0.3  # share of a frame's own choice in the smoothed one (an EMA over frames: about 3 frames' memory)
EYE_CORNERS = (33, 263)




def width_ratio(points: np.ndarray) -> float:
    """The mouth width 78-308 over the outer eye-corner distance 33-263 of a (478, 2+) mesh (free of scale)."""
    p = np.asarray(points, np.float64)[:, :2]
    eyes = max(float(np.linalg.norm(p[EYE_CORNERS[1]] - p[EYE_CORNERS[0]])), 1e-3)
    return float(np.linalg.norm(p[308] - p[78])) / eyes


def mouth_shape(points: np.ndarray, rest_width: float = 1.0) -> np.ndarray:
    """(2,) (jaw opening, mouth width) of a (478, 2+) mesh: inner-lip gap 13-14 over the mouth width 78-308, and
    `width_ratio` over the person's own at rest (`rest_width`): a smile is a widening of one's own mouth, and mouths
    differ in width between people (0.45-0.54 of the eye distance at rest on the clips of docs/mouth.md)."""
    p = np.asarray(points, np.float64)[:, :2]
    width = max(float(np.linalg.norm(p[308] - p[78])), 1e-3)
    return np.array([np.linalg.norm(p[14] - p[13]) / width, width_ratio(p) / max(rest_width, 1e-3)])


def to_patch(points: np.ndarray) -> np.ndarray:
    """(2, 3) affine (similarity) from a frame's px to the patch of the mouth whose (40, 2) KEEP points are given:
    corner 78 -> (LIB_PAD, y), corner 308 -> (LIB_PAD + LIB_SPAN, y), the inner-lip loop's middle at LIB_H / 2."""
    c0, e, n, width = _mouth_axes(points)
    s = LIB_SPAN / width
    mid = float(((points[:len(INNER_LOOP)] - c0) @ n).mean()) * s  # the inner loop's mean depth, patch px
    rot = np.stack([e, n]) * s  # (2, 2) frame -> patch
    offset = np.array([LIB_PAD, LIB_H / 2 - mid]) - rot @ c0
    return np.concatenate([rot, offset[:, None]], 1).astype(np.float32)  # (2, 3)


@dataclass
class MouthLibrary:
    """K real open mouths: patches (K, LIB_H, LIB_W, 3) uint8, their (K, 40, 2) KEEP points in patch px, (K, 3)
    lip-adjacent skin colour, (K, 2) `mouth_shape` of each; `scale` (2,) the spread used to compare shapes."""

    patches: np.ndarray
    points: np.ndarray
    skin: np.ndarray
    shapes: np.ndarray
    scale: np.ndarray = field(init=False)
    mouths: list["LibraryMouth"] = field(init=False)

    def __post_init__(self) -> None:
        k = len(self.patches)
        if k < 2 or self.patches.shape[1:] != (LIB_H, LIB_W, 3) or self.points.shape != (k, len(KEEP), 2) \
                or self.skin.shape != (k, 3) or self.shapes.shape != (k, 2):
            raise ValueError(f"a mouth library needs matching (K, {LIB_H}, {LIB_W}, 3) patches, (K, 40, 2) points, "
                             f"(K, 3) skin and (K, 2) shapes, K >= 2; got {self.patches.shape}, {self.points.shape}, "
                             f"{self.skin.shape}, {self.shapes.shape}")
        self.scale = np.maximum(self.shapes.std(0), 1e-3)
        self.mouths = library_mouths(self.patches, self.points, self.skin)

    def mouth(self, k: int) -> "LibraryMouth":
        return self.mouths[k]

    def choice(self, shape: np.ndarray) -> np.ndarray:
        """(K,) soft choice (sums to 1) of the entries nearest a (2,) mouth shape."""
        d2 = (((self.shapes - shape) / self.scale) ** 2).sum(1)
        w = np.exp(-(d2 - d2.min()) / (2 * LIB_SIGMA**2))
        return w / w.sum()


@dataclass
class LibraryMouth(DriverMouth):
    """A library entry ready to carry: `layers` (h, w, 2) float32, its luma and teeth weight (only its light is
    carried: its colours are another person's under another camera); `teeth` its teeth's mean luma; `rest` the luma
    of its skin times the library's mean rest-over-skin colour (what the photo's skin times LibraryLook.rest
    replaces)."""

    layers: np.ndarray = field(default_factory=lambda: np.zeros((1, 1, 2), np.float32))
    teeth: float = 1.0
    rest: float = 1.0


def library_mouths(patches: np.ndarray, points: np.ndarray, skin: np.ndarray,
                   look: LibraryLook = LOOK) -> list[LibraryMouth]:
    """Each entry's luma and teeth weight, and the luma its teeth and its rest (tongue, cavity) are measured by
    (inside its inner-lip loop), for `Carrier.fill_library`. An entry showing too little teeth takes the library's
    mean teeth-over-skin on its own skin; the rest's reference is the library's mean, so darker entries stay darker."""
    teeth_rel, rest_rel, layers, teeth = [], [], [], []
    for patch, pts, sk in zip(patches, points, skin):
        px = patch[inside_loop(pts, patch.shape[:2])].astype(np.float32)  # (N, 3)
        w = teeth_weight(px, sk, look)
        rest = weighted_colour(px, 1.0 - w, 1.0)
        rest_rel.append((px.mean(0) if rest is None else rest) / sk)
        teeth.append(weighted_colour(px, w, look.min_teeth_px))
        teeth_rel.append(None if teeth[-1] is None else teeth[-1] / sk)
        layers.append(np.dstack([luma_of(patch), teeth_weight(patch, sk, look)]))  # (h, w, 2)
    mean_teeth = np.mean([t for t in teeth_rel if t is not None] or [np.ones(3)], 0)
    mean_rest = np.mean(rest_rel, 0)
    return [LibraryMouth(patch, pts, sk, layers=layer.astype(np.float32),
                         teeth=float(luma_of(sk * mean_teeth if t is None else t)), rest=float(luma_of(sk * mean_rest)))
            for patch, pts, sk, layer, t in zip(patches, points, skin, layers, teeth)]


@register_model(LIBRARY)
class MouthLibraryTensors(torch.nn.Module):
    """The library's tensors as a registered container (weights are data a contract may only describe, not name):
    patches (K, LIB_H, LIB_W, 3) uint8, points (K, 40, 2), skin (K, 3), shapes (K, 2)."""

    def __init__(self, entries: int = 24, height: int = LIB_H, width: int = LIB_W) -> None:
        super().__init__()
        self.register_buffer("patches", torch.zeros(entries, height, width, 3, dtype=torch.uint8))
        self.register_buffer("points", torch.zeros(entries, len(KEEP), 2))
        self.register_buffer("skin", torch.zeros(entries, 3))
        self.register_buffer("shapes", torch.zeros(entries, 2))


def load_library(directory: Path | None = None) -> MouthLibrary:
    """The shipped library (checked against weights/MANIFEST.json like every weight)."""
    from reenact.weights import load_state

    state, _ = load_state(LIBRARY, directory)
    return MouthLibrary(state["patches"].numpy(), state["points"].numpy(), state["skin"].numpy(),
                        state["shapes"].numpy())


@dataclass
class LibraryPicker:
    """Per video: the library entries for each frame's mouth shape, smoothed over frames (an EMA of the soft choice,
    so a shape between two entries fades from one to the other instead of switching), the two strongest blended."""

    library: MouthLibrary
    follow: float = LIB_FOLLOW
    state: np.ndarray | None = None  # (K,) the smoothed choice

    def pick(self, points: np.ndarray, rest_width: float = 1.0,
             advance: bool = True) -> list[tuple["LibraryMouth", float]]:
        """The (mouth, weight) pairs for a frame whose rendered mesh is `points` (478, 2+) of a person whose
        `width_ratio` at rest is `rest_width` (the photo's); weights sum to 1. `advance` False: a frame seen before
        (a re-render), blended with the smoothed choice but not stored in it."""
        w = self.library.choice(mouth_shape(points, rest_width))
        state = w if self.state is None else (1 - self.follow) * self.state + self.follow * w
        if advance:
            self.state = state
        top = np.argsort(-state)[:LIB_TOP]
        ws = state[top] / state[top].sum()
        return [(self.library.mouth(int(k)), float(x)) for k, x in zip(top, ws)]


def blend_fill(carrier: "Carrier", picks: list[tuple["LibraryMouth", float]], look: LibraryLook = LOOK) -> Fill:
    """A `Fill` drawing the weighted sum of several carried library interiors (the library's blend for one frame)."""
    def fill(pts: np.ndarray, box: Box) -> np.ndarray:
        out = np.zeros((box[3] - box[1], box[2] - box[0], 3), np.float32)
        for mouth, w in picks:
            out += carrier.fill_library(mouth, pts, box, look) * np.float32(w)
        return out
    return fill
