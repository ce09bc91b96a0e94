"""Real tracked frames for the estimator: rig fits as their labels, and the measurements on a held-out real video.

Real frames have no labels, so they get them by analysis-by-synthesis: each pose-normalised mesh (the same
Procrustes normalisation as run time) minus the canonical neutral is fitted by the rig,

    w* = argmin_{w in [0, 1]^52}  1/2 |B w - x|^2 + l1 * sum(w) + l2/2 * |w|^2          x = canon - neutral (cm)

(bounded least squares, accelerated projected gradient, all frames at once). The person's own face shape is left
in x, exactly as the estimator sees it: the training identities are orthogonal to the rig's span (Identities
projects it out), and a component orthogonal to span(B) does not change w*, so the fit needs no identity estimate
and its labels are what the network could infer from one frame. A resting face that lies partly inside the span
(a mouth that rests a little open) reads as that expression here and in the network alike; `smooth_track`'s neutral
calibration removes such static offsets at run time.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from reenact.clip_geometry import eye_aspect_ratios
from reenact.estimate import normalize
from reenact.params import ARKIT52
from reenact.train.sampling import random_rotation, uniform

HELD_OUT = ("franck_mp4",)  # the unseen real-video test: never a training frame, never a rig refinement frame


def fit_rig(offsets: torch.Tensor, basis: torch.Tensor, l1: float = 0.03, l2: float = 0.1,
            iters: int = 300) -> torch.Tensor:
    """(N, P, 3) canonical offsets -> (N, K) rig weights in [0, 1] (bounded least squares with an L1/L2 prior)."""
    bf = basis[:, : offsets.shape[1]].flatten(1).double()  # (K, P*3)
    gram = bf @ bf.T + l2 * torch.eye(len(bf), dtype=bf.dtype)  # (K, K)
    rhs = offsets.flatten(1).double() @ bf.T  # (N, K)
    step = 1.0 / float(torch.linalg.eigvalsh(gram).max())
    w = torch.zeros_like(rhs)
    y, t = w.clone(), 1.0
    for _ in range(iters):  # FISTA with projection onto the box
        w_next = (y - step * (y @ gram - rhs + l1)).clamp(0, 1)
        t_next = (1 + math.sqrt(1 + 4 * t * t)) / 2
        y = w_next + (t - 1) / t_next * (w_next - w)
        w, t = w_next, t_next
    return w.float()


def canonical(points: np.ndarray, neutral: torch.Tensor, rigid: torch.Tensor) -> torch.Tensor:
    """(T, 478, 3) px, frames with NaN dropped -> (T', 478, 3) canonical-frame meshes (cm)."""
    pts = torch.as_tensor(points[np.isfinite(points).all(axis=(1, 2))], dtype=torch.float32)
    return normalize(pts, neutral, rigid)[0] if len(pts) else torch.zeros(0, *neutral.shape)


class RealFrames:
    """Every frame of the meshes file except the held-out clips, in the canonical frame, with rig-fit labels."""

    def __init__(self, meshes: Path, neutral: torch.Tensor, rigid: torch.Tensor, basis: torch.Tensor,
                 l1: float = 0.03, l2: float = 0.1, exclude: tuple[str, ...] = HELD_OUT):
        self.canon = torch.zeros(0, *neutral.shape)
        if meshes.exists():
            data = np.load(meshes)
            parts = [canonical(data[k], neutral, rigid) for k in data.files if k not in exclude]
            parts = [p for p in parts if p.shape[1:] == neutral.shape]
            if parts:
                self.canon = torch.cat(parts)  # (N, 478, 3)
        self.labels = fit_rig(self.canon - neutral, basis, l1, l2) if len(self.canon) else torch.zeros(0, 52)

    def __len__(self) -> int:
        return len(self.canon)

    def sample(self, n: int, g: torch.Generator, cfg) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(points px (n, 478, 3) re-posed like the synthetic ones, labels (n, 52), canonical meshes (n, 478, 3))."""
        idx = torch.randint(len(self.canon), (n,), generator=g)
        canon = self.canon[idx]
        scale = torch.exp(uniform(n, math.log(4.0), math.log(40.0), g))
        shift = uniform((n, 3), 0.0, 1000.0, g) * torch.tensor([1.0, 1.0, 0.0])
        pts = scale[:, None, None] * canon @ random_rotation(n, g, cfg).transpose(1, 2) + shift[:, None]
        sigma = uniform(n, 0.0, cfg.noise_px[1] / 2, g) * 14.0 * scale  # real frames carry their own noise
        return pts + torch.randn(pts.shape, generator=g) * sigma[:, None, None], self.labels[idx], canon


def mesh_residual(arkit: torch.Tensor, canon: torch.Tensor, neutral: torch.Tensor, basis: torch.Tensor) -> float:
    """Mean vertex distance between a clip's meshes and rig(estimate), in % of the eye distance.

    The person's face shape is the median residual over the clip (constant per clip, so no expression can explain
    it); what is left is what the estimated weights fail to explain frame by frame.
    """
    res = canon - neutral - torch.einsum("nk,kpc->npc", arkit.to(basis.dtype), basis[:, : canon.shape[1]])
    res = res - res.median(0).values
    eye = float((neutral[33] - neutral[263]).norm())
    return float(res.norm(dim=-1).mean()) / eye * 100


def real_video_agreement(meshes: Path, key: str = "franck_mp4", fps: float = 25.0, estimator=None,
                         rig=None) -> dict[str, float]:
    """Agreement of an estimator (default: the shipped one) with direct geometric measurements on a real video.

    Eye aspect ratio (Soukupová & Čech 2016) against the blink channels, and the inner-lip gap (normalised by the
    eye distance) against jawOpen and AU25+AU26: Pearson correlations, raw and smoothed tracks. Plus the mesh
    residual of rig(raw estimate) (`mesh_residual`), and for reference that of no expression and of the rig fit.
    """
    from reenact.estimate import CHANNELS, Estimator
    from reenact.rig import load_rig
    from reenact.smooth import smooth_track

    estimator = estimator or Estimator()
    rig = rig or load_rig()
    pts = np.load(meshes)[key]
    raw = estimator.estimate(pts)
    smooth, _ = smooth_track(raw, CHANNELS, fps)
    ok = np.isfinite(pts).all(axis=(1, 2))
    p = pts[ok]

    ear_mean = eye_aspect_ratios(p).mean(1)  # both eyes, as a clip's blinks are read
    lip_gap = np.linalg.norm(p[:, 13, :2] - p[:, 14, :2], axis=1) / np.linalg.norm(p[:, 33, :2] - p[:, 263, :2], axis=1)
    out = {}
    for label, vals in (("raw", raw[ok]), ("smoothed", smooth[ok])):
        c = {n: vals[:, CHANNELS.index(n)] for n in CHANNELS}
        blink = (c["eyeBlinkLeft"] + c["eyeBlinkRight"]) / 2
        out[f"corr(eyeBlink, -EAR) {label}"] = float(np.corrcoef(blink, -ear_mean)[0, 1])
        out[f"corr(AU45, -EAR) {label}"] = float(np.corrcoef(c["AU45"], -ear_mean)[0, 1])
        out[f"corr(jawOpen, lip gap) {label}"] = float(np.corrcoef(c["jawOpen"], lip_gap)[0, 1])
        out[f"corr(AU25+AU26, lip gap) {label}"] = float(np.corrcoef(c["AU25"] + c["AU26"], lip_gap)[0, 1])
    net = estimator.net
    canon = canonical(pts, net.neutral, net.rigid)
    arkit = torch.as_tensor(raw[ok][:, : len(ARKIT52)])
    out["mesh residual % eye dist"] = mesh_residual(arkit, canon, rig.neutral, rig.basis)
    out["mesh residual, no expression"] = mesh_residual(torch.zeros_like(arkit), canon, rig.neutral, rig.basis)
    fit = fit_rig(canon - rig.neutral, rig.basis)
    out["mesh residual, rig fit"] = mesh_residual(fit, canon, rig.neutral, rig.basis)
    out["frames"] = int(ok.sum())
    return out
