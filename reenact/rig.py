"""The linear expression rig: ARKit52 weights -> vertex displacements of the canonical 478-point face mesh.

    mesh(params) = neutral + sum_k params[k] * basis[k]          basis: (52, 478, 3), canonical units (cm)

The basis is authored from anatomy by tools/build_rig.py (jaw rotation about the temporomandibular hinge, eyelid
closure onto the lower-lid line, lip-corner pulls, ...; smooth falloff by harmonic/biharmonic interpolation over the
mesh) and shipped as weights/rig_arkit52.safetensors. Points 468..477 are MediaPipe's iris points: they follow the
eyeLook* shapes (the eyeball turns) and nothing else (a blink covers the iris, it does not move it).

`Rig.scaled_to(face_points)` re-expresses the basis in a person's frame (pixels, their head pose and size, from a
similarity Procrustes fit of the canonical mesh) and rescales the eyelid shapes to that person's eye opening, so a
blink closes their eyes exactly.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from reenact.errors import InputError
from reenact.face.landmarks import LID_PAIRS as EYE_LID_PAIRS
from reenact.params import ARKIT52
from reenact.registry import register_model


@register_model("rig")
class Rig(torch.nn.Module):
    """Linear blendshape rig. `deltas(params (B, 52)) -> (B, P, 3)`; P = 478 (or 468 when built that way)."""

    def __init__(self, n_points: int = 478, n_shapes: int = 52):
        super().__init__()
        self.register_buffer("basis", torch.zeros(n_shapes, n_points, 3))  # (K, P, 3)
        self.register_buffer("neutral", torch.zeros(n_points, 3))  # (P, 3) the face the basis applies to
        # (K,) how much further than the basis a *rendered* face moves per unit weight. The basis is what a tracked
        # face shows (the estimator is trained on it); a face tracker reads a warped photo's motion short of the
        # motion the warp made (brows ~1/3, lids and smiles ~1/2), so rendering moves by basis * render_gain and the
        # tracked output then shows the basis motion. Fitted by tools/build_rig.py on tuning photos; 1 = none.
        self.register_buffer("render_gain", torch.ones(n_shapes))
        # (3,) the same for a head turn (yaw, pitch, roll): a warped photo's yaw reads back at ~0.7 of the turn made.
        self.register_buffer("pose_gain", torch.ones(3))

    @property
    def n_points(self) -> int:
        return int(self.basis.shape[1])

    def deltas(self, params: torch.Tensor, n_points: int | None = None) -> torch.Tensor:
        """(B, 52) weights -> (B, P, 3) displacements; `n_points=468` drops the iris points."""
        if params.shape[-1] != self.basis.shape[0]:
            raise InputError(f"The rig takes {self.basis.shape[0]} ARKit weights per frame, got {params.shape[-1]}.")
        basis = self.basis[:, : (n_points or self.n_points)]
        return torch.einsum("bk,kpc->bpc", params.to(basis.dtype), basis)

    def forward(self, params: torch.Tensor, n_points: int | None = None) -> torch.Tensor:
        """(B, 52) -> (B, P, 3) posed meshes: neutral + deltas."""
        return self.neutral[: (n_points or self.n_points)] + self.deltas(params, n_points)

    def scaled_to(self, face_points: np.ndarray | torch.Tensor) -> "Rig":
        """A rig in a person's frame: neutral = their points (468 or 478, 3), basis rotated and scaled to match."""
        pts = torch.as_tensor(np.asarray(face_points, np.float32) if not torch.is_tensor(face_points)
                              else face_points, dtype=torch.float32, device=self.basis.device)
        if pts.ndim != 2 or pts.shape[0] not in (468, 478) or pts.shape[1] not in (2, 3):
            raise InputError(f"scaled_to needs (468|478, 3) face points, got {tuple(pts.shape)}.")
        if pts.shape[1] == 2:
            pts = torch.cat([pts, torch.zeros_like(pts[:, :1])], 1)  # flat z: depth is unknown
        s, rot, t = procrustes(self.neutral[:468], pts[:468])
        out = Rig(self.n_points, self.basis.shape[0]).to(self.basis.device)
        basis = s * self.basis @ rot.T  # (K, P, 3) displacements rotate and scale, they do not translate
        canon = (pts[:468] - t) @ rot / s  # person's points in the canonical frame
        for side in ("Left", "Right"):
            ratio = eye_opening(canon, side) / eye_opening(self.neutral[:468], side)
            ratio = float(np.clip(ratio, 0.2, 2.0))
            for name in (f"eyeBlink{side}", f"eyeSquint{side}"):
                basis[ARKIT52.index(name)] *= ratio
        out.basis.copy_(basis)
        out.render_gain.copy_(self.render_gain)
        out.pose_gain.copy_(self.pose_gain)
        neutral = self.neutral.clone() * s @ rot.T + t  # iris points when the person has only 468
        neutral[: pts.shape[0]] = pts
        out.neutral.copy_(neutral)
        return out


# Upper/lower lid vertex pairs (subject's left / right eye), for eye_opening.
LID_PAIRS = {"Left": EYE_LID_PAIRS[1], "Right": EYE_LID_PAIRS[0]}


def eye_opening(points: torch.Tensor, side: str) -> float:
    """Mean vertical lid gap of one eye (subject's `Left`/`Right`), for points in canonical orientation (y down)."""
    up = points[[a for a, _ in LID_PAIRS[side]], 1]
    lo = points[[b for _, b in LID_PAIRS[side]], 1]
    return float((lo - up).clamp(min=0).mean())


def procrustes(src: torch.Tensor, dst: torch.Tensor) -> tuple[float, torch.Tensor, torch.Tensor]:
    """Similarity (s, R, t) minimising |s * src @ R.T + t - dst|^2 over (N, 3) points (Umeyama, no reflection)."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    a, b = src - mu_s, dst - mu_d
    u, sig, vt = torch.linalg.svd(b.T @ a)  # (3, 3)
    d = torch.ones(3, dtype=src.dtype, device=src.device)
    d[2] = torch.sign(torch.det(u @ vt))
    rot = u @ torch.diag(d) @ vt
    s = float((sig * d).sum() / (a ** 2).sum())
    return s, rot, mu_d - s * mu_s @ rot.T


@register_model("eye_area")
class EyeArea(torch.nn.Module):
    """The eye area's motion modes: `points` (P,) mesh vertices (both eyes' lids, the skin round them, the brows)
    and `basis` (K, P, 2) orthonormal canonical x, y motions of them (cm), the principal motions of real footage
    about each clip's median (tools/build_eye_area.py). What the rig's blend shapes do not draw: a lid that follows
    the iris, the skin between lid and brow, a brow's own shape. `coefficients` reads a clip's motion into K numbers
    a frame (the track's EYE_AREA channels); `motion` draws them again."""

    def __init__(self, n_points: int = 142, n_modes: int = 16) -> None:
        super().__init__()
        self.register_buffer("points", torch.zeros(n_points, dtype=torch.long))  # (P,)
        self.register_buffer("basis", torch.zeros(n_modes, n_points, 2))  # (K, P, 2) cm

    def coefficients(self, moved: np.ndarray) -> np.ndarray:
        """(T, P, 2) canonical motion of `points` (cm) -> (T, K) its coordinates along the modes."""
        flat = self.basis.flatten(1).double().cpu().numpy()  # (K, 2P)
        return np.asarray(moved, np.float64).reshape(len(moved), -1) @ flat.T

    def motion(self, coefficients: torch.Tensor) -> torch.Tensor:
        """(B, K) -> (B, P, 2) canonical motion of `points` (cm)."""
        return mode_motion(coefficients, self.basis)


def mode_motion(coefficients: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """(B, K) coefficients along (K, P, C) modes -> (B, P, C) their motion: the eye area's in the canonical frame
    (EyeArea.motion, and reenact.render.renderer.AreaCarrier, which limits it sideways there before it maps it into
    the photo's pixels)."""
    return torch.einsum("bk,kpc->bpc", coefficients.to(basis.dtype), basis)


def load_eye_area(device: torch.device | str = "cpu") -> EyeArea:
    """The shipped eye-area modes (weights/eye_area.safetensors), loaded once per process and device: the clip
    geometry reads a track's coefficients with them and the renderer draws them. Read-only."""
    return _load_eye_area(str(torch.device(device)))


@lru_cache(maxsize=2)
def _load_eye_area(device: str) -> EyeArea:
    from reenact.weights import load_typed

    return load_typed("eye_area", EyeArea, device)


def load_rig(device: torch.device | str = "cpu") -> Rig:
    """The shipped rig (weights/rig_arkit52.safetensors)."""
    from reenact.weights import load_model

    return load_model("rig_arkit52", device)  # type: ignore[return-value]


def render_mesh(points: np.ndarray, triangles: np.ndarray, size: int = 256, margin: float = 0.08,
                bounds: tuple[np.ndarray, float] | None = None, wire: bool = True,
                mouth: np.ndarray | None = None, lips: np.ndarray | None = None,
                brows: np.ndarray | None = None) -> np.ndarray:
    """A shaded front view of a mesh (y down) as an (size, size, 3) uint8 BGR image, for eyeballing shapes.

    bounds: (centre (2,), half-extent) to draw several meshes at the same scale; default fits this mesh.
    mouth: the inner-lip loop (ordered indices); the mouth opening inside it is drawn dark.
    lips / brows: vertex indices; triangles made only of them are drawn red / dark brown.
    """
    import cv2

    p = np.asarray(points, np.float64)
    if bounds is None:
        centre, half = (p[:468, :2].max(0) + p[:468, :2].min(0)) / 2, (np.ptp(p[:468, :2], 0).max() / 2)
    else:
        centre, half = bounds
    scale = size * (1 - 2 * margin) / (2 * half)
    xy = (p[:, :2] - centre) * scale + size / 2
    img = np.full((size, size, 3), 255, np.uint8)
    if len(p) >= 478:  # irises first: the eye openings are holes in the mesh, so the lids cover them naturally
        for c in (468, 473):
            r = np.linalg.norm(xy[c + 1] - xy[c + 3]) / 2
            cv2.circle(img, tuple(int(v) for v in np.round(xy[c] * 16)), int(r * 16), (60, 90, 60), -1, cv2.LINE_AA, 4)
            cv2.circle(img, tuple(int(v) for v in np.round(xy[c] * 16)), int(r * 6), (10, 10, 10), -1, cv2.LINE_AA, 4)
    tri = p[triangles]  # (F, 3, 3)
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normal /= np.linalg.norm(normal, axis=1, keepdims=True) + 1e-9
    light = np.clip(-normal @ np.array([0.3, -0.3, -0.9]) / np.linalg.norm([0.3, -0.3, -0.9]), 0, 1)
    if mouth is not None:  # the mouth opening is a hole in the mesh: paint the inside of the mouth behind it
        cv2.fillPoly(img, [np.round(xy[mouth] * 16).astype(np.int32)], (40, 30, 90), cv2.LINE_AA, 4)
    red = np.zeros(len(triangles), bool) if lips is None else np.isin(triangles, lips).all(1)
    brown = np.zeros(len(triangles), bool) if brows is None else np.isin(triangles, brows).all(1)
    for f in np.argsort(-tri[:, :, 2].mean(1)):  # far to near
        poly = np.round(xy[triangles[f], :2] * 16).astype(np.int32)
        if normal[f, 2] > 0.05:  # back-facing
            continue
        shade = 120 + 125 * light[f]
        color = (shade * 0.55, shade * 0.55, shade) if red[f] else (shade * 0.2, shade * 0.3, shade * 0.4) if \
            brown[f] else (shade * 0.85, shade * 0.92, shade)
        cv2.fillConvexPoly(img, poly, color, cv2.LINE_AA, 4)
        if wire:
            cv2.polylines(img, [poly], True, tuple(0.8 * v for v in color), 1, cv2.LINE_AA, 4)
    return img
