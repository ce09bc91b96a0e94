"""Mesh-driven image warp: target mesh -> dense backward flow -> `grid_sample` of the source photo.

Why this shape: a geometric warp keeps identity and skin detail for free (a generator redraws them and drifts). The
flow is computed once per source photo as a sparse barycentric interpolator from mesh vertices to a coarse pixel grid
over a region of interest (ROI) around the face; per frame only a sparse matmul, an upsample and one `grid_sample`
run, batched, on any device.

Conventions: points are (x, y) pixels of the full source photo; `disp` is the forward displacement of each mesh
vertex (target - source) in pixels. The ROI border carries zero-displacement anchors, so the warp fades to the
untouched photo at the ROI edge (no seam) and everything outside the ROI is never touched.

Around the eyes a mesh warp alone is wrong in four places, each mended after the smooth map: triangles that close
or stretch far are mapped exactly (`_exact_eyes`); a lowered upper lid unfolds instead of carrying
its lash band over the eye (`Eyeball.unfold`, `_unfold_lids`); inside the lids the eyeball is drawn as a layer the
lids slide over, in their shadow, instead of being squeezed with them (`Eyeball.under`, `_slide_lids`); and the skin a
raised brow stretches is blurred sideways (`_soften_stretched`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from scipy.spatial import Delaunay

from reenact.face.canonical import load_canonical
from reenact.face.landmarks import EYE_CONTOUR, IRIS_CENTRES, IRISES, OPENINGS, UPPER_LIDS
from reenact.render.covers import cover_openings, eye_covers, mouth_cover



@dataclass(frozen=True)
class Roi:
    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def size(self) -> tuple[int, int]:  # (H, W)
        return self.y1 - self.y0, self.x1 - self.x0


def face_roi(points: np.ndarray, image_hw: tuple[int, int], margin: float = 0.45) -> Roi:
    """Box around the face points, grown by `margin` x face size (room for a dropping jaw), clipped to the image."""
    lo, hi = points[:, :2].min(0), points[:, :2].max(0)
    size = float((hi - lo).max())
    lo, hi = lo - margin * size, hi + np.array([margin, margin * 1.3]) * size
    h, w = image_hw
    return Roi(max(0, int(lo[0])), max(0, int(lo[1])), min(w, int(np.ceil(hi[0])) + 1), min(h, int(np.ceil(hi[1])) + 1))


def _border_anchors(roi: Roi, per_side: int = 12) -> np.ndarray:
    h, w = roi.size
    xs, ys = np.linspace(0, w - 1, per_side), np.linspace(0, h - 1, per_side)
    top, bottom = np.stack([xs, np.zeros_like(xs)], 1), np.stack([xs, np.full_like(xs, h - 1)], 1)
    left, right = np.stack([np.zeros_like(ys), ys], 1)[1:-1], np.stack([np.full_like(ys, w - 1), ys], 1)[1:-1]
    return np.concatenate([top, bottom, left, right]) + [roi.x0, roi.y0]


def _inside(poly: np.ndarray, pts: np.ndarray) -> np.ndarray:
    contour = poly.astype(np.float32).reshape(-1, 1, 2)
    return np.array([cv2.pointPolygonTest(contour, (float(x), float(y)), False) > 0 for x, y in pts])


def _delaunay_inside(points: np.ndarray, index: np.ndarray, loop: np.ndarray, keep_inside: bool) -> np.ndarray:
    """Delaunay triangles over points[index], kept when their centroid is inside (or outside) `loop`'s polygon."""
    tri = Delaunay(points[index]).simplices
    centroids = points[index][tri].mean(1)
    inside = _inside(points[loop], centroids)
    return index[tri[inside == keep_inside]]


def face_triangles(points: np.ndarray, n_anchor: int) -> np.ndarray:
    """(T, 3) triangles over 478 mesh points followed by `n_anchor` ROI-border anchors.

    The face uses FaceMesh's own topology (so lips and lids can part and close without triangles folding over),
    the eyes are filled with the eyelid contour plus the iris points (triangulated on the open-eyed canonical face,
    so the iris can move the eye's pixels for gaze), and the ring between the face oval and the ROI border is a
    Delaunay triangulation of the oval and the anchors in the photo.
    """
    canon = load_canonical()
    canon2d = canon.vertices478[:, :2].astype(np.float64)
    tris = [canon.triangles]
    for eye, iris in (("left_eye", "left_iris"), ("right_eye", "right_iris")):
        loop = canon.group(eye)
        tris.append(_delaunay_inside(canon2d, np.concatenate([loop, canon.group(iris)]), loop, True))
    oval = canon.group("face_oval")
    anchors = np.arange(478, 478 + n_anchor)
    tris.append(_delaunay_inside(points, np.concatenate([oval, anchors]), oval, False))
    return np.concatenate(tris).astype(np.int64)


EXTRAPOLATE = 0.25  # how far outside its triangle a pixel's weights may reach (rasterisation gaps at shared edges)


def barycentric(points: np.ndarray, tris: np.ndarray, grid: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """For each grid pixel (P, 2), the covering triangle and its barycentric weights (P, 3) in the photo.

    Triangles are rasterised into an index image (`shape` = coarse grid (h, w), grid in the same row-major order);
    pixels on no triangle (rasterisation gaps at edges) take a neighbour's triangle and extrapolate slightly.
    """
    h, w = shape
    gx, gy = grid[:, 0].reshape(h, w), grid[:, 1].reshape(h, w)
    sx, sy = (gx[0, -1] - gx[0, 0]) / max(w - 1, 1), (gy[-1, 0] - gy[0, 0]) / max(h - 1, 1)
    index = np.full((h, w), -1, np.int32)
    corners = points[tris]  # (T, 3, 2)
    e1, e2 = corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]
    area = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]  # twice the signed area
    for t in np.flatnonzero(np.abs(area) > 1e-6):
        poly = np.stack([(corners[t, :, 0] - gx[0, 0]) / sx, (corners[t, :, 1] - gy[0, 0]) / sy], 1)
        cv2.fillPoly(index, [np.round(poly * 16).astype(np.int32)], int(t), shift=4)
    for _ in range(4):  # fill the few uncovered pixels from their neighbours
        missing = index < 0
        if not missing.any():
            break
        grown = cv2.dilate(index.astype(np.float32), np.ones((3, 3), np.uint8)).astype(np.int32)
        index[missing] = grown[missing]
    index = np.maximum(index.ravel(), 0)
    a, b, c = corners[index, 0], corners[index, 1], corners[index, 2]  # (P, 2) each
    v0, v1, v2 = b - a, c - a, grid - a
    d00, d01, d11 = (v0 * v0).sum(1), (v0 * v1).sum(1), (v1 * v1).sum(1)
    d20, d21 = (v2 * v0).sum(1), (v2 * v1).sum(1)
    den = d00 * d11 - d01 * d01
    den = np.where(np.abs(den) < 1e-12, 1e-12, den)
    wb, wc = (d11 * d20 - d01 * d21) / den, (d00 * d21 - d01 * d20) / den
    weights = np.stack([1 - wb - wc, wb, wc], 1)  # (P, 3)
    # A pixel rasterised onto a sliver (the last triangle drawn over it, a fraction of a pixel wide) lies far outside
    # it: its weights reached 200-360 on the sample photos, and a vertex moving a pixel moved it tens of pixels (a
    # bright dot in a nostril, sampled from the nose's tip; docs/fidelity.md "Thirteenth pass"). Such a pixel takes
    # the nearest point of that triangle instead: weights clipped to >= 0 and summing to 1.
    far = (weights < -EXTRAPOLATE).any(1) | (weights > 1 + EXTRAPOLATE).any(1)
    weights[far] = np.clip(weights[far], 0.0, None)
    weights[far] /= weights[far].sum(1, keepdims=True)
    return tris[index], weights


LOG_OFFSET = 8.0  # reenact.render.shade fits log(Y + 8) (kept here: shade imports this module)
COARSE_SAMPLES = 110  # coarse flow samples across the face ROI (see MeshWarper)


# Between an upper lid and its brow, skin the warp stretches vertically beyond SOFT_FROM (fully at SOFT_FULL) times its
# photo height is blurred across (sideways), over SOFT_SIGMA eye distances: a raised brow stretches the few pixels of
# brow fringe, lashes and creases under it into vertical streaks, which a sideways blur turns into a soft shadow.
# Only where the brow itself rose (by up to SOFT_RISE eye distances against the eye's corners: fully at that): a
# closing lid stretches the same skin, which keeps its detail.
SOFT_FROM, SOFT_FULL, SOFT_SIGMA, SOFT_RISE = 1.4, 2.4, 0.012, 0.03
SQUEEZED = 0.3  # an eye whose triangles all keep more than this share of their photo area ...
STRETCHED = 2.0  # ... and less than this multiple of it (a full brow raise stretches lid skin 3x) needs no exact map
COLLAPSED = 0.3  # a triangle with less than this share of its photo area left is treated as shut


def _area(corners: np.ndarray) -> np.ndarray:
    """(T, 3, 2) triangles -> (T,) unsigned areas."""
    e1, e2 = corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]
    return np.abs(e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]) / 2


# Lids closed in by SLIDE_FULL of the photo's gap slide over the eyeball fully, from SLIDE_FROM (blended between).
SLIDE_FROM, SLIDE_FULL = 0.02, 0.25
# Lids opened wider than the photo's by WIDEN_FULL of its gap show the photo's eyeball stretched evenly between them,
# from WIDEN_FROM. The mesh's triangles fan out from the iris's vertices to the lids, and where the upper lid rose and
# the lower did not the iris's edge kinked at the edge through its middle: a chevron in the iris (an eye opened wide).
WIDEN_FROM, WIDEN_FULL = 0.02, 0.15
# A lowered upper lid unfolds (`Eyeball.unfold`): fully once it has come down UNFOLD_FULL of the
# photo's opening; its lash band is then drawn FORESHORTEN of its height (the lashes turn toward the viewer), and the
# band's share of the lid (lash line to crease) is read from the photo, clipped to LASH_SHARE.
UNFOLD_FULL, FORESHORTEN, LASH_SHARE = 0.3, 0.4, (0.2, 0.8)
# A lid closing in shades the eyeball under it: by LID_SHADOW times its closure, falling off as exp(-d / SHADOW_FALL)
# with the distance d under the lid, in the photo's gaps.
LID_SHADOW, SHADOW_FALL = 0.7, 0.25
# Per eye, in EYE_CONTOUR's order, the halo ring above the upper lid, corner to corner (the lid's crease).
UPPER_RINGS = np.stack([np.concatenate([c[16:17], c[25:32], c[24:25]]) for c in EYE_CONTOUR])  # (2, 9)


def lash_share(image: np.ndarray, corner: np.ndarray, axis: np.ndarray, normal: np.ndarray, u: np.ndarray,
               lid: np.ndarray, ring: np.ndarray) -> float:
    """The share of an upper lid's height (lash line to crease) its lashes take: per column along the middle of the
    eye, the height where the lid's luminance, from the lash line up, first rises past halfway between its darkest
    and lightest; their median, clipped to LASH_SHARE. image (H, W, 3) ROI; lid, ring (len(u),) offsets along
    `normal` (down) at distances u along `axis` from `corner`."""
    luma = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    t = np.linspace(0.0, 1.0, 16)
    shares = []
    for k in range(len(u) // 5, len(u) - len(u) // 5):
        height = lid[k] - ring[k]
        if height < 2.0:
            continue
        pts = corner + u[k] * axis + (lid[k] - t[:, None] * height) * normal  # (16, 2) lash line up to the crease
        profile = cv2.remap(luma, pts[:, 0].astype(np.float32)[None], pts[:, 1].astype(np.float32)[None],
                            cv2.INTER_LINEAR)[0]
        half = (profile.min() + profile.max()) / 2
        above = np.flatnonzero((profile > half) & (t > 0))
        shares.append(t[above[0]] if len(above) else 1.0)
    return float(np.clip(np.median(shares), *LASH_SHARE)) if shares else 0.5


def lid_lines(opening: np.ndarray, corner: np.ndarray, axis: np.ndarray, normal: np.ndarray, u: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
    """(16, 2) an eye's opening polygon (OPENINGS' order: lower lid corner to corner, upper lid back) -> the upper and
    lower lids' offsets (px) along `normal` at distances u (px) along `axis` from `corner`."""
    upper = np.concatenate([opening[:1], opening[9:][::-1], opening[8:9]])
    return line_across(upper, corner, axis, normal, u), line_across(opening[:9], corner, axis, normal, u)


def line_across(line: np.ndarray, corner: np.ndarray, axis: np.ndarray, normal: np.ndarray, u: np.ndarray
                ) -> np.ndarray:
    """(K, 2) points of a line along an eye -> their offsets (px) along `normal` at distances u along `axis`."""
    along, off = (line - corner) @ axis, (line - corner) @ normal
    order = np.argsort(along)
    return np.interp(u, along[order], off[order])


@dataclass
class Eyeball:
    """What of one eye's eyeball a photo shows (its opening's mask) in the eye's own frame (corner to corner), for
    lids that slide over it (`under`)."""
    origin: np.ndarray  # (2,) the mask's top-left, ROI px
    mask: np.ndarray  # (h, w) uint8: 1 inside the photo's opening
    corner: np.ndarray  # (2,) the first corner, ROI px
    axis: np.ndarray  # (2,) unit, corner to corner
    normal: np.ndarray  # (2,) unit, across the eye
    length: float  # corner to corner, px
    iris: tuple[float, float]  # the iris's span along the axis, px from the corner
    room: float  # the most the iris may move along the axis (keeps the map monotonic)
    lids: tuple[np.ndarray, np.ndarray, np.ndarray]  # (u, upper, lower): lid_lines sampled along the axis
    ring: np.ndarray  # (len(u),) the upper lid's crease (halo ring) offsets along the axis
    lash: float  # the lash band's share of the upper lid's height

    @classmethod
    def of(cls, points: np.ndarray, opening: np.ndarray, iris: np.ndarray, ring: np.ndarray, image: np.ndarray
           ) -> "Eyeball":
        """points (N, 2) ROI px; opening: the lid contour's vertex ids (OPENINGS); iris: its five ids (IRISES);
        ring: the upper halo ring's ids (UPPER_RINGS); image: the ROI (H, W, 3), for the lash band's share."""
        poly = points[opening]
        origin = np.floor(poly.min(0)) - 1
        mask = np.zeros((np.ceil(poly.max(0) - origin).astype(int) + 2)[::-1], np.uint8)
        cv2.fillPoly(mask, [np.round((poly - origin) * 16).astype(np.int32)], 1, cv2.LINE_8, 4)
        corner, far = points[opening[0]], points[opening[8]]
        length = max(float(np.linalg.norm(far - corner)), 1e-3)
        axis = (far - corner) / length
        along = (points[iris] - corner) @ axis  # (5,) the iris's centre and ring along the eye
        margin = 0.1 * length  # the white the map keeps between the iris and each corner
        span = (float(np.clip(along.min(), margin, length - 2 * margin)), float(np.clip(along.max(), 2 * margin,
                                                                                            length - margin)))
        normal = np.array([-axis[1], axis[0]])
        u = np.linspace(0.0, length, 24)
        upper, lower = lid_lines(poly, corner, axis, normal, u)
        if (lower - upper).sum() < 0:  # the normal points from the upper lid to the lower one
            normal, upper, lower = -normal, -upper, -lower
        crease = line_across(points[ring], corner, axis, normal, u)
        lash = lash_share(image, corner, axis, normal, u, upper, crease)
        return cls(origin, mask, corner, axis, normal, length, span,
                   0.8 * max(min(span[0], length - span[1]), 0.0), (u, upper, lower), crease, lash)

    def seen(self, points: np.ndarray) -> np.ndarray:
        """(P,) 1 where photo ROI points (P, 2) are inside the photo's opening (its mask, nearest pixel), else 0."""
        k = np.round(points - self.origin).astype(int)
        ok = (k >= 0).all(1) & (k[:, 0] < self.mask.shape[1]) & (k[:, 1] < self.mask.shape[0])
        out = np.zeros(len(points))
        out[ok] = self.mask[k[ok, 1], k[ok, 0]]
        return out

    def lid(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The photo's upper and lower lid offsets (px, along `normal`) at distances u (px) along the eye."""
        at, upper, lower = self.lids
        return np.interp(u, at, upper), np.interp(u, at, lower)

    def closing(self, target: np.ndarray, u: np.ndarray) -> np.ndarray:
        """How far the lids of a target opening (16, 2), in the photo's frame, close in on the photo's gap at
        distances u along the eye (0: as open, 1: shut; none where the photo's gap is under a pixel, at the corners)."""
        upper, lower = lid_lines(target, self.corner, self.axis, self.normal, u)
        return self._closing(upper, lower, u)

    def _closing(self, upper: np.ndarray, lower: np.ndarray, u: np.ndarray) -> np.ndarray:
        photo_upper, photo_lower = self.lid(u)
        gap = photo_lower - photo_upper
        return np.where(gap > 1.0, 1.0 - (lower - upper) / np.maximum(gap, 1.0), 0.0)

    def corners_motion(self, first: np.ndarray, last: np.ndarray) -> np.ndarray:
        """(2,) how far a target moved the eye's corners (first, last: its two corners, ROI px), their mean."""
        return (first - self.corner + last - (self.corner + self.length * self.axis)) / 2

    def pixels(self, outline: np.ndarray, rigid: np.ndarray, size: tuple[int, int]
               ) -> tuple[tuple[int, int], tuple[int, int], np.ndarray, np.ndarray] | None:
        """The ROI box round a target's points `outline` (K, 2): its top-left (x0, y0) and shape (h', w'), and each
        of its pixels' offsets (P,) along and across the eye in the photo's frame (the target's corner motion
        `rigid` taken off); None where the box is under 3 px. size: the ROI's (h, w)."""
        h, w = size
        lo = (np.floor(outline.min(0)) - 1).astype(int).clip(0, [w - 1, h - 1])
        hi = (np.ceil(outline.max(0)) + 1).astype(int).clip(0, [w - 1, h - 1])
        if (hi - lo < 3).any():
            return None
        ys, xs = np.mgrid[lo[1]:hi[1] + 1, lo[0]:hi[0] + 1]
        q = np.stack([xs.ravel(), ys.ravel()], 1) - rigid - self.corner  # (P, 2) in the photo's frame, from the corner
        return (int(lo[0]), int(lo[1])), xs.shape, q @ self.axis, q @ self.normal

    def under(self, target: np.ndarray, shift: np.ndarray, size: tuple[int, int]
              ) -> tuple[tuple[int, int], np.ndarray, np.ndarray, np.ndarray] | None:
        """Where a target eye reads the photo's eyeball under lids that slide over it, and how the lid shades it.

        The eye's triangles run from the lids to the iris, so a lid coming down squeezes the iris and white under it
        into a flattened eye that still reads open. A real lid slides over the eyeball: inside the target lids this
        reads the photo's eyeball carried with the eye's corners, a blink's upper lid coming down over its top and a
        squint's lower lid up over its bottom, the iris moved along the eye by the gaze (the white on either side
        stretched or squeezed to follow). Carried with the lower lid instead, a squint rolled the iris up under the
        upper lid. It fades in as the lids close in (SLIDE_FROM to SLIDE_FULL of the photo's gap). Where they open
        wider (WIDEN_FROM to WIDEN_FULL) the photo's eyeball is read stretched evenly from lid to lid, column by
        column: the mesh's triangles fan out from the iris's vertices, and stretched unevenly they kinked the iris.

        A lid closing in also shades the eyeball just under it (LID_SHADOW, SHADOW_FALL): with the photo's bright
        white and iris highlight under a lowered lid, a half-shut eye read about three quarters open to a viewer and
        to a face tracker.

        target: (16, 2) the target opening (OPENINGS' order), ROI px; shift: (2,) the eyeball's own motion; size: the
        ROI's (h, w). Returns the box's top-left (x0, y0), (h', w', 2) photo ROI px to read, (h', w') coverage and
        (h', w') brightness (the lid's shadow); None where nothing of the eyeball is drawn."""
        rigid = self.corners_motion(target[0], target[8])
        closes = self.closing(target - rigid, self.lids[0])
        if closes.max() < SLIDE_FROM / 2 and closes.min() > -WIDEN_FROM / 2:
            return None  # most frames: the lids nowhere close in or open wider (checked along the eye before any pixel)
        found = self.pixels(target, rigid, size)
        if found is None:
            return None
        origin, shape, u, v = found
        upper, lower = lid_lines(target - rigid, self.corner, self.axis, self.normal, u)  # (P,) each
        closing = self._closing(upper, lower, u)  # (P,)
        weight = np.clip((closing - SLIDE_FROM) / (SLIDE_FULL - SLIDE_FROM), 0.0, 1.0)
        weight += np.clip((-closing - WIDEN_FROM) / (WIDEN_FULL - WIDEN_FROM), 0.0, 1.0)
        if not (weight > 0).any():
            return None
        gaze = float(np.clip((shift - rigid) @ self.axis, -self.room, self.room))
        knots = np.array([0.0, self.iris[0], self.iris[1], self.length])
        along = np.interp(u, knots + [0.0, gaze, gaze, 0.0], knots)  # monotonic, corners fixed
        read_upper, read_lower = self.lid(along)  # the photo's lids where each pixel reads it
        # closing in: the eyeball stays and the lids slide over it; opening wider: it stretches evenly between them
        stretched = read_upper + (v - upper) * (read_lower - read_upper) / np.maximum(lower - upper, 1.0)
        across = np.where(closing > 0, v, stretched)
        source = self.corner + along[:, None] * self.axis + across[:, None] * self.normal
        inside = np.zeros(shape, np.uint8)  # the target opening, anti-aliased
        cv2.fillPoly(inside, [np.round((target - origin) * 16).astype(np.int32)], 255, cv2.LINE_AA, 4)
        alpha = inside.ravel() / 255.0 * weight * self.seen(source)  # (P,)
        if not (alpha > 0).any():
            return None
        photo_upper, photo_lower = self.lid(u)
        below = np.maximum(v - upper, 0.0) / np.maximum(photo_lower - photo_upper, 1.0)  # (P,) in the photo's gaps
        shade = 1.0 - LID_SHADOW * np.clip(closing, 0.0, 1.0) * np.exp(-below / SHADOW_FALL)
        return origin, source.reshape(*shape, 2), alpha.reshape(shape), shade.reshape(shape)

    def unfold(self, lid: np.ndarray, ring: np.ndarray, size: tuple[int, int]
               ) -> tuple[tuple[int, int], np.ndarray, np.ndarray] | None:
        """Where a lowered upper lid reads the photo: its lash band foreshortened, the skin above it stretched.

        The rig carries the band from the lash line up to the crease (the halo ring above the lid) down with the lid
        at its photo height, so a half-shut eye had the photo's lashes, liner and lid shadow above it as a dark band
        as tall as its slit (audrey: 11 px over a 10 px slit), which reads as eye. A real lid unfolds as it comes
        down: its lashes turn toward the viewer, a thin line at the margin, and lid skin shows above them. Per column
        along the eye, between the target lid and the target crease, the photo's lash band (`lash` of the lid's
        height) is drawn down to FORESHORTEN of its height and the skin above it takes the rest of the lid's
        height, as far as the lid has come down (fully at UNFOLD_FULL of the photo's opening). A brow raise, which
        stretches the same skin with the lid where it was, is left to the mesh.

        lid, ring: (9, 2) the target upper lid and the crease above it, corner to corner, ROI px; size: the ROI's
        (h, w). Returns the box's top-left (x0, y0), (h', w', 2) photo ROI px to read and (h', w') coverage; None
        where the lid is nowhere lowered."""
        rigid = self.corners_motion(lid[0], lid[-1])
        at, photo_lid, photo_lower = self.lids
        lowered = line_across(lid - rigid, self.corner, self.axis, self.normal, at) - photo_lid  # (24,) px down
        if (lowered / (UNFOLD_FULL * np.maximum(photo_lower - photo_lid, 1.0))).max() < 0.02:
            return None  # most frames: no lid lowered (checked along the eye before any pixel is)
        found = self.pixels(np.concatenate([lid, ring]), rigid, size)
        if found is None:
            return None
        origin, shape, u, v = found
        target_lid = line_across(lid - rigid, self.corner, self.axis, self.normal, u)  # (P,) offsets along normal
        target_ring = line_across(ring - rigid, self.corner, self.axis, self.normal, u)
        p_lid, p_lower = self.lid(u)
        photo = np.maximum(p_lid - np.interp(u, at, self.ring), 1e-3)  # (P,) the photo's lid height, px
        height = target_lid - target_ring  # (P,) and the target's
        weight = np.clip((target_lid - p_lid) / (UNFOLD_FULL * np.maximum(p_lower - p_lid, 1.0)), 0.0, 1.0)
        lash = self.lash * photo  # (P,) the photo's lash band, px
        drawn = lash * (1.0 - (1.0 - FORESHORTEN) * weight)  # (P,) and its height as drawn
        up = target_lid - v  # (P,) height above the target lid
        skin = lash + (up - drawn) * (photo - lash) / np.maximum(height - drawn, 1e-3)
        read = np.where(up <= drawn, up * lash / np.maximum(drawn, 1e-3), skin)  # (P,) height above the photo's lid
        source = self.corner + u[:, None] * self.axis + (p_lid - read)[:, None] * self.normal
        inside = (up >= -0.5) & (up <= height + 0.5) & (height > drawn + 0.5) & (u > 0) & (u < self.length)
        taper = np.clip(np.sin(np.pi * np.clip(u / self.length, 0.0, 1.0)) / np.sin(np.pi * 0.15), 0.0, 1.0)
        alpha = inside * weight * taper  # (P,)
        if not (alpha > 0).any():
            return None
        return origin, source.reshape(*shape, 2), alpha.reshape(shape)


def iris_motion(disp: torch.Tensor) -> torch.Tensor | None:
    """(B, N, 2) displacement straight to tracked meshes -> (B, 2, 2) each eyeball's own motion, its iris centre's,
    for `MeshWarper.warp` to slide the lids over (the renderer's comes from FaceRenderer.displacements); None for a
    mesh without irises."""
    return disp[:, IRIS_CENTRES] if disp.shape[1] > max(IRIS_CENTRES) else None


class MeshWarper:
    """Warps one source photo's face region to any number of target meshes.

    points: (478, 2) source mesh vertices in photo pixels (FaceMesh order, with iris). stride: the flow is
    interpolated on a grid `stride` times coarser than the photo and upsampled bilinearly (the flow is smooth, the
    image is not).
    """

    def __init__(self, image: np.ndarray, points: np.ndarray, device: torch.device = torch.device("cpu"),
                 margin: float = 0.45, stride: int | None = None) -> None:
        self.device = device
        self.roi = face_roi(points, image.shape[:2], margin)
        self.n_mesh = len(points)
        anchors = _border_anchors(self.roi)
        nodes = np.concatenate([points[:, :2], anchors]).astype(np.float64)  # (478 + A, 2)
        tris = face_triangles(nodes, len(anchors))
        h, w = self.roi.size
        # The flow is solved on a coarse grid. Its spacing follows the face's size, not the photo's pixels: the same
        # ~110 samples across the ROI whatever the resolution (2 px for a 220 px ROI, 5 px for a 530 px one), so a
        # large photo costs what a small one does. Finer grids change only the inside of an opening mouth (which
        # MouthPainter repaints); 34 -> 6 ms/frame for the face of a 1280 px photo.
        stride = stride or max(2, round(max(h, w) / COARSE_SAMPLES))
        self.coarse = (int(np.ceil(h / stride)), int(np.ceil(w / stride)))
        gy, gx = np.meshgrid(np.linspace(0, h - 1, self.coarse[0]), np.linspace(0, w - 1, self.coarse[1]), indexing="ij")
        grid = np.stack([gx.ravel() + self.roi.x0, gy.ravel() + self.roi.y0], 1)  # (P, 2)
        corner_ids, bary = barycentric(nodes, tris, grid, self.coarse)  # (P, 3) vertex ids and weights
        rows = np.repeat(np.arange(len(grid)), 3)
        cols = corner_ids.ravel()
        edge = np.zeros(self.coarse, bool)
        edge[[0, -1], :] = edge[:, [0, -1]] = True  # the ROI's own border never moves: no seam with the photo
        # anchors have zero displacement: drop their columns (and everything on the border)
        keep = (cols < self.n_mesh) & ~np.repeat(edge.ravel(), 3)
        index = torch.tensor(np.stack([rows[keep], cols[keep]]), dtype=torch.long)
        values = torch.tensor(bary.ravel()[keep], dtype=torch.float32)
        self.interp = torch.sparse_coo_tensor(index, values, (grid.shape[0], self.n_mesh), check_invariants=True)
        self.interp = self.interp.coalesce().to(device)
        self.nodes = nodes  # (478 + A, 2) photo px
        # Per eye: the mesh triangles up to the brow's upper edge, mapped exactly in `_exact_eyes`; the band from
        # the upper lid (corner to corner) up to the brow's upper edge, softened in `_soften_stretched`.
        origin = np.array([self.roi.x0, self.roi.y0], np.float64)
        self.mesh_roi = nodes[: self.n_mesh] - origin  # (N, 2) float64 the photo's mesh in ROI px
        roi_img = image[self.roi.y0:self.roi.y1, self.roi.x0:self.roi.x1]
        self.eye_tris, self.brow_bands = [], []
        if len(points) >= 478:
            for ring, iris in zip(EYE_CONTOUR, IRISES):  # lids, halos and the brow's edges
                inside = np.isin(tris, np.concatenate([ring, iris])).all(1)
                self.eye_tris.append(tris[inside])
            canon = load_canonical()
            for lid, side in zip(UPPER_LIDS, ("right", "left")):  # image-left eye first, as EYE_CONTOUR
                self.brow_bands.append(np.concatenate([lid, canon.group(f"{side}_eyebrow_upper")[::-1]]))
            self.eye_size = float(np.linalg.norm(points[33, :2] - points[263, :2]))  # outer eye corners, px
            # Per eye, what `_slide_lids` slides the lids over and `_unfold_lids` unfolds.
            self.eyeballs = [Eyeball.of(self.mesh_roi, opening, iris, ring, roi_img)
                             for opening, iris, ring in zip(OPENINGS, IRISES, UPPER_RINGS)]
        self.source = torch.from_numpy(roi_img.copy()).to(device).permute(2, 0, 1)[None].float()  # (1, 3, H, W)
        # Shut lids hide the eyeball, closed lips a photo's teeth: lid skin and lip colour over what the warp still
        # reads from the photo's openings.
        self.covers = eye_covers(roi_img, self.mesh_roi) if len(points) >= 478 else []
        mouth = mouth_cover(roi_img, self.mesh_roi)
        self.covers += [mouth] if mouth is not None else []
        self.points_roi = torch.tensor(self.mesh_roi, dtype=torch.float32, device=device)  # (N, 2)
        self.coarse_base = torch.tensor(np.stack([gx, gy], -1), dtype=torch.float32, device=device)  # (h, w, 2)
        self.step = ((w - 1) / max(self.coarse[1] - 1, 1), (h - 1) / max(self.coarse[0] - 1, 1))  # coarse spacing px
        self.scale = torch.tensor([2.0 / max(w - 1, 1), 2.0 / max(h - 1, 1)], device=device)

    def displacement(self, disp: torch.Tensor) -> torch.Tensor:
        """(B, N, 2) vertex displacement -> (B, 2, h, w) forward displacement on the coarse grid, in ROI pixels."""
        b = disp.shape[0]
        flat = disp[:, : self.n_mesh].permute(1, 0, 2).reshape(self.n_mesh, b * 2).float()  # (N, B*2)
        dense = torch.sparse.mm(self.interp, flat)  # (P, B*2)
        return dense.reshape(*self.coarse, b, 2).permute(2, 3, 0, 1).contiguous()  # (B, 2, h, w)

    def sample_grid(self, disp: torch.Tensor, iterations: int = 3) -> torch.Tensor:
        """Backward map for `grid_sample`: target pixel x reads source pixel s with s + d(s) = x.

        Solved on the coarse grid (the flow is smooth) and upsampled once. Each step tries a Newton step (converges
        where the face compresses, e.g. a lid closing onto the other, where plain fixed-point iteration stalls)
        and a fixed-point step (robust where it stretches, e.g. the seam of lips that part), and keeps per pixel
        whichever lowers the residual |s + d(s) - x|.
        """
        d = self.displacement(disp)  # (B, 2, h, w) forward displacement, ROI px
        gx = torch.gradient(d, spacing=float(self.step[0]), dim=3)[0]  # (B, 2, h, w) d/dx of (dx, dy)
        gy = torch.gradient(d, spacing=float(self.step[1]), dim=2)[0]  # (B, 2, h, w) d/dy of (dx, dy)
        field = torch.cat([d, gx, gy], 1)  # (B, 6, h, w): dx, dy, dxx, dyx, dxy, dyy
        base = self.coarse_base.expand(d.shape[0], -1, -1, -1)  # (B, h, w, 2)

        def at(f: torch.Tensor, src: torch.Tensor) -> torch.Tensor:
            return F.grid_sample(f, src * self.scale - 1, mode="bilinear", padding_mode="border", align_corners=True)

        def residual(src: torch.Tensor) -> torch.Tensor:
            return (src + at(d, src).permute(0, 2, 3, 1) - base).norm(dim=-1)  # (B, h, w)

        src = base - d.permute(0, 2, 3, 1)
        err = residual(src)
        for _ in range(iterations):
            dx, dy, a_xx, a_yx, a_xy, a_yy = at(field, src).unbind(1)  # each (B, h, w)
            rx, ry = src[..., 0] + dx - base[..., 0], src[..., 1] + dy - base[..., 1]
            m00, m01, m10, m11 = 1 + a_xx, a_xy, a_yx, 1 + a_yy  # I + J
            det = (m00 * m11 - m01 * m10).clamp(min=0.05)
            newton = src - torch.stack([(m11 * rx - m01 * ry) / det, (-m10 * rx + m00 * ry) / det], -1)
            fixed = base - torch.stack([dx, dy], -1)
            e_newton, e_fixed = residual(newton), residual(fixed)
            best = torch.where((e_newton <= e_fixed)[..., None], newton, fixed)
            e_best = torch.minimum(e_newton, e_fixed)
            better = (e_best < err)[..., None]
            src, err = torch.where(better, best, src), torch.where(better[..., 0], e_best, err)
        # Upsample the coarse sampling grid itself: the coarse grid spans the ROI corner to corner, so bilinear
        # upsampling with align_corners reproduces the identity part exactly and no full-size arithmetic is left.
        coarse = (src * self.scale - 1).permute(0, 3, 1, 2)  # (B, 2, h, w) in [-1, 1]
        grid = F.interpolate(coarse, size=self.roi.size, mode="bilinear", align_corners=True)
        return grid.permute(0, 2, 3, 1)  # (B, H, W, 2) in [-1, 1]

    def moved(self, disp: torch.Tensor) -> np.ndarray:
        """(B, N, 2) vertex displacement -> (B, N, 2) float64 the target meshes in ROI px (what the passes round the
        eyes read)."""
        return self.mesh_roi[None] + disp[:, : self.n_mesh, :2].detach().cpu().numpy()

    def _exact_eyes(self, grid: torch.Tensor, moved: np.ndarray) -> None:
        """Overwrite `grid` (B, H, W, 2) around each eye with the exact piecewise-affine backward map of its mesh.

        Where lids close, the target squeezes the whole eye opening into a line; the smooth coarse inverse blends
        source positions across that line, so a sliver of eyeball (white, iris) stays visible between closed lids.
        Mapped triangle by triangle, a collapsed triangle covers no target pixel and the eyeball is gone.
        Where a brow raise stretches the lid's skin (3x on a photo whose brows sit low), the coarse inverse can settle
        on a wrong root and read the eyeball onto the lid (outlined blotches above the eyes), or light skin into the
        brow's lower edge (flecks under a driver's raised brows); mapped exactly, triangle by triangle up to the
        brow's upper edge, it cannot. moved: (B, N, 2) the target meshes, ROI px.
        """
        h, w = self.roi.size
        src = self.mesh_roi  # (N, 2) ROI px
        scale = np.array([2.0 / max(w - 1, 1), 2.0 / max(h - 1, 1)])
        for b in range(len(moved)):
            for tris in self.eye_tris:
                corners = moved[b][tris]  # (T, 3, 2) target triangles
                ratio = _area(corners) / np.maximum(_area(src[tris]), 1e-9)
                if ((ratio > SQUEEZED) & (ratio < STRETCHED)).all():
                    continue  # nothing squeezed or stretched far: the smooth map is exact enough here
                inside = [w - 1, h - 1]  # the box of target and photo triangles, within the ROI
                lo = np.floor(np.minimum(corners.min((0, 1)), src[tris].min((0, 1)))).astype(int).clip(0, inside)
                hi = np.ceil(np.maximum(corners.max((0, 1)), src[tris].max((0, 1)))).astype(int).clip(0, inside)
                box_w, box_h = hi - lo + 1
                index = np.full((box_h, box_w), -1, np.int32)
                # A (nearly) collapsed triangle would read its photo triangle's eyeball at wild barycentric
                # coordinates (white specks on a shut lid): its pixels take the neighbouring lid's triangle instead.
                shut = np.zeros((box_h, box_w), np.uint8)
                open_ = _area(corners) > COLLAPSED * _area(src[tris])
                for t, tri in enumerate(np.round((corners - lo) * 16).astype(np.int32)):
                    cv2.fillConvexPoly(index if open_[t] else shut, tri, int(t) if open_[t] else 1, cv2.LINE_8, 4)
                for _ in range(3):
                    missing = (index < 0) & (shut > 0)
                    if not missing.any():
                        break
                    grown = cv2.dilate(index.astype(np.float32), np.ones((3, 3), np.uint8)).astype(np.int32)
                    index[missing] = grown[missing]
                ys, xs = np.nonzero(index >= 0)
                if not len(ys):
                    continue
                t = index[ys, xs]
                p = np.stack([xs, ys], 1) + lo  # (P, 2) target px
                a, e1, e2 = corners[t, 0], corners[t, 1] - corners[t, 0], corners[t, 2] - corners[t, 0]
                det = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
                ok = np.abs(det) > 1e-6
                v = p - a
                u1 = np.where(ok, (v[:, 0] * e2[:, 1] - v[:, 1] * e2[:, 0]) / np.where(ok, det, 1), 0.0)
                u2 = np.where(ok, (e1[:, 0] * v[:, 1] - e1[:, 1] * v[:, 0]) / np.where(ok, det, 1), 0.0)
                # Rasterised edge pixels lie up to half a pixel outside their triangle: read its own photo triangle.
                u1, u2 = np.clip(u1, 0, 1), np.clip(u2, 0, 1)
                over = np.maximum(u1 + u2, 1.0)
                u1, u2 = u1 / over, u2 / over
                s0 = src[tris[t, 0]]
                source = s0 + u1[:, None] * (src[tris[t, 1]] - s0) + u2[:, None] * (src[tris[t, 2]] - s0)
                grid[b, ys[ok] + lo[1], xs[ok] + lo[0]] = torch.as_tensor(
                    source[ok] * scale - 1, dtype=grid.dtype, device=grid.device)

    def _slide_lids(self, frames: torch.Tensor, src: torch.Tensor, moved: np.ndarray, eyeballs: torch.Tensor) -> None:
        """Draw each eye's eyeball under lids that slide over it (`Eyeball.under`), in warped ROI frames
        (B, 3, H, W), in place. src: (1 or B, 3, H, W) what the frames were sampled from; moved (B, N, 2) the target
        meshes and eyeballs (B, 2, 2), each eye's own motion (gaze, head; not the lids'), ROI px."""
        shifts = eyeballs.detach().cpu().numpy().astype(np.float64)  # (B, 2, 2)
        for e, (opening, eye) in enumerate(zip(OPENINGS, self.eyeballs)):
            for b in range(len(moved)):
                found = eye.under(moved[b, opening], shifts[b, e], self.roi.size)
                if found is not None:
                    origin, source, alpha, shade = found
                    self._draw(frames[b], src[min(b, len(src) - 1)], origin, source, alpha, shade)

    def _unfold_lids(self, frames: torch.Tensor, src: torch.Tensor, moved: np.ndarray) -> None:
        """Draw each lowered upper lid unfolding (`Eyeball.unfold`) in warped ROI frames (B, 3, H, W), in place.
        src: (1 or B, 3, H, W) what the frames were sampled from; moved (B, N, 2) the target meshes, ROI px."""
        for lid, ring, eye in zip(UPPER_LIDS, UPPER_RINGS, self.eyeballs):
            for b in range(len(moved)):
                found = eye.unfold(moved[b, lid], moved[b, ring], self.roi.size)
                if found is not None:
                    self._draw(frames[b], src[min(b, len(src) - 1)], *found)

    def _draw(self, frame: torch.Tensor, src: torch.Tensor, origin: tuple[int, int], source: np.ndarray,
              alpha: np.ndarray, shade: np.ndarray | None = None) -> None:
        """Blend into one warped ROI frame (3, H, W), in place, the photo ROI `src` (3, H, W) read at `source`
        (h', w', 2) ROI px, times `shade` (h', w'), with coverage `alpha` (h', w') over the box at `origin` (x0, y0)."""
        coords = torch.as_tensor(source, dtype=frame.dtype, device=frame.device)[None] * self.scale - 1
        drawn = F.grid_sample(src[None], coords, mode="bilinear", padding_mode="border", align_corners=True)[0]
        if shade is not None:
            drawn *= torch.as_tensor(shade, dtype=frame.dtype, device=frame.device)[None]
        a = torch.as_tensor(alpha, dtype=frame.dtype, device=frame.device)[None]  # (1, h', w')
        (x0, y0) = origin
        region = frame[:, y0:y0 + alpha.shape[0], x0:x0 + alpha.shape[1]]
        region.mul_(1 - a).add_(drawn * a)

    def _soften_stretched(self, frames: torch.Tensor, grid: torch.Tensor, moved: np.ndarray) -> None:
        """Blur `frames` (B, 3, H, W) sideways, in place, where the band between an upper lid and its brow is stretched
        vertically beyond SOFT_FROM times, as far as the brow rose (grid: (B, H, W, 2) the backward map; moved:
        (B, N, 2) the target meshes, ROI px)."""
        d = moved[..., 1] - self.mesh_roi[None, :, 1]  # (B, N) vertical displacement, px (down)
        # How far each brow rose against its eye's corners (fixed to the skull), as a share of SOFT_RISE: (bands, B).
        # A band is its upper lid, corner to corner (n vertices), then its brow's upper edge.
        n = UPPER_LIDS.shape[1]
        rise = np.stack([(d[:, band[[0, n - 1]]].mean(1) - d[:, band[n:]].mean(1)) / (SOFT_RISE * self.eye_size)
                         for band in self.brow_bands]).clip(0.0, 1.0)
        if not (rise > 0).any():  # most frames: no brow raised, nothing to do
            return
        h, w = self.roi.size
        bands = moved[:, np.concatenate(self.brow_bands)]  # (B, K, 2) every band's outline
        sigma = max(1.0, SOFT_SIGMA * self.eye_size)
        pad = int(np.ceil(3 * sigma))
        x0, y0 = np.floor(bands.min((0, 1))).astype(int) - pad
        x1, y1 = np.ceil(bands.max((0, 1))).astype(int) + pad
        x0, y0, x1, y1 = max(x0, 0), max(y0, 1), min(x1, w), min(y1, h - 1)
        if x1 - x0 < 3 or y1 - y0 < 3:
            return
        rows = (grid[:, y0 - 1:y1 + 1, x0:x1, 1] + 1) * ((h - 1) / 2)  # (B, h' + 2, w') photo rows read
        photo_rows = (rows[:, 2:] - rows[:, :-2]) / 2  # (B, h', w') photo rows per target row
        weight = ((1 / photo_rows.clamp(min=1e-3) - SOFT_FROM) / (SOFT_FULL - SOFT_FROM)).clamp(0, 1)
        if not bool((weight > 0).any()):
            return
        inside = np.zeros((len(moved), y1 - y0, x1 - x0), np.float32)  # each band filled with its brow's rise
        for band, band_rise in zip(self.brow_bands, rise):
            for b in np.flatnonzero(band_rise > 0):
                outline = np.round((moved[b, band] - (x0, y0)) * 16).astype(np.int32)
                cv2.fillPoly(inside[b], [outline], float(band_rise[b]), cv2.LINE_8, 4)
        taps = torch.arange(-pad, pad + 1, dtype=frames.dtype, device=frames.device)
        kernel = torch.exp(-0.5 * (taps / sigma) ** 2)
        kernel = (kernel / kernel.sum()).view(1, 1, 1, -1)
        region = frames[:, :, y0:y1, x0:x1]  # (B, 3, h', w')
        flat = region.reshape(-1, 1, *region.shape[-2:])
        blurred = F.conv2d(F.pad(flat, (pad, pad, 0, 0), mode="replicate"), kernel).view_as(region)
        smooth = torch.tensor(np.stack([cv2.GaussianBlur(m, (0, 0), sigma) for m in inside]), device=frames.device)
        alpha = F.avg_pool2d((weight * smooth)[:, None], 3, 1, 1, count_include_pad=False)  # (B, 1, h', w')
        region.mul_(1 - alpha).add_(blurred * alpha)

    @cached_property
    def source_offset(self) -> torch.Tensor:
        """(1, 3, H, W) the ROI + LOG_OFFSET: what a shading gain multiplies (the log(Y + 8) it was fitted in)."""
        return self.source + LOG_OFFSET

    def warp(self, disp: torch.Tensor, gain: torch.Tensor | None = None,
             eyeballs: torch.Tensor | None = None) -> torch.Tensor:
        """(B, N, 2) displacement -> (B, 3, H, W) warped ROI, float in 0..255. `gain` (B, 1, H, W): a luminance
        gain on the photo before it moves (reenact.render.shade), applied to Y + LOG_OFFSET as it was fitted.
        `eyeballs` (B, 2, 2): each eye's own motion (FaceRenderer.displacements), for the lids to slide over; None:
        the eyeball moves with the lids' mesh."""
        grid = self.sample_grid(disp)
        moved = self.moved(disp) if self.eye_tris else None  # once for every pass round the eyes
        if self.eye_tris:
            self._exact_eyes(grid, moved)
        if gain is None:
            src = self.source.expand(disp.shape[0], -1, -1, -1)
        else:  # one full-size product (broadcast over the batch); offset and clamp in place
            src = (gain.to(self.source) * self.source_offset).sub_(LOG_OFFSET).clamp_(0, 255)
        frames = F.grid_sample(src, grid, mode="bilinear", padding_mode="border", align_corners=True)
        if self.eye_tris:
            self._unfold_lids(frames, src, moved)
            if eyeballs is not None:
                self._slide_lids(frames, src, moved, eyeballs)
        if self.brow_bands:  # built with the eyes' triangles: `moved` is there
            self._soften_stretched(frames, grid, moved)
        if self.covers:
            cover_openings(frames, grid, self.covers, self.points_roi, disp[:, : self.n_mesh, :2].to(self.device))
        return frames

    def paste(self, image: np.ndarray, roi_frames: torch.Tensor) -> np.ndarray:
        """Put (B, 3, H, W) ROI frames back into copies of the full photo -> (B, H_img, W_img, 3) uint8."""
        roi = roi_frames.clamp(0, 255).add_(0.5).to(torch.uint8)  # +0.5 and truncation: rounding in one pass
        roi = roi.permute(0, 2, 3, 1).cpu().numpy()  # (B, h, w, 3)
        out = np.empty((len(roi), *image.shape), np.uint8)
        out[:] = image
        out[:, self.roi.y0:self.roi.y1, self.roi.x0:self.roi.x1] = roi
        return out
