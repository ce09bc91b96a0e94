"""The trained estimator head: a face mesh in pixels -> every named channel (ARKit52, AU17, pose, gaze) per frame.

    points (T, 478, 3) px  --Procrustes on the rigid vertices-->  pose (T, 6) + canonical-frame mesh
    canonical mesh - canonical neutral  --MLP-->  ARKit52 (T, 52)
    ARKit52 --params.arkit_to_au--> AU17;  eyeLook* --linear--> gaze (degrees)

The network sees only the pose-normalised mesh, so pose comes from the similarity fit (yaw/pitch/roll in degrees,
tx/ty = the image position of the canonical origin in px, scale = px per canonical cm). AUs and gaze are exact linear
functions of the ARKit outputs, so all spaces agree with each other by construction. The network is trained on
synthetic meshes made by the rig (reenact/train/estimator.py); weights/estimator.safetensors carries its own
canonical mesh and rigid-vertex list, so it needs nothing else at run time.

Angles follow reenact.face.pose: yaw > 0 turns the face toward image right (the subject's left), pitch > 0 tilts
it up, roll > 0 is clockwise in the image. Gaze: per eye, yaw > 0 toward the subject's left, pitch > 0 down.
"""

from __future__ import annotations



import numpy as np
import torch

from reenact.errors import InputError
from reenact.params import ARKIT52, AU17, GAZE, POSE, arkit_to_au
from reenact.registry import register_model

CHANNELS: tuple[str, ...] = ARKIT52 + AU17 + POSE + GAZE
GAZE_YAW_DEG, GAZE_PITCH_DEG = 28.0, 22.0  # the eyeball turn of eyeLookIn/Out and eyeLookUp/Down at 1.0 in the rig


@register_model("estimator")
class EstimatorNet(torch.nn.Module):
    """MLP over the flattened canonical-frame mesh offsets (B, P*3) -> ARKit52 (B, 52), unbounded (clip later)."""

    def __init__(self, n_points: int = 478, hidden: tuple[int, ...] | list[int] = (512, 256), n_out: int = 52,
                 n_rigid: int = 0):
        super().__init__()
        self.register_buffer("neutral", torch.zeros(n_points, 3))  # (P, 3) canonical mesh, cm
        self.register_buffer("rigid", torch.zeros(n_rigid, dtype=torch.long))  # vertices no blendshape moves much
        # (n_out,) per-channel scale of the reading, fitted on real footage (reenact/train/estimator_calibrate.py):
        # trained on synthetic rig meshes, the network reads real faces short (a shut eye as eyeBlink ~0.7).
        self.register_buffer("out_scale", torch.ones(n_out))
        dims = [n_points * 3, *hidden]
        layers: list[torch.nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:]):
            layers += [torch.nn.Linear(a, b), torch.nn.GELU()]
        layers.append(torch.nn.Linear(dims[-1], n_out))
        self.mlp = torch.nn.Sequential(*layers)

    def forward(self, canon: torch.Tensor) -> torch.Tensor:
        """(B, P, 3) pose-normalised mesh (canonical frame) -> (B, 52)."""
        return self.mlp((canon - self.neutral).flatten(1))


def batch_procrustes(src: torch.Tensor, dst: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per item similarity s (B,), R (B, 3, 3), t (B, 3) with dst ≈ s * src @ R.T + t; src (N, 3), dst (B, N, 3)."""
    mu_s, mu_d = src.mean(0), dst.mean(1)  # (3,), (B, 3)
    a, b = src - mu_s, dst - mu_d[:, None]
    u, sig, vt = torch.linalg.svd(b.transpose(1, 2) @ a)  # (B, 3, 3)
    d = torch.ones_like(sig)
    d[:, 2] = torch.sign(torch.det(u @ vt))
    rot = u @ torch.diag_embed(d) @ vt
    s = (sig * d).sum(1) / (a ** 2).sum()
    t = mu_d - s[:, None] * (mu_s @ rot.transpose(1, 2))
    return s, rot, t


def normalize(points: torch.Tensor, neutral: torch.Tensor, rigid: torch.Tensor
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, P, 3) px -> (canonical-frame mesh (B, P, 3), pose (B, 6) as POSE). Fit on the rigid vertices only."""
    s, rot, t = batch_procrustes(neutral[rigid], points[:, rigid])
    canon = (points - t[:, None]) @ rot / s[:, None, None]
    pose = torch.cat([angles(rot), t[:, :2], s[:, None]], 1)
    return canon, pose


def angles(rot: torch.Tensor) -> torch.Tensor:
    """(B, 3, 3) rotations image <- canonical -> (B, 3) yaw, pitch, roll in degrees, as reenact.face.pose.angles.

    R = Ry(yaw) Rx(pitch) Rz(roll): yaw from the facing direction's x, pitch from its y, roll what remains.
    """
    n = -rot[:, :, 2]  # facing direction R @ (0, 0, -1)
    a = torch.atan2(n[:, 0], -n[:, 2])
    b = torch.atan2(-n[:, 1], torch.hypot(n[:, 0], n[:, 2]))
    ca, sa, cb, sb = a.cos(), a.sin(), b.cos(), b.sin()
    one, zero = torch.ones_like(a), torch.zeros_like(a)
    ry = torch.stack([ca, zero, -sa, zero, one, zero, sa, zero, ca], 1).view(-1, 3, 3)
    rx = torch.stack([one, zero, zero, zero, cb, sb, zero, -sb, cb], 1).view(-1, 3, 3)
    rz = rx.transpose(1, 2) @ ry.transpose(1, 2) @ rot
    return torch.rad2deg(torch.stack([a, b, torch.atan2(rz[:, 1, 0], rz[:, 0, 0])], 1))


def gaze_from_arkit(arkit: np.ndarray) -> np.ndarray:
    """(..., 52) -> (..., 4) degrees as GAZE: the eyeball turns the rig's eyeLook shapes encode."""
    g = lambda n: arkit[..., ARKIT52.index(n)]  # noqa: E731
    return np.stack([
        GAZE_YAW_DEG * (g("eyeLookOutLeft") - g("eyeLookInLeft")),
        GAZE_PITCH_DEG * (g("eyeLookDownLeft") - g("eyeLookUpLeft")),
        GAZE_YAW_DEG * (g("eyeLookInRight") - g("eyeLookOutRight")),
        GAZE_PITCH_DEG * (g("eyeLookDownRight") - g("eyeLookUpRight")),
    ], -1).astype(np.float32)


class Estimator:
    """Loads weights/estimator.safetensors; `estimate(points (T, 478|468, 3) px) -> (T, len(CHANNELS))`."""

    channels: tuple[str, ...] = CHANNELS

    def __init__(self, device: torch.device | str = "cpu", name: str = "estimator", batch: int = 256):
        from reenact.weights import load_model

        self.device = torch.device(device)
        self.net: EstimatorNet = load_model(name, self.device)  # type: ignore[assignment]
        self.batch = batch

    def estimate(self, points: np.ndarray) -> np.ndarray:
        """Frames whose points contain NaN (no face) come back as NaN rows (fill them with smooth.fill_gaps)."""
        pts = np.asarray(points, np.float32)
        if pts.ndim == 2:
            pts = pts[None]
        if pts.ndim != 3 or pts.shape[1] not in (468, 478) or pts.shape[2] != 3:
            raise InputError(f"The estimator needs (T, 478 or 468, 3) landmarks, got {pts.shape}.")
        out = np.full((len(pts), len(CHANNELS)), np.nan, np.float32)
        ok = np.flatnonzero(np.isfinite(pts).all(axis=(1, 2)))
        net = self.net
        for i in range(0, len(ok), self.batch):
            idx = ok[i:i + self.batch]
            x = torch.as_tensor(pts[idx], device=self.device)
            with torch.inference_mode():
                canon, pose = normalize(x, net.neutral[: x.shape[1]], net.rigid)
                if canon.shape[1] == 468:  # no iris points: the eyes look straight ahead
                    canon = torch.cat([canon, net.neutral[468:].expand(len(canon), -1, -1)], 1)
                arkit = (net(canon) * net.out_scale).clamp(0, 1).float().cpu().numpy()
            out[idx] = np.concatenate([arkit, arkit_to_au(arkit), pose.float().cpu().numpy(),
                                       gaze_from_arkit(arkit)], 1)
        return out


# A still photo's brow-raise reading is its anatomy, not its expression: neutral portraits of held-out people with
# high or groomed brows read browInnerUp 0.5-1.0 (audrey, kim), which left a brow raise no room in `edit` and in
# `drive` (shapes stop at 1). A clip's brows are read from their motion (reenact.clip_geometry); a photo's are taken
# to be at rest, so a raise always draws the full change asked for.
PHOTO_AT_REST = ("browInnerUp", "browOuterUpLeft", "browOuterUpRight")


def photo_reading(values: np.ndarray) -> np.ndarray:
    """(C,) estimates of a still photo -> the same with PHOTO_AT_REST at 0 and the AUs recomputed."""
    out = np.asarray(values, np.float32).copy()
    out[[ARKIT52.index(n) for n in PHOTO_AT_REST]] = 0.0
    n = len(ARKIT52)
    out[n:n + len(AU17)] = arkit_to_au(out[:n])
    return out
