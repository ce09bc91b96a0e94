"""Random head rotations and uniform draws for the estimator's training batches: shared by the synthetic faces
(reenact.train.estimator) and the real frames (reenact.train.estimator_real), below both.
"""

from __future__ import annotations

from typing import Protocol

import torch


class RotationLimits(Protocol):  # reenact.train.estimator.TrainConfig
    pitch_deg: float
    yaw_deg: float
    roll_deg: float


def random_rotation(n: int, g: torch.Generator, cfg: RotationLimits) -> torch.Tensor:
    """(n, 3, 3) rotations with pitch, yaw and roll uniform within +-cfg's limits (degrees)."""
    ang = (torch.rand(n, 3, generator=g) * 2 - 1) * torch.tensor([cfg.pitch_deg, cfg.yaw_deg, cfg.roll_deg])
    a, b, c = torch.deg2rad(ang).unbind(1)
    one, zero = torch.ones(n), torch.zeros(n)
    rx = torch.stack([one, zero, zero, zero, a.cos(), -a.sin(), zero, a.sin(), a.cos()], 1).view(n, 3, 3)
    ry = torch.stack([b.cos(), zero, b.sin(), zero, one, zero, -b.sin(), zero, b.cos()], 1).view(n, 3, 3)
    rz = torch.stack([c.cos(), -c.sin(), zero, c.sin(), c.cos(), zero, zero, zero, one], 1).view(n, 3, 3)
    return rz @ ry @ rx


def uniform(shape: int | tuple[int, ...], lo: float, hi: float, g: torch.Generator) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(shape, generator=g)
