"""Mesh-driven image warp: target mesh -> dense backward flow -> `grid_sample` of the source photo.

Why this shape: a geometric warp keeps identity and skin detail for free (DESIGN §6). The flow is computed once per
source photo as a sparse barycentric interpolator from mesh vertices to a coarse pixel grid over a region of interest
(ROI) around the face; per frame only a sparse matmul, an upsample and one `grid_sample` run, batched, on any device.

Conventions: points are (x, y) pixels of the full source photo; `disp` is the forward displacement of each mesh
vertex (target - source) in pixels. The ROI border carries zero-displacement anchors, so the warp fades to the
untouched photo at the ROI edge (no seam) and everything outside the ROI is never touched.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy.spatial import Delaunay


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


class MeshWarper:
    """Warps one source photo's face region to any number of target meshes.

    points: (N, 2) source mesh vertices in photo pixels. stride: the flow is interpolated on a grid `stride` times
    coarser than the photo and upsampled bilinearly (the flow is smooth, the image is not).
    """

    def __init__(self, image: np.ndarray, points: np.ndarray, device: torch.device = torch.device("cpu"),
                 margin: float = 0.45, stride: int = 2) -> None:
        self.device = device
        self.roi = face_roi(points, image.shape[:2], margin)
        self.n_mesh = len(points)
        anchors = _border_anchors(self.roi)
        nodes = np.concatenate([points[:, :2], anchors]).astype(np.float64)  # (N + A, 2)
        tri = Delaunay(nodes)
        h, w = self.roi.size
        self.coarse = (int(np.ceil(h / stride)), int(np.ceil(w / stride)))
        gy, gx = np.meshgrid(np.linspace(0, h - 1, self.coarse[0]), np.linspace(0, w - 1, self.coarse[1]), indexing="ij")
        grid = np.stack([gx.ravel() + self.roi.x0, gy.ravel() + self.roi.y0], 1)  # (P, 2)
        simplex = tri.find_simplex(grid)
        simplex = np.where(simplex < 0, tri.find_simplex(grid, tol=1e-6), simplex)
        ok = simplex >= 0
        trans = tri.transform[simplex[ok]]  # (P', 3, 2)
        bary2 = np.einsum("pij,pj->pi", trans[:, :2], grid[ok] - trans[:, 2])
        bary = np.concatenate([bary2, 1 - bary2.sum(1, keepdims=True)], 1)  # (P', 3)
        rows = np.repeat(np.flatnonzero(ok), 3)
        cols = tri.simplices[simplex[ok]].ravel()
        keep = cols < self.n_mesh  # anchors have zero displacement: drop their columns
        index = torch.tensor(np.stack([rows[keep], cols[keep]]), dtype=torch.long)
        values = torch.tensor(bary.ravel()[keep], dtype=torch.float32)
        self.interp = torch.sparse_coo_tensor(index, values, (grid.shape[0], self.n_mesh), check_invariants=True)
        self.interp = self.interp.coalesce().to(device)
        roi_img = image[self.roi.y0:self.roi.y1, self.roi.x0:self.roi.x1]
        self.source = torch.from_numpy(np.ascontiguousarray(roi_img)).to(device).permute(2, 0, 1)[None].float()  # (1, 3, H, W)
        ys, xs = torch.meshgrid(torch.arange(h, device=device, dtype=torch.float32),
                                torch.arange(w, device=device, dtype=torch.float32), indexing="ij")
        self.base = torch.stack([xs, ys], -1)  # (H, W, 2) pixel coords inside the ROI
        self.coarse_base = torch.tensor(np.stack([gx, gy], -1), dtype=torch.float32, device=device)  # (h, w, 2)
        self.step = ((w - 1) / max(self.coarse[1] - 1, 1), (h - 1) / max(self.coarse[0] - 1, 1))  # coarse spacing px
        self.scale = torch.tensor([2.0 / max(w - 1, 1), 2.0 / max(h - 1, 1)], device=device)

    def displacement(self, disp: torch.Tensor) -> torch.Tensor:
        """(B, N, 2) vertex displacement -> (B, 2, h, w) forward displacement on the coarse grid, in ROI pixels."""
        b = disp.shape[0]
        flat = disp[:, : self.n_mesh].permute(1, 0, 2).reshape(self.n_mesh, b * 2).float()  # (N, B*2)
        dense = torch.sparse.mm(self.interp, flat)  # (P, B*2)
        return dense.reshape(*self.coarse, b, 2).permute(2, 3, 0, 1).contiguous()  # (B, 2, h, w)

    def sample_grid(self, disp: torch.Tensor, iterations: int = 4) -> torch.Tensor:
        """Backward map for `grid_sample`: target pixel x reads source pixel s with s + d(s) = x.

        Solved by Newton's method on the coarse grid (the flow is smooth) and upsampled once. Plain fixed-point
        iteration diverges where the face compresses (a closing eyelid folds the eye to a line, where the forward
        map's Jacobian is near singular); Newton with a clamped determinant converges there too.
        """
        d = self.displacement(disp)  # (B, 2, h, w) forward displacement, ROI px
        gx = torch.gradient(d, spacing=float(self.step[0]), dim=3)[0]  # (B, 2, h, w) d/dx of (dx, dy)
        gy = torch.gradient(d, spacing=float(self.step[1]), dim=2)[0]  # (B, 2, h, w) d/dy of (dx, dy)
        field = torch.cat([d, gx, gy], 1)  # (B, 6, h, w): dx, dy, dxx, dyx, dxy, dyy
        base = self.coarse_base.expand(d.shape[0], -1, -1, -1)  # (B, h, w, 2)
        src = base - d.permute(0, 2, 3, 1)
        for _ in range(iterations):
            f = F.grid_sample(field, src * self.scale - 1, mode="bilinear", padding_mode="border", align_corners=True)
            dx, dy, a_xx, a_yx, a_xy, a_yy = f.unbind(1)  # each (B, h, w)
            rx, ry = src[..., 0] + dx - base[..., 0], src[..., 1] + dy - base[..., 1]
            m00, m01, m10, m11 = 1 + a_xx, a_xy, a_yx, 1 + a_yy  # I + J
            det = (m00 * m11 - m01 * m10).clamp(min=0.05)
            step_x, step_y = (m11 * rx - m01 * ry) / det, (-m10 * rx + m00 * ry) / det
            src = src - torch.stack([step_x, step_y], -1)
        offset = (src - base).permute(0, 3, 1, 2)  # (B, 2, h, w)
        offset = F.interpolate(offset, size=self.roi.size, mode="bilinear", align_corners=True)
        return (self.base + offset.permute(0, 2, 3, 1)) * self.scale - 1  # (B, H, W, 2) in [-1, 1]

    def warp(self, disp: torch.Tensor) -> torch.Tensor:
        """(B, N, 2) displacement -> (B, 3, H, W) warped ROI, float in 0..255."""
        grid = self.sample_grid(disp)
        src = self.source.expand(disp.shape[0], -1, -1, -1)
        return F.grid_sample(src, grid, mode="bilinear", padding_mode="border", align_corners=True)

    def paste(self, image: np.ndarray, roi_frames: torch.Tensor) -> np.ndarray:
        """Put (B, 3, H, W) ROI frames back into copies of the full photo -> (B, H_img, W_img, 3) uint8."""
        roi = roi_frames.clamp(0, 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        out = np.repeat(image[None], len(roi), axis=0)
        out[:, self.roi.y0:self.roi.y1, self.roi.x0:self.roi.x1] = roi
        return out
