"""Closed lids cover the eyeball, closed lips the teeth: where the warp squeezes an opening shut, whatever it still
reads from the photo's opening (a sliver of white or iris along the meeting line; a photo's teeth and dark lip edges)
is replaced by lid skin or lip colour.

Why: a warp can only move the photo's pixels. A face tracker's lid points sit a pixel or two inside the true lid
margin, so even when the upper lid meets the lower one the band of eyeball just outside the points stays on screen:
a white or coloured slit under the lashes that reads as a half-open eye to a viewer and to a face tracker (MediaPipe
read our shut eyes at 0.35-0.7 of their open height). Per photo, each eye's opening (the lid contour, grown downward
by a margin) is filled with the skin just below the lower lid; per frame, the warped pixels that sample the opening
blend toward that skin as the target lids close (the slit still open between them last), and a thin arc in the
photo's lash colour is drawn where the lids meet (the cover takes the lower half of the lash band with the eyeball,
and a shut eye without its dark line reads as open: takeo's did, at 0.57). The same skin goes over the lid from the
lash line up toward the brow, fading out there: a real lid unfolds as it shuts and shows smooth skin where the photo
had its lash band and the shadow of its crease, which the warp stretched down over the eye into a dark band (on a
deep-set eye, the brow's shadow: jwp's shut eyes read 0.7 open). Where that skin fades toward the brow, the photo's
thin dark strokes (`lashes`: long lashes above the lid) are still covered whole, or the warp draws them as streaks
down the shut lid; and the line has lashes hanging under it (`fringe`), or it reads as a pen stroke.

A photo whose lips are apart (a laugh, a word) gets the same for its mouth (`mouth_cover`): a warp that brings them
together squeezes its teeth and the dark edges of its lips into a jagged crack, so as the target opening closes the
warped pixels that read the photo's opening blend to the lips' own colours (the upper lip's above the middle, the
lower lip's below), with a thin line in a shade of them where they meet.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from reenact.face.landmarks import (EYE_CONTOUR, LID_PAIRS, LIP_INNER_LOOP, LIP_LOOPS, LOWER_INNER, OPENINGS, REFINED,
                                    UPPER_INNER, UPPER_LIDS)

COVER_FROM, COVER_FULL = 0.3, 0.1  # eye opening (share of the photo's) where the cover starts and is complete
# ... and inside the target slit itself, later: blended in over the whole opening at once, the skin read as a grey,
# half-transparent eye in a slow blink's quarter-open frames and in `edit` at eyeBlink 0.7
SLIT_FROM, SLIT_FULL = 0.15, 0.05
LASH_ALPHA = 0.85
BAND_TAPER = 0.2  # the lid band fades out over this share of the eye's width at each corner
BROW_LOWER = slice(48, 54)  # EYE_CONTOUR: the brow's lower edge, outer to inner
LASH = 0.035  # the drawn lash line's thickness, in eye widths
FRINGE, FRINGE_ALPHA = 2.5, 0.45  # the lashes below an eye's line: their depth (times the line's) and darkness
LASH_TAPER = 0.8  # and how far it thins into the eye's corners (`lens`)
SUPERSAMPLE = 4  # a drawn line's mask is drawn this much finer, then averaged down
LASH_PERCENTILE = 5  # its colour: this darkest share of the lash band (the darkest fifth left takeo's line grey)
LASH_KERNEL, LASH_DEPTH = 0.1, 15.0  # `lashes`: strokes thinner than this share of the eye's width, this much darker
GROW = 0.08  # the opening's margin, in eye widths (the band of eyeball a tracker's lid points leave outside)
# The mouth's cover: from half the photo's opening to 0.15 of it (a word's lips pass through half-open all the time;
# the cover is for lips that meet); its margin (the lips' dark inner edges) and meeting line, in mouth widths.
MOUTH_FROM, MOUTH_FULL, MOUTH_GROW, MOUTH_LINE = 0.5, 0.15, 0.04, 0.02
MOUTH_MIN_GAP = 2.0  # px: a photo's lips closer than this show nothing to hide
MOUTH_LINE_SHADE = 0.55  # the meeting line's colour: the lips' mean colour times this
LIP_PAIRS = tuple(zip(UPPER_INNER[4:7], LOWER_INNER[4:7]))  # (82, 87), (13, 14), (312, 317): the mouth's opening


def ramp(opening: torch.Tensor, start: float, full: float) -> torch.Tensor:
    """How far a cover is drawn at an opening (a share of the photo's): 0 from `start` up, 1 from `full` down."""
    return ((start - opening) / (start - full)).clamp(0.0, 1.0)


@dataclass
class Cover:
    """One opening's cover (an eye's, or the mouth's): fill colour and coverage over a box of the ROI, and the lid
    (lip) pairs that measure its opening."""
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in ROI px (x1, y1 exclusive)
    fill: torch.Tensor  # (1, 4, h, w): the fill (lower-lid skin, the lips' colours) RGB 0..255, coverage 0..1
    upper: np.ndarray  # (3,) vertex ids
    lower: np.ndarray  # (3,)
    gap: float  # the photo's mean lid (lip) gap, px
    ring: np.ndarray  # (R,) the eye's lid and halo vertices (the lips'): where in a frame the opening can be
    lid_line: np.ndarray  # (K,) vertex ids where the line is drawn (an eye: outer corner, upper lid, inner corner),
    # or (2, K): midway between two rows of them (the mouth: between its inner lips)
    lash: tuple[float, float, float]  # the photo's lash-line colour, RGB 0..255
    thickness: float  # px, of the lash line drawn where the lids meet
    start: float = COVER_FROM  # the opening (share of the photo's) where the cover starts ...
    full: float = COVER_FULL  # ... and where it is complete
    taper: float = 0.0  # how far the line narrows into its ends (`lens`)
    slit: np.ndarray | None = None  # an eye's opening polygon (OPENINGS), covered from SLIT_FROM to SLIT_FULL
    fringe: bool = False  # lashes hang below the line (`fringe`): an eye's, not the lips'

    def opening(self, points: torch.Tensor, disp: torch.Tensor) -> torch.Tensor:
        """(B,) the target opening, a share of the photo's."""
        moved = points[None, :, :2] + disp[..., :2]  # (B, N, 2)
        return (moved[:, self.upper] - moved[:, self.lower]).norm(dim=-1).mean(-1) / self.gap

    def weight(self, points: torch.Tensor, disp: torch.Tensor) -> torch.Tensor:
        """(B,) how far the cover is drawn: 0 for an opening at least `start` of the photo's, 1 at `full`."""
        return self.weights(points, disp)[0]

    def weights(self, points: torch.Tensor, disp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B,) `weight`, and (B,) how far it is drawn inside the slit and the lashes hang (SLIT_FROM to SLIT_FULL):
        both from one reading of the opening."""
        opening = self.opening(points, disp)
        return ramp(opening, self.start, self.full), ramp(opening, SLIT_FROM, SLIT_FULL)

    def target_box(self, points: torch.Tensor, disp: torch.Tensor, size: tuple[int, int]) -> tuple[int, int, int, int]:
        """The ROI box (x0, y0, x1, y1) the opening's ring covers in the photo and in every target frame; size: the
        ROI's (h, w)."""
        src = points[self.ring]  # (R, 2)
        moved = src[None] + disp[:, self.ring, :2].to(src)  # (B, R, 2)
        lo = torch.minimum(src.min(0).values, moved.amin((0, 1))).floor().int() - 2
        hi = torch.maximum(src.max(0).values, moved.amax((0, 1))).ceil().int() + 3
        h, w = size
        return max(0, int(lo[0])), max(0, int(lo[1])), min(w, int(hi[0])), min(h, int(hi[1]))


def eye_covers(roi_image: np.ndarray, points: np.ndarray) -> list[Cover]:
    """Both eyes' covers for a photo: roi_image (H, W, 3) uint8, points (478, 2) in ROI px. Each fills the opening
    and the lid's skin up to the brow (`lid_band`) with the skin below the lower lid. An eye whose lids already nearly
    meet in the photo (gap under 1 px) gets none: there is no eyeball to hide."""
    covers = []
    for contour, opening_ids, upper_lid, pairs in zip(EYE_CONTOUR, OPENINGS, UPPER_LIDS, LID_PAIRS):
        upper, lower = np.array([u for u, _ in pairs]), np.array([lo for _, lo in pairs])
        gap = float(np.linalg.norm(points[upper] - points[lower], axis=-1).mean())
        if gap < 1.0:
            continue
        opening = points[opening_ids]  # (16, 2) polygon
        width = float(np.linalg.norm(points[contour[0]] - points[contour[8]]))
        grow = max(1.0, GROW * width)
        brow = points[contour[BROW_LOWER]]
        found = opening_crop(roi_image, opening, grow, reach=brow)
        if found is None:
            continue
        (x0, y0, x1, y1), crop, mask = found
        # Grown downward only: the band to hide lies under the lower lid's points.
        k = int(round(grow))
        down = np.zeros((2 * k + 1, 3), np.uint8)
        down[:k + 1] = 1  # anchored at the centre: a pixel is covered when one up to k rows above it is
        mask = cv2.dilate(mask, down)
        fill = rgba(lower_skin(crop, mask > 0, k + 1), mask, grow)
        band = lid_band(crop.shape[:2], points[upper_lid] - [x0, y0], brow - [x0, y0])
        band = band + (1.0 - band) * lashes(crop, width) * np.sqrt(band)
        fill[0, 3] = torch.maximum(fill[0, 3], torch.from_numpy(band))
        ring = np.concatenate([contour[:REFINED], contour[BROW_LOWER]])
        covers.append(Cover((x0, y0, x1, y1), fill, upper, lower, gap, ring, upper_lid,
                            lash_colour(roi_image, points, contour), max(1.0, LASH * width), taper=LASH_TAPER,
                            slit=opening_ids, fringe=True))
    return covers


def opening_crop(roi_image: np.ndarray, opening: np.ndarray, grow: float, reach: np.ndarray | None = None
                 ) -> tuple[tuple[int, int, int, int], np.ndarray, np.ndarray] | None:
    """An opening's (P, 2) polygon (ROI px) -> its box (x0, y0, x1, y1) with room to grow by `grow` px (and to take
    in the points `reach`), the photo's float crop there and the polygon's anti-aliased uint8 mask; None where the
    box is too small to cover."""
    h, w = roi_image.shape[:2]
    pad = int(np.ceil(3 * grow)) + 2
    extent = opening if reach is None else np.concatenate([opening, reach])
    x0, y0 = np.floor(extent.min(0)).astype(int) - pad
    x1, y1 = np.ceil(extent.max(0)).astype(int) + pad + 1
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    if x1 - x0 < 4 or y1 - y0 < 4:
        return None
    crop = np.ascontiguousarray(roi_image[y0:y1, x0:x1]).astype(np.float32)
    mask = np.zeros(crop.shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round((opening - [x0, y0]) * 16).astype(np.int32)], 255, cv2.LINE_AA, 4)
    return (x0, y0, x1, y1), crop, mask


def lid_band(size: tuple[int, int], lid: np.ndarray, brow: np.ndarray) -> np.ndarray:
    """(h, w) float coverage of the skin between the upper lid (K, 2) and the brow's lower edge (M, 2), crop px: 1 on
    the lid's line, falling to 0 at the brow, faded out toward the eye's corners and softened."""
    h, w = size
    x = np.arange(w, dtype=np.float64)
    lid, brow = lid[np.argsort(lid[:, 0])], brow[np.argsort(brow[:, 0])]
    y_lid = np.interp(x, lid[:, 0], lid[:, 1], left=np.nan, right=np.nan)  # no band beyond the corners
    y_brow = np.interp(x, brow[:, 0], brow[:, 1])
    height = np.maximum(y_lid - y_brow, 1.0)  # (w,) image y runs down: the brow is above
    t = (np.arange(h, dtype=np.float64)[:, None] - y_brow) / height  # 0 at the brow, 1 on the lid
    alpha = np.nan_to_num(np.where((t >= 0) & (t <= 1 + 1 / height), np.minimum(t, 1.0), 0.0))
    across = np.clip((x - lid[0, 0]) / max(lid[-1, 0] - lid[0, 0], 1.0), 0, 1)
    alpha *= np.clip(np.sin(np.pi * across) / np.sin(np.pi * BAND_TAPER), 0, 1)
    return cv2.GaussianBlur(alpha.astype(np.float32), (0, 0), max(0.5, 0.02 * (lid[-1, 0] - lid[0, 0])))


def lashes(crop: np.ndarray, width: float) -> np.ndarray:
    """(h, w) float 0..1: the thin dark strokes of an eye's crop (lashes, liner, stray hairs), from a black-hat
    (the crop closed by a disc of LASH_KERNEL eye widths, less the crop) full at LASH_DEPTH grey levels. A shut
    lid's band covers them whole wherever it reaches (`eye_covers`): under the band's fade toward the brow, long
    lashes above the lid were left half covered, and the warp stretched them down over the lid into streaks."""
    luma = cv2.cvtColor(crop.astype(np.uint8), cv2.COLOR_RGB2GRAY)
    k = max(3, int(round(LASH_KERNEL * width)) | 1)
    hat = cv2.morphologyEx(luma, cv2.MORPH_BLACKHAT, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    found = cv2.dilate(np.clip(hat / LASH_DEPTH, 0.0, 1.0).astype(np.float32), np.ones((3, 3), np.uint8))
    return cv2.GaussianBlur(found, (0, 0), 0.7)  # a stroke's anti-aliased edges with it


def rgba(fill: np.ndarray, mask: np.ndarray, grow: float) -> torch.Tensor:
    """A cover's (h, w, 3) fill and uint8 mask -> (1, 4, h, w) RGB 0..255 and coverage, the mask softened so the
    cover has no hard edge."""
    soft = cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (0, 0), max(0.5, grow / 3))
    out = np.concatenate([fill.astype(np.float32), soft[..., None]], -1)  # (h, w, 4)
    return torch.from_numpy(out).permute(2, 0, 1)[None].contiguous()


def mouth_cover(roi_image: np.ndarray, points: np.ndarray) -> Cover | None:
    """The mouth's cover for a photo whose lips are apart: roi_image (H, W, 3) uint8, points (478, 2) in ROI px; None
    for closed lips (gap under MOUTH_MIN_GAP px)."""
    upper, lower = np.array([u for u, _ in LIP_PAIRS]), np.array([lo for _, lo in LIP_PAIRS])
    gap = float(np.linalg.norm(points[upper] - points[lower], axis=-1).mean())
    if gap < MOUTH_MIN_GAP:
        return None
    opening = points[LIP_INNER_LOOP]  # (20, 2) polygon
    width = float(np.linalg.norm(points[78] - points[308]))
    grow = max(1.0, MOUTH_GROW * width)
    found = opening_crop(roi_image, opening, grow)
    if found is None:
        return None
    (x0, y0, x1, y1), crop, mask = found
    k = int(round(grow))
    mask = cv2.dilate(mask, np.ones((2 * k + 1, 2 * k + 1), np.uint8))  # the lips' dark inner edges with it
    fill = lip_fill(crop, mask > 0, k + 1)
    shade = tuple(float(c) for c in MOUTH_LINE_SHADE * fill[mask > 0].mean(0))
    return Cover((x0, y0, x1, y1), rgba(fill, mask, grow), upper, lower, gap, LIP_LOOPS,
                 np.stack([UPPER_INNER, LOWER_INNER]), shade, max(1.0, MOUTH_LINE * width), MOUTH_FROM, MOUTH_FULL)


def lip_fill(crop: np.ndarray, mask: np.ndarray, margin: int) -> np.ndarray:
    """(h, w, 3) float: every column of the mask filled with the lip just above it over its upper half and the lip
    just below it over its lower half, smoothed along the mouth; columns without mask keep the crop."""
    h = mask.shape[0]
    rows = np.arange(h)[:, None]
    cols = mask.any(0)
    top = np.where(cols, np.where(mask, rows, h).min(0), 0)  # (w,) first masked row per column
    bottom = np.where(cols, (mask * rows).max(0), 0)  # (w,) last masked row per column
    above, below = row_colour(crop, top - margin), row_colour(crop, bottom + margin)  # (w, 3) each
    lower_half = rows > (top + bottom)[None] / 2  # (h, w)
    colour = np.where(lower_half[..., None], below[None], above[None])
    return np.where(mask[..., None], colour, crop)


def lash_colour(image: np.ndarray, points: np.ndarray, contour: np.ndarray) -> tuple[float, float, float]:
    """The darkest LASH_PERCENTILE of the band between the upper lid and the halo ring above it (lashes, lid margin):
    the darkest lashes, so a faint or low-contrast lash band still draws a line a tracker reads as shut."""
    band = np.concatenate([points[contour[9:16]], points[contour[25:32]][::-1]])  # upper lid, ring above (reversed)
    mask = np.zeros(image.shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(band * 16).astype(np.int32)], 1, cv2.LINE_8, 4)
    pixels = image[mask > 0].astype(np.float32)  # (P, 3)
    if len(pixels) == 0:
        return (40.0, 30.0, 30.0)
    luma = pixels @ np.array([0.299, 0.587, 0.114], np.float32)
    dark = pixels[luma <= np.percentile(luma, LASH_PERCENTILE)]
    return tuple(float(c) for c in dark.mean(0))


def lower_skin(crop: np.ndarray, mask: np.ndarray, gap: int) -> np.ndarray:
    """(h, w, 3) float: every column the skin just below the mask there (the lower lid, which a shut eye's lashes rest
    on), smoothed along the lid; a column without mask takes its nearest masked columns' (the lid band reaches past
    the opening's corners)."""
    rows = np.arange(mask.shape[0])[:, None]
    masked = mask.any(0)
    bottom = np.where(masked, (mask * rows).max(0), -1)  # (w,) last masked row per column
    colour = row_colour(crop, bottom + gap)  # (w, 3)
    cols, x = np.flatnonzero(masked), np.arange(mask.shape[1])
    if len(cols):
        colour = np.stack([np.interp(x, cols, colour[cols, c]) for c in range(3)], -1)
    return np.broadcast_to(colour[None], crop.shape).copy()


def row_colour(crop: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """(h, w, 3) crop and (w,) a row per column -> (w, 3) the crop's colour there (rows clipped to the crop), smoothed
    along the lid or mouth (one colour per column, without the speckle of single pixels)."""
    h, w = crop.shape[:2]
    colour = crop[np.clip(rows, 0, h - 1), np.arange(w)]  # (w, 3)
    return cv2.GaussianBlur(colour[None], (0, 0), sigmaX=max(1.0, w / 20), sigmaY=0.1)[0]


def cover_openings(frames: torch.Tensor, grid: torch.Tensor, covers: list[Cover], points: torch.Tensor,
                   disp: torch.Tensor) -> None:
    """Blend lid skin over the eyeball (lip colour over the teeth) in warped ROI frames (B, 3, H, W), in place.

    grid: (B, H, W, 2) the warp's backward map in [-1, 1] over the ROI; points (N, 2) photo mesh in ROI px; disp
    (B, N, 2) its displacement."""
    h, w = frames.shape[-2:]
    for cover in covers:
        weight, late = cover.weights(points, disp)  # (B,) each
        if not bool((weight > 0).any()):  # most frames: every opening open, nothing to cover
            continue
        ox0, oy0, ox1, oy1 = cover.target_box(points, disp, (h, w))
        x0, y0, x1, y1 = cover.box
        sub = grid[:, oy0:oy1, ox0:ox1]  # (B, h', w', 2) in ROI [-1, 1]
        px = (sub + 1) * sub.new_tensor([(w - 1) / 2, (h - 1) / 2])  # ROI px
        size = sub.new_tensor([max(x1 - x0 - 1, 1), max(y1 - y0 - 1, 1)])
        local = (px - sub.new_tensor([x0, y0])) * 2 / size - 1  # the cover box's own [-1, 1]
        fill = cover.fill.to(frames).expand(len(frames), -1, -1, -1)
        sampled = F.grid_sample(fill, local, mode="bilinear", padding_mode="zeros", align_corners=True)
        drawn = weight.to(frames)[:, None, None, None]  # (B, 1, 1, 1)
        if cover.slit is not None:  # inside the target slit it comes later (never sooner: `late` <= `weight`)
            inside = slit_masks(points, disp, cover.slit, (ox0, oy0), sampled.shape[-2:]).to(frames)  # (B, 1, h', w')
            drawn = drawn + inside * (late.to(frames)[:, None, None, None] - drawn)  # (B, 1, h', w')
        alpha = sampled[:, 3:] * drawn  # (B, 1, h', w')
        region = frames[:, :, oy0:oy1, ox0:ox1]
        region.mul_(1 - alpha).add_(sampled[:, :3] * alpha)
        draw_lash_line(region, cover, points, disp, weight, late, (ox0, oy0))


def slit_masks(points: torch.Tensor, disp: torch.Tensor, slit: np.ndarray, origin: tuple[int, int],
               size: tuple[int, int]) -> torch.Tensor:
    """(B, 1, h, w) anti-aliased masks of each frame's target opening (polygon vertex ids `slit`) over the box at
    `origin` (x0, y0) of size (h, w)."""
    moved = (points[None, slit, :2] + disp[:, slit, :2]).cpu().numpy() - origin  # (B, K, 2)
    out = np.zeros((len(moved), 1, *size), np.float32)
    for b, poly in enumerate(moved):
        mask = np.zeros(size, np.uint8)
        cv2.fillPoly(mask, [np.round(poly * 16).astype(np.int32)], 255, cv2.LINE_AA, 4)
        out[b, 0] = mask / 255.0
    return torch.from_numpy(out)


def smooth_arc(points: np.ndarray, samples: int = 24) -> np.ndarray:
    """(K, 2) points from one eye corner to the other -> (samples, 2) the least-squares parabola through them in the
    corner-to-corner frame: a shut lid's line is a clean arc, where the squeezed lid points zig-zag by a pixel."""
    a, b = points[0], points[-1]
    axis = (b - a) / max(float(np.linalg.norm(b - a)), 1e-6)
    normal = np.array([-axis[1], axis[0]])
    u, v = (points - a) @ axis, (points - a) @ normal
    coef = np.polyfit(u, v, 2) if len(np.unique(np.round(u, 3))) >= 3 else np.zeros(3)
    uu = np.linspace(u.min(), u.max(), samples)
    return a + uu[:, None] * axis + np.polyval(coef, uu)[:, None] * normal


def lens(arc: np.ndarray, thickness: float, taper: float) -> np.ndarray:
    """(S, 2) a line's points -> the (2S, 2) outline of a stroke `thickness` px thick along it, its ends narrowed
    by `taper` (0: even; 1: pointed, as a shut eye's lash line thins into its corners)."""
    s = np.linspace(0.0, 1.0, len(arc))
    half = 0.5 * thickness * ((1 - taper) + taper * np.sqrt(np.sin(np.pi * s)))  # (S,)
    normal = normals(arc)
    return np.concatenate([arc + half[:, None] * normal, (arc - half[:, None] * normal)[::-1]])


def normals(arc: np.ndarray) -> np.ndarray:
    """(S, 2) a line's points -> (S, 2) unit normals along it (the line's direction turned a quarter)."""
    along = np.gradient(arc, axis=0)
    return np.stack([-along[:, 1], along[:, 0]], 1) / np.maximum(np.linalg.norm(along, axis=1, keepdims=True), 1e-6)


def fringe(arc: np.ndarray, thick: float, taper: float, shape: tuple[int, int]) -> np.ndarray:
    """(H, W) uint8 at SUPERSAMPLE scale: the lashes hanging below a shut lid's line (`arc`, region px), a soft band
    FRINGE times the line's thickness, FRINGE_ALPHA as dark at the line and fading downward. Alone, the line read as a
    pen stroke drawn across the lid."""
    normal = normals(arc)
    down = normal * np.sign(normal[:, 1:2] + 1e-9)  # (S, 2) image y runs down, whichever way the lid runs
    band = np.zeros(shape, np.uint8)
    width = FRINGE * thick
    outline = (lens(arc + 0.5 * width * down, width, taper) + 0.5) * SUPERSAMPLE - 0.5
    cv2.fillPoly(band, [np.round(outline * 16).astype(np.int32)], round(255 * FRINGE_ALPHA), cv2.LINE_8, 4)
    return cv2.GaussianBlur(band, (0, 0), 0.4 * width * SUPERSAMPLE)


def draw_lash_line(region: torch.Tensor, cover: Cover, points: torch.Tensor, disp: torch.Tensor,
                   weight: torch.Tensor, late: torch.Tensor, origin: tuple[int, int]) -> None:
    """A thin anti-aliased line of the photo's lash colour along the target upper lid, as the lids meet: the
    crease a shut eye shows (the photo's own lash band, squeezed with the lid, is thick or gone). An eye's thins
    into its corners (`Cover.taper`): drawn even, it read as a marker stroke across a shut eye. Its lashes
    (`fringe`) come in with the slit's cover, `late` (B,) (SLIT_FROM to SLIT_FULL: `Cover.weights`): hung over a slit
    still open, they dimmed the eyeball it shows."""
    ids = torch.as_tensor(np.atleast_2d(cover.lid_line))  # (R, K)
    lid = (points[ids][None] + disp[:, ids]).mean(1).cpu().numpy() - origin  # (B, K, 2) region px
    colour = region.new_tensor(cover.lash)[:, None, None]  # (3, 1, 1)
    thick = max(1.0, cover.thickness)
    late = late.cpu().numpy()  # (B,)
    for b in np.flatnonzero(weight.cpu().numpy() > 0):
        h, w = region.shape[-2:]
        fine = np.zeros((h * SUPERSAMPLE, w * SUPERSAMPLE), np.uint8)  # a thin stroke, drawn finer and averaged down
        arc = smooth_arc(lid[b], 48)
        outline = (lens(arc, thick, cover.taper) + 0.5) * SUPERSAMPLE - 0.5
        cv2.fillPoly(fine, [np.round(outline * 16).astype(np.int32)], 255, cv2.LINE_8, 4)
        mask = cv2.resize(fine, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) * float(weight[b])
        if cover.fringe and late[b] > 0:
            hanging = cv2.resize(fringe(arc, thick, cover.taper, fine.shape), (w, h), interpolation=cv2.INTER_AREA)
            mask = np.maximum(mask, hanging * float(late[b]))
        alpha = torch.from_numpy(mask).to(region) * (LASH_ALPHA / 255)  # (h', w')
        region[b].mul_(1 - alpha).add_(colour * alpha)
