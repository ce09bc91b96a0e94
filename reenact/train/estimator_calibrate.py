"""Calibrate the estimator's reading on real tracked footage, so that rig(estimate) moves as far as the real face.

    .venv/bin/python -m reenact.train.estimator_calibrate --meshes .cache/rig/tracked.npz [--estimator DIR] [--out DIR]

The network is trained on synthetic rig meshes (reenact/train/estimator.py) and reads real faces short: on real
video a shut eye reads eyeBlink ~0.7, and the rig's change for the estimated change was 0.4x the tracked change of
the brows, 0.7x of the lids, 0.8x of the mouth. One scale per channel, s (52,), multiplies the network's output
(EstimatorNet.out_scale) and is fitted in two ways:

* eyeBlink from apex frames: shut eyes (eye aspect ratio below SHUT of the clip's median) read BLINK_APEX;
* the other broad motions (CALIBRATED) by least squares, the rig reproducing the tracked change of each frame from
  its clip's median:

      min_s  sum_t | sum_k s_k (w_tk - med_k) B_k - (x_t - med_x) |^2 + ridge * |s - 1|^2,       s in [1, MAX_SCALE]

  with x_t the tracked mesh in the canonical frame (the estimator's own normalisation) and B the rig basis.

The meshes are our own tracker's (the estimator sees those at run time), of the tuning clips only: the evaluation
clips (tools/eval_fidelity.py) are never used. Make them with `collect_meshes` (reenact/train/estimator.py).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from reenact.clip_geometry import eye_aspect_ratios
from reenact.estimate import EstimatorNet, normalize
from reenact.params import ARKIT52, BLINKS

SHUT = 0.3  # eye aspect ratio below this share of the clip's median: a shut eye
BLINK_APEX = 1.0  # what a shut eye should read
MAX_SCALE = 3.0
MIN_SPREAD = 0.02  # channels whose reading barely changes on the clips keep scale 1 (nothing to fit them on)
# Channels the least-squares fit may scale: the broad motions (lids, brows, smile, jaw and lip opening). Gaze is
# read from the irises, which the fit leaves out, and the lip-shaping channels act against each other, so a joint
# fit trades one for another (mouthShrugLower came out at 2.3): they keep the network's reading.
CALIBRATED = [ARKIT52.index(n) for n in ARKIT52 if n.startswith(("eyeBlink", "eyeWide", "eyeSquint", "brow", "jawOpen",
                                                                    "mouthSmile", "mouthStretch", "mouthLowerDown",
                                                                    "mouthUpperUp"))]
@torch.no_grad()
def fit_scale(net: EstimatorNet, basis: torch.Tensor, clips: dict[str, np.ndarray], ridge: float = 0.1
              ) -> tuple[torch.Tensor, dict]:
    """(52,) output scales from tracked clips {name: (T, 478, 3) px}; see the module note."""
    k = basis.shape[0]
    bf = basis[:, :468].flatten(1).double()  # (K, 1404)
    gram_b = bf @ bf.T  # (K, K)
    g = torch.zeros(k, k, dtype=torch.float64)
    h = torch.zeros(k, dtype=torch.float64)
    shut_reads, spread = [], torch.zeros(k, dtype=torch.float64)
    for pts in clips.values():
        pts = pts[np.isfinite(pts).all(axis=(1, 2))]
        canon, _ = normalize(torch.as_tensor(pts, dtype=torch.float32), net.neutral, net.rigid)
        w = net(canon).clamp(min=0).double()  # (T, K) the raw reading
        dw = w - w.median(0).values  # (T, K)
        dx = (canon[:, :468] - canon[:, :468].median(0).values).flatten(1).double()  # (T, 1404)
        g += (dw.T @ dw) * gram_b
        h += ((dx @ bf.T) * dw).sum(0)
        spread = torch.maximum(spread, w.quantile(0.99, 0) - w.quantile(0.05, 0))
        ear = eye_aspect_ratios(pts).mean(1)
        shut = ear < SHUT * np.median(ear)
        if shut.any():
            shut_reads.append(w[torch.as_tensor(shut)][:, BLINKS].mean(1))
    lam = ridge * float(torch.diagonal(g).mean())
    scale = torch.linalg.solve(g + lam * torch.eye(k, dtype=g.dtype), h + lam).clamp(1.0, MAX_SCALE)
    keep = torch.ones(k, dtype=torch.bool)
    keep[CALIBRATED] = False
    scale[keep | (spread < MIN_SPREAD)] = 1.0
    blink = float(torch.cat(shut_reads).mean()) if shut_reads else BLINK_APEX
    scale[BLINKS] = float(np.clip(BLINK_APEX / max(blink, 1e-3), 1.0, MAX_SCALE))
    info = {"clips": sorted(clips), "frames": int(sum(len(v) for v in clips.values())),
            "shut_eye_reading": round(blink, 3),
            "ridge": ridge, "scale": {ARKIT52[i]: round(float(scale[i]), 3) for i in range(k) if scale[i] != 1.0}}
    return scale.float(), info


def main() -> None:
    from reenact.rig import load_rig
    from reenact.weights import load_typed, read_contract, save

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--meshes", type=Path, default=Path(".cache/rig/tracked.npz"),
                    help="our tracker's meshes of the tuning clips (collect_meshes)")
    ap.add_argument("--ridge", type=float, default=0.1)
    ap.add_argument("--estimator", type=Path, default=None,
                    help="folder holding the estimator to calibrate, e.g. a retrained one (default: weights/)")
    ap.add_argument("--out", type=Path, default=None, help="folder for the weights (default: weights/)")
    args = ap.parse_args()
    data = np.load(args.meshes)
    clips = {key: data[key] for key in data.files if key != "photos"}
    net = load_typed("estimator", EstimatorNet, "cpu", args.estimator)
    net.out_scale.fill_(1.0)
    scale, info = fit_scale(net, load_rig().basis, clips, args.ridge)
    net.out_scale.copy_(scale)
    contract = read_contract("estimator", args.estimator)
    contract.extra = {**contract.extra, "calibration": {**info, "script": "reenact/train/estimator_calibrate.py"}}
    state = {k: (v.half() if v.is_floating_point() and k.startswith("mlp") else v) for k, v in net.state_dict().items()}
    print(json.dumps(info, indent=1))
    print("wrote", save("estimator", state, contract, args.out))


if __name__ == "__main__":
    main()
