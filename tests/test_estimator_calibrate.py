"""The estimator's real-footage calibration (reenact/train/estimator_calibrate.py) recovers a known under-reading."""

import numpy as np
import torch

from reenact.params import ARKIT52
from reenact.rig import load_rig
from reenact.train.estimator import rigid_vertices
from reenact.train.estimator_calibrate import BLINK_APEX, fit_scale


class HalfReader(torch.nn.Module):
    """A stand-in estimator that knows each frame's true weights and reads every channel at `factor` of them."""

    def __init__(self, rig, truth: torch.Tensor, factor: float) -> None:
        super().__init__()
        self.neutral, self.rigid = rig.neutral, rigid_vertices(rig.basis)
        self.truth, self.factor = truth, factor

    def forward(self, canon: torch.Tensor) -> torch.Tensor:
        return self.truth[: len(canon)] * self.factor


def test_a_channel_read_at_half_gets_scale_two_and_shut_eyes_read_the_apex():
    rig = load_rig()
    g = torch.Generator().manual_seed(0)
    t = 300
    truth = torch.zeros(t, len(ARKIT52))
    brow, smile = ARKIT52.index("browInnerUp"), ARKIT52.index("mouthSmileLeft")
    truth[:, brow] = torch.rand(t, generator=g)
    truth[:, smile] = torch.rand(t, generator=g)
    blink = [ARKIT52.index("eyeBlinkLeft"), ARKIT52.index("eyeBlinkRight")]
    truth[::10, blink] = 1.0  # every tenth frame the eyes shut
    meshes = (rig.neutral + torch.einsum("tk,kpc->tpc", truth, rig.basis)) * 40 + 300  # (T, 478, 3) "px"
    scale, info = fit_scale(HalfReader(rig, truth, 0.5), rig.basis, {"clip": meshes.numpy()})
    assert abs(float(scale[brow]) - 2.0) < 0.25 and abs(float(scale[smile]) - 2.0) < 0.25
    assert abs(float(scale[blink[0]]) - BLINK_APEX / 0.5) < 0.05 and info["shut_eye_reading"] == 0.5
    assert float(scale[ARKIT52.index("jawOpen")]) == 1.0  # no motion on the clip: nothing to fit, left alone
