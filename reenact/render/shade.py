"""Expression shading: the light and dark a new expression puts on the skin, which a warp cannot move into place
because the photo does not have it: the furrow between lowered brows (AU4), the nose wrinkle (AU9), the cheek bulge
and crow's feet of a real smile (AU6 with AU12), the creases of a raised upper lip (AU10).

A linear model in a texture space tied to the face surface (the canonical FaceMesh seen from the front, TEX x TEX
texels), in log luminance, so it is a ratio image (Liu, Shan & Zhang, "Expressive expression mapping with ratio
images", SIGGRAPH 2001) learnt from real video instead of one example pair:

    log Y_rendered(u) = log Y_warped(u) + sum_k clip(au_k(target) - au_k(source)) * maps[k, u]
                                        + sum_k max(au_k(target) - au_k(source) - deadzone, 0) * creases[k, u]

`maps` (17, TEX, TEX) is fitted by reenact/train/shading.py on real clips of people changing expression; a map is
the change of log luminance per unit of one Action Unit, with each person's own face and lighting removed. It is a
gain on luminance (all three channels alike), so it darkens a crease or lifts a bulge without changing skin colour.

Per photo the maps are resampled once into the face region (ROI) of the photo, on the photo's own mesh, so per frame
the shading is one (B, 17) x (17, h*w) product; the gain is applied to the photo *before* the warp, so it moves with
the skin it belongs to.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from reenact.errors import WeightsError
from reenact.face.canonical import load_canonical
from reenact.params import ARKIT_TO_AU, AU17
from reenact.registry import register_model
from reenact.render.warp import LOG_OFFSET, Roi, barycentric

TEX = 128  # texels across the texture space; log(Y + LOG_OFFSET): dark pixels (hair, nostrils) do not blow up ratios
SHADE_STRIDE = 2  # the gain is computed at half the ROI's resolution and upsampled: creases are wider than 2 px


def luminance(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) uint8/float RGB -> (...) float32 BT.601 luma in 0..255."""
    return np.asarray(rgb, np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


def _raster(points: np.ndarray, tris: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(h, w) bool: pixels covered by any triangle of `points` (pixel units, x right, y down)."""
    mask = np.zeros(shape, np.uint8)
    polys = [np.round(points[t, :2] * 16).astype(np.int32) for t in tris]
    cv2.fillPoly(mask, polys, 1, shift=4)
    return mask.astype(bool)


@dataclass(frozen=True, eq=False)  # hashed by identity: cached per instance
class TextureSpace:
    """The canonical face, frontal, scaled into TEX x TEX texels; FaceMesh's own triangles (no eye or mouth
    openings: those are never shaded)."""

    uv: np.ndarray  # (468, 2) canonical vertices in texel units
    tris: np.ndarray  # (T, 3) FaceMesh triangles
    size: int = TEX

    @staticmethod
    @lru_cache(maxsize=1)
    def default() -> "TextureSpace":
        canon = load_canonical()
        xy = canon.vertices[:, :2].astype(np.float64)
        lo, hi = xy.min(0), xy.max(0)
        scale = (TEX - 3) / float((hi - lo).max())
        uv = (xy - lo) * scale + 1 + ((TEX - 3) - (hi - lo) * scale) / 2  # centred, one texel of border
        return TextureSpace(uv.astype(np.float32), canon.triangles.astype(np.int64))

    @cached_property
    def mask(self) -> np.ndarray:
        """(TEX, TEX) bool: texels on the face."""
        return _raster(self.uv, self.tris, (self.size, self.size))

    @cached_property
    def skin(self) -> np.ndarray:
        """(TEX, TEX) float in [0, 1]: where shading may act, with soft edges. The face without its outline (hair and
        background leak in), eyes, brows and lips: there the tracker's small misplacements of high-contrast edges
        would be fitted as 'shading', and the warp already moves those features."""
        canon = load_canonical()
        keep = cv2.erode(self.mask.astype(np.uint8), np.ones((7, 7), np.uint8))
        cut = np.zeros_like(keep)
        for group, grow in (("left_eye", 3), ("right_eye", 3), ("left_eyebrow_upper", 2), ("right_eyebrow_upper", 2),
                            ("lips_outer", 2)):
            idx = canon.group(group)
            if "eyebrow" in group:  # the brow is the band between its upper and lower paths
                idx = np.concatenate([idx, canon.group(group.replace("upper", "lower"))])
            m = np.zeros_like(keep)
            cv2.fillConvexPoly(m, cv2.convexHull(np.round(self.uv[idx]).astype(np.int32)), 1)
            cut |= cv2.dilate(m, np.ones((2 * grow + 1,) * 2, np.uint8))
        hard = (keep & ~cut.astype(bool)).astype(np.float32)
        return np.minimum(hard, cv2.GaussianBlur(hard, (0, 0), 1.5))

    def positions(self, points: np.ndarray) -> np.ndarray:
        """(TEX, TEX, 2) where each texel lies in a photo whose (468+, 2|3) mesh is `points` (photo px)."""
        corners, bary = _texel_bary(self)
        pts = np.asarray(points, np.float64)[:468, :2]
        return (pts[corners] * bary[..., None]).sum(1).reshape(self.size, self.size, 2).astype(np.float32)

    def unwrap(self, image: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Photo (H, W, 3) and its mesh -> (TEX, TEX) log luminance on the face's surface and (TEX, TEX) validity
        (on the face, inside the photo, and not on a triangle the photo shows from behind: a turned-away side)."""
        pos = self.positions(points)
        y = np.log(luminance(image) + LOG_OFFSET)
        tex = cv2.remap(y, pos[..., 0], pos[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        h, w = image.shape[:2]
        ok = self.mask & (pos[..., 0] >= 0) & (pos[..., 0] <= w - 1) & (pos[..., 1] >= 0) & (pos[..., 1] <= h - 1)
        return tex, ok & self._front_facing(points)

    def _front_facing(self, points: np.ndarray) -> np.ndarray:
        """(TEX, TEX) bool: texels whose triangle keeps its canonical winding in the photo (seen from the front)."""
        p = np.asarray(points, np.float64)[:468, :2]
        def area(q: np.ndarray) -> np.ndarray:
            a, b, c = q[self.tris[:, 0]], q[self.tris[:, 1]], q[self.tris[:, 2]]
            return (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
        back = self.tris[np.sign(area(p)) != np.sign(area(self.uv.astype(np.float64)))]
        return ~_raster(self.uv, back, (self.size, self.size)) if len(back) else np.ones((self.size,) * 2, bool)


@lru_cache(maxsize=2)
def _texel_bary(space: TextureSpace) -> tuple[np.ndarray, np.ndarray]:
    n = space.size
    gy, gx = np.meshgrid(np.arange(n, dtype=np.float64), np.arange(n, dtype=np.float64), indexing="ij")
    grid = np.stack([gx.ravel(), gy.ravel()], 1)
    return barycentric(space.uv.astype(np.float64), space.tris, grid, (n, n))


def gate(extra: dict) -> str | None:
    """Why a set of maps must not be used (None: it may). Its contract's fit report must show that the maps predict
    real shading changes on frames they never saw and, with each person left out of the fit in turn, on that person
    (a map that only knows the people it was fitted on paints their creases onto everyone else); and, when the
    held-out pairs were measured (tools/eval_shading.py --record), that the shaded skin is closer to the real frames."""
    fit = extra.get("fit") or {}
    if not (fit.get("explained_held_out") or 0) > 0:
        return "the maps do not predict the shading of held-out frames (extra.fit.explained_held_out <= 0)"
    people = fit.get("explained_new_person") or {}
    if len(people) < 2 or min(people.values()) <= 0:
        return "the maps do not predict the shading of every person left out of the fit (explained_new_person)"
    pairs = (extra.get("held_out_pairs") or {}).get("skin")
    if pairs and not pairs["shaded"]["L1"] < pairs["warp-only"]["L1"]:
        return "shaded held-out frames are no closer to the real ones than the warp's (extra.held_out_pairs)"
    return None


@register_model("expression_shading")
class ExpressionShading(torch.nn.Module):
    """maps (K, TEX, TEX): change of log luminance per unit of each AU17 channel; lo/hi (K,): the range of AU
    changes the maps were fitted on (a change is clipped to it: a linear model is not trusted far outside).
    creases (K, TEX, TEX), only with `creases=True`: anatomical crease lines (reenact/train/wrinkles.py) per unit
    of an AU's rise past the dead zone, max(change - deadzone, 0): drawn when an expression is added, never "erased"
    from a photo (where a photo's own creases lie is not where a canonical line would put them)."""

    def __init__(self, n_channels: int = len(AU17), size: int = TEX, creases: bool = False) -> None:
        super().__init__()
        self.register_buffer("maps", torch.zeros(n_channels, size, size))  # (K, TEX, TEX)
        self.register_buffer("lo", torch.full((n_channels,), -1.0))  # (K,)
        self.register_buffer("hi", torch.ones(n_channels))  # (K,)
        # None buffers are not in the state dict: maps fitted without creases load as they were saved
        self.register_buffer("creases", torch.zeros(n_channels, size, size) if creases else None)  # (K, TEX, TEX)
        self.register_buffer("deadzone", torch.tensor(0.2) if creases else None)  # AU units

    def for_photo(self, points: np.ndarray, roi: Roi, source_shapes: np.ndarray) -> "PhotoShading":
        """Resample the maps onto one photo's face region (its mesh in photo px; its own ARKit expression)."""
        space = TextureSpace.default()
        if self.maps.shape[-1] != space.size:
            raise WeightsError(f"shading maps are {self.maps.shape[-1]} texels wide; this version expects {space.size}. "
                               "Reinstall reenact or re-run python -m reenact.train.shading.")
        h, w = roi.size
        hs, ws = max(2, -(-h // SHADE_STRIDE)), max(2, -(-w // SHADE_STRIDE))
        gy, gx = np.meshgrid(np.linspace(roi.y0, roi.y1 - 1, hs), np.linspace(roi.x0, roi.x1 - 1, ws), indexing="ij")
        grid = np.stack([gx.ravel(), gy.ravel()], 1)
        pts = np.asarray(points, np.float64)[:468, :2]
        corners, bary = barycentric(pts, space.tris, grid, (hs, ws))
        uv = (space.uv[corners] * bary[..., None]).sum(1).reshape(hs, ws, 2)  # (hs, ws, 2) texel coords
        # Only on the face (the photo's own triangles), with a soft edge so the gain fades out, never a seam.
        sx, sy = (w - 1) / max(ws - 1, 1), (h - 1) / max(hs - 1, 1)
        on_face = _raster((pts - [roi.x0, roi.y0]) / [sx, sy], space.tris, (hs, ws)).astype(np.float32)
        feather = max(1.0, 0.02 * max(hs, ws))
        soft = np.minimum(on_face, cv2.GaussianBlur(on_face, (0, 0), feather))
        norm = torch.from_numpy(uv / (space.size - 1) * 2 - 1).float()[None].to(self.maps.device)  # (1, hs, ws, 2)
        layers = [self.maps] if self.creases is None else [self.maps, self.creases]
        both = torch.cat(layers)[None].float()  # (1, K or 2K, TEX, TEX)
        both = F.grid_sample(both, norm, mode="bilinear", padding_mode="zeros", align_corners=True)
        both = both[0] * torch.from_numpy(soft).to(both)  # (K or 2K, hs, ws)
        maps, creases = both[: len(self.maps)], both[len(self.maps):]
        to_au = torch.as_tensor(ARKIT_TO_AU, dtype=torch.float32, device=self.maps.device)  # (17, 52)
        source_au = (torch.as_tensor(source_shapes, dtype=torch.float32).to(to_au) @ to_au.T).clamp(0, 1)  # (17,)
        return PhotoShading(maps.reshape(len(maps), -1), (hs, ws), (h, w), self.lo, self.hi, to_au, source_au,
                            creases.reshape(len(creases), -1) if len(creases) else None,
                            float(self.deadzone) if self.creases is not None else 0.0,
                            norm, torch.from_numpy(soft).to(both))


@dataclass
class PhotoShading:
    """One photo's shading: `gain(shapes (B, 52)) -> (B, 1, h, w)` multiplicative gain over its ROI."""

    maps: torch.Tensor  # (K, hs*ws)
    coarse: tuple[int, int]  # (hs, ws)
    size: tuple[int, int]  # ROI (h, w)
    lo: torch.Tensor  # (K,)
    hi: torch.Tensor  # (K,)
    to_au: torch.Tensor  # (17, 52) reenact.params.ARKIT_TO_AU
    source_au: torch.Tensor  # (17,) the photo's own AUs
    creases: torch.Tensor | None  # (K, hs*ws); None: maps without creases
    deadzone: float
    texels: torch.Tensor | None = None  # (1, hs, ws, 2) where each coarse ROI px lies in texture space, -1..1
    soft: torch.Tensor | None = None  # (hs, ws) on the face, soft-edged

    def gain(self, shapes: torch.Tensor) -> torch.Tensor:
        au = (shapes.to(self.maps.device).float() @ self.to_au.T).clamp(0, 1)  # (B, 17) as the estimator reads AUs
        change = torch.maximum(torch.minimum(au - self.source_au, self.hi), self.lo)  # (B, 17)
        log_gain = change @ self.maps  # (B, hs*ws)
        if self.creases is not None:
            log_gain = log_gain + (au - self.source_au - self.deadzone).clamp(min=0) @ self.creases
        log_gain = log_gain.reshape(-1, 1, *self.coarse)  # (B, 1, hs, ws)
        log_gain = F.interpolate(log_gain, size=self.size, mode="bilinear", align_corners=True)
        return log_gain.exp()  # (B, 1, h, w)

    def crease_gain(self, creases: "list[np.ndarray | None]") -> torch.Tensor | None:
        """(B, 1, h, w) gain over the ROI carrying per frame a (TEX, TEX) log-luminance ratio in texture space
        (`DriverCreases.at`; None: that frame has none), or None when no frame has one."""
        if self.texels is None or self.soft is None or all(c is None for c in creases):
            return None
        tex = np.stack([np.zeros((TEX, TEX), np.float32) if c is None else c for c in creases])[:, None]
        log_gain = F.grid_sample(torch.from_numpy(tex).to(self.texels), self.texels.expand(len(tex), -1, -1, -1),
                                 mode="bilinear", padding_mode="zeros", align_corners=True)  # (B, 1, hs, ws)
        log_gain = F.interpolate(log_gain * self.soft, size=self.size, mode="bilinear", align_corners=True)
        return log_gain.exp()  # (B, 1, h, w)


# --- the driver's fine creases (issue 19 item 4) ----------------------------------------------------------------------
# Averbuch-Elor et al. 2017: the driver's change of log luminance against its first frame, in the face's texture
# space, carried onto the photo as a ratio image. Only its fine part (the log ratio minus its Gaussian blur of
# CREASE_SIGMA texels): creases and folds that move with the expression, not the driver's light or its head turning
# under it. Measured to help on the tuning and the held-out clips (docs/mouth.md: tools/eval_mouth.py --creases).
# Opt-in (reenact.render.interior.DriverMouths(..., creases=True)): on another person's photo the ratio also carries
# the driver's skin texture and the tracker's mis-registration, as grey blotches (docs/mouth.md).
CREASE_SIGMA = 3.0  # texels of TEX: about 2 % of the face's width
CREASE_CLIP = 0.4  # |log ratio| beyond this is a tracking slip or a specular flash, not a crease


def masked_blur(x: np.ndarray, valid: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of (H, W) `x` over its `valid` pixels only (the others neither count nor pull toward 0)."""
    w = cv2.GaussianBlur(valid.astype(np.float32), (0, 0), sigma)
    return cv2.GaussianBlur(np.where(valid, x, 0).astype(np.float32), (0, 0), sigma) / np.maximum(w, 1e-3)


def fine_ratio(tex: np.ndarray, ok: np.ndarray, ref: np.ndarray, ref_ok: np.ndarray,
               sigma: float = CREASE_SIGMA) -> np.ndarray:
    """(TEX, TEX) float32: the fine part of log luminance `tex` over `ref` (both (TEX, TEX) from
    TextureSpace.unwrap) on the skin texels valid in both; 0 elsewhere."""
    valid = ok & ref_ok & (TextureSpace.default().skin > 0.5)
    ratio = np.clip(tex - ref, -CREASE_CLIP, CREASE_CLIP)  # (TEX, TEX) a slip is bounded before it is blurred
    fine = ratio - masked_blur(ratio, valid, sigma)
    return np.where(valid, fine, 0.0).astype(np.float32)


@lru_cache(maxsize=2)
def _texel_matrix(space: TextureSpace) -> "scipy.sparse.csr_matrix":
    """(TEX*TEX, 468) sparse: each texel's barycentric weights on the mesh vertices (TextureSpace.positions as one
    product, ten times faster: it runs on every driver frame)."""
    from scipy.sparse import csr_matrix

    corners, bary = _texel_bary(space)
    n = space.size * space.size
    rows = np.repeat(np.arange(n), corners.shape[1])
    return csr_matrix((bary.ravel().astype(np.float32), (rows, corners.ravel())), shape=(n, 468))


def driver_texture(rgb: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Like TextureSpace.unwrap for a driver frame, at a cost that does not grow with its size: the colours are
    sampled into texture space first, then made log luminance ((TEX, TEX) each, and the validity)."""
    space = TextureSpace.default()
    pos = (_texel_matrix(space) @ np.asarray(points, np.float32)[:468, :2]).reshape(space.size, space.size, 2)
    tex = cv2.remap(rgb, pos[..., 0], pos[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    h, w = rgb.shape[:2]
    ok = space.mask & (pos[..., 0] >= 0) & (pos[..., 0] <= w - 1) & (pos[..., 1] >= 0) & (pos[..., 1] <= h - 1)
    return np.log(luminance(tex) + LOG_OFFSET), ok & space._front_facing(points)


@dataclass
class DriverCreases:
    """The driver's creases per frame: its first face's texture is kept as the reference (a few KB), each later
    frame is unwrapped when it is rendered (from the frame read again in step, like the driver's mouth)."""

    reference: tuple[np.ndarray, np.ndarray] | None = None  # (TEX, TEX) log luminance and validity

    def remember(self, rgb: np.ndarray, points: np.ndarray) -> None:
        """Keep the first face seen (`rgb` (H, W, 3), its (468+, 2) mesh) as the reference."""
        if self.reference is None:
            self.reference = driver_texture(rgb, points)

    def at(self, rgb: np.ndarray, points: np.ndarray) -> np.ndarray | None:
        """(TEX, TEX) the fine log ratio of a driver frame to the reference, or None without a reference."""
        if self.reference is None or not np.isfinite(points[:468, :2]).all():
            return None
        tex, ok = driver_texture(rgb, points)
        return fine_ratio(tex, ok, *self.reference)
