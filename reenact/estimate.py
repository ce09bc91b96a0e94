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

from typing import Iterable

import numpy as np
import torch

from reenact.errors import InputError
from reenact.face.landmarks import LID_PAIRS
from reenact.params import ARKIT52, AU17, GAZE, POSE, Track, arkit_to_au
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


# In a clip, eyeBlink is read from the tracked lids, not the network. On the tuning clips (cap12, cap13, WolfgangLanger;
# judged by MediaPipe's refined mesh) the network's eyeBlink correlated 0.28-0.73 with the reference lids' closure and
# read > 0.3 on a third of open-eyed frames (more on a face looking down), where the lids' own closure correlated
# 0.83-0.97. closure = 1 - EAR / the clip's open-eye EAR; it is ~0.2 at most on open eyes and 0.65-0.75 on shut ones.
OPEN_PERCENTILE = 90  # the clip's open-eye aspect ratio: most frames of a talking face are open-eyed
CLOSURE_OPEN, CLOSURE_SHUT = 0.2, 0.7  # closure read as eyeBlink 0 and 1
MIN_CLIP_FRAMES = 12  # fewer frames with a face than this: no reliable open-eye reference, the network's reading stays
CORNERS = ((33, 133), (263, 362))  # per eye in LID_PAIRS' order (image-left eye = the subject's right)


def eye_aspect_ratios(points: np.ndarray) -> np.ndarray:
    """(T, 478, 3) px -> (T, 2) eye aspect ratio (mean lid gap / corner distance) per eye, in (eyeBlinkLeft,
    eyeBlinkRight) order; NaN where a frame has no face."""
    ears = []
    for (a, b), pairs in zip(CORNERS, LID_PAIRS):
        width = np.linalg.norm(points[:, a, :2] - points[:, b, :2], axis=-1)
        gap = np.mean([np.linalg.norm(points[:, u, :2] - points[:, v, :2], axis=-1) for u, v in pairs], 0)
        ears.append(gap / np.maximum(width, 1e-6))
    return np.stack(ears[::-1], 1)  # the subject's left eye is the image-right one


# Gaze, like blinks, is read from the tracked irises in a clip: the iris centre's offset from the eye corners' midpoint
# (both eyes averaged: eyes turn together), against the clip's median, in eye widths. On the tuning clips this
# correlated 0.65-0.95 (horizontal) and 0.46-0.72 (vertical) with MediaPipe's refined irises at a slope of ~1, the
# network's eyeLook reading 0.07-0.45. The rig's eyeLook shapes at 1 move the iris by these eye widths:
IRIS_PER_LOOK = (0.205, 0.164)  # (eyeLookIn/Out, eyeLookUp/Down), measured on weights/rig_arkit52
IRISES = ((468, (33, 133)), (473, (362, 263)))  # iris centre and its eye's corners, image-left eye first


def iris_offsets(points: np.ndarray) -> np.ndarray:
    """(T, 478, 3) px -> (T, 2) the irises' mean offset from their eye corners' midpoint, in eye widths, along the
    corner axis (+: image right, the subject's left) and across it (+: down); NaN where a frame has no face."""
    out = []
    for iris, (a, b) in IRISES:
        pa, pb = points[:, a, :2], points[:, b, :2]
        width = np.linalg.norm(pb - pa, axis=-1, keepdims=True)
        axis = (pb - pa) / np.maximum(width, 1e-6)
        across = np.stack([-axis[:, 1], axis[:, 0]], 1)
        v = points[:, iris, :2] - (pa + pb) / 2
        out.append(np.stack([(v * axis).sum(1), (v * across).sum(1)], 1) / np.maximum(width, 1e-6))
    return np.mean(out, 0)


def gaze_from_irises(values: np.ndarray, offsets: np.ndarray, ears: np.ndarray) -> np.ndarray:
    """(T, C) estimates, (T, 2) iris offsets and (T, 2) eye aspect ratios -> the estimates with eyeLook* (and the
    gaze channels) from the irises' motion about the clip's median. Frames with the lids more than half shut keep the
    last open frame's gaze (a covered iris is not tracked). Clips with fewer than MIN_CLIP_FRAMES faces keep the
    network's reading."""
    ear = ears.mean(1)
    ok = np.isfinite(offsets).all(1) & np.isfinite(values).all(1) & np.isfinite(ear)
    if ok.sum() < MIN_CLIP_FRAMES:
        return values
    seen = ok & (ear > 0.5 * np.percentile(ear[ok], OPEN_PERCENTILE))
    if seen.sum() < MIN_CLIP_FRAMES:
        return values
    idx = np.flatnonzero(seen)
    held = idx[np.clip(np.searchsorted(idx, np.arange(len(values)), side="right") - 1, 0, len(idx) - 1)]
    look = (offsets[held] - np.median(offsets[seen], 0)) / np.array(IRIS_PER_LOOK)  # (T, 2) eyeLook units
    yaw, down = np.clip(look[:, 0], -1, 1), np.clip(look[:, 1], -1, 1)
    out = values.copy()
    toward_left, toward_right = np.maximum(yaw, 0), np.maximum(-yaw, 0)  # the subject's left is image right
    for name, v in (("eyeLookOutLeft", toward_left), ("eyeLookInLeft", toward_right),
                    ("eyeLookInRight", toward_left), ("eyeLookOutRight", toward_right),
                    ("eyeLookDownLeft", np.maximum(down, 0)), ("eyeLookDownRight", np.maximum(down, 0)),
                    ("eyeLookUpLeft", np.maximum(-down, 0)), ("eyeLookUpRight", np.maximum(-down, 0))):
        out[ok, ARKIT52.index(name)] = v[ok]
    n = len(ARKIT52)
    out[ok, len(CHANNELS) - len(GAZE):] = gaze_from_arkit(out[ok, :n])
    return out


def blinks_from_lids(values: np.ndarray, ears: np.ndarray) -> np.ndarray:
    """(T, C) estimates in CHANNELS order and the same frames' (T, 2) eye aspect ratios -> the estimates with eyeBlink
    read from the lids' closure (CLOSURE_OPEN -> 0, CLOSURE_SHUT -> 1) and the AUs recomputed. Clips with fewer than
    MIN_CLIP_FRAMES faces keep the network's reading."""
    ok = np.isfinite(ears).all(1) & np.isfinite(values).all(1)
    if ok.sum() < MIN_CLIP_FRAMES:
        return values
    closure = 1.0 - ears[ok] / np.maximum(np.percentile(ears[ok], OPEN_PERCENTILE, axis=0), 1e-6)  # (T_ok, 2)
    out = values.copy()
    blink = [ARKIT52.index("eyeBlinkLeft"), ARKIT52.index("eyeBlinkRight")]
    out[np.ix_(ok, blink)] = np.clip((closure - CLOSURE_OPEN) / (CLOSURE_SHUT - CLOSURE_OPEN), 0.0, 1.0)
    n = len(ARKIT52)
    out[ok, n:n + len(AU17)] = arkit_to_au(out[ok, :n])
    return out


def eye_geometry(points: np.ndarray) -> np.ndarray:
    """(T, 478, 3) px -> (T, 4): the eye aspect ratios (eyeBlinkLeft, eyeBlinkRight order) and the irises' offset
    (x, y) per frame: what a clip's blinks and gaze are read from (`eyes_from_geometry`). Cheap; computed per chunk."""
    return np.concatenate([eye_aspect_ratios(points), iris_offsets(points)], 1)


def eyes_from_geometry(values: np.ndarray, geometry: np.ndarray) -> np.ndarray:
    """A whole clip's (T, C) estimates with blinks and gaze read from its (T, 4) `eye_geometry`."""
    return gaze_from_irises(blinks_from_lids(values, geometry[:, :2]), geometry[:, 2:], geometry[:, :2])


def extract_track(landmarks: Iterable[np.ndarray | None], fps: float, estimator: Estimator | None = None,
                  smooth: str = "offline", calibrate: bool = True, meta: dict | None = None) -> Track:
    """Per-frame landmarks ((478|468, 3) px, or None when no face) -> a smoothed, validated Track.

    smooth: `offline` (zero-phase, default), `online` (One Euro) or `none` (raw). Missing frames are interpolated
    and counted in `track.meta["missing_frames"]`. Raises NoFaceError when no frame has a face.
    """
    from reenact.smooth import smooth_track

    estimator = estimator or Estimator()
    frames = [np.full((478, 3), np.nan, np.float32) if p is None else np.asarray(p, np.float32)[:478]
              for p in landmarks]
    if not frames:
        raise InputError("No frames to extract parameters from; the video is empty.")
    n = max(len(f) for f in frames)
    frames = [f if len(f) == n else np.full((n, 3), np.nan, np.float32) for f in frames]
    values = np.concatenate([estimator.estimate(np.stack(frames[i:i + 1024])) for i in range(0, len(frames), 1024)])
    values = eyes_from_geometry(values, eye_geometry(np.stack(frames)))
    values, missing = smooth_track(values, CHANNELS, fps, mode=smooth, calibrate=calibrate)
    info = {"fps": fps, "frames": len(frames), "missing_frames": int(missing.sum()), "smoothing": smooth,
            "calibrated": calibrate, **(meta or {})}
    return Track(np.arange(len(values)) / fps, values, list(CHANNELS), info).validate("extracted track")
