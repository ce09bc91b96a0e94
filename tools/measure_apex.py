"""How far real faces move along each rig shape, in units of that shape (1 = the rig's ARKit maximum).

    .venv/bin/python tools/measure_apex.py [--cache .cache/shading/sequences.npz]

A check of the rig's amplitudes against real expressive footage (docs/emotion_eval.md, "Two shortcuts that do not
close the gap"): if real apex expressions moved the face much further than a shape's 1.0, `edit --emotion X:1` would
be a weak X by construction and the rig should be rescaled. Reads the unwrapped sequences the shading fit caches
(meshes per frame: `python -m reenact.train.shading ... --cache PATH`), puts each mesh in the canonical frame (the
estimator's Procrustes on the rigid vertices), subtracts the person's reference face (an expression grid's first
tile, which is neutral; a video's per-vertex median) and projects the change onto each shape's displacement on that
shape's own support (the vertices it moves by more than 0.5 mm). Shapes that share vertices (browDown and
browInnerUp, the jaw and the lower-lip shapes) leak into each other's projections, so read the numbers as
amplitudes, not as a fit.
Prints the 2nd and 98th percentile per person and shape.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from reenact.params import ARKIT52
from reenact.rig import load_rig
from reenact.train.estimator_real import canonical
from reenact.train.shading import load_sequences
from reenact.weights import load_model

SHAPES = ("browDownLeft", "browInnerUp", "browOuterUpLeft", "eyeWideLeft", "eyeSquintLeft", "noseSneerLeft",
          "cheekSquintLeft", "mouthSmileLeft", "mouthFrownLeft", "mouthStretchLeft", "mouthUpperUpLeft")
SUPPORT_CM = 0.05  # 0.5 mm


def amplitudes(points: np.ndarray, reference: str, basis: torch.Tensor, neutral: torch.Tensor,
               rigid: torch.Tensor) -> dict[str, np.ndarray]:
    """(T, 478, 3) px -> {shape: (T,) amplitude in units of the shape}."""
    canon = canonical(points, neutral, rigid)  # (T, 478, 3) cm, as the estimator normalises
    ref = canon[0] if reference == "first" else canon.median(0).values
    off = canon - ref
    out = {}
    for name in SHAPES:
        b = basis[ARKIT52.index(name)]  # (478, 3)
        on = b.norm(dim=1) > SUPPORT_CM
        out[name] = ((off[:, on] * b[on]).sum((1, 2)) / (b[on] ** 2).sum()).numpy()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cache", type=Path, default=Path(".cache/shading/sequences.npz"))
    ap.add_argument("--neutral-first", nargs="*", default=["test3"],
                    help="sequences whose first frame is a neutral face (an expression grid); others use the median")
    args = ap.parse_args()
    net, rig = load_model("estimator", "cpu"), load_rig()
    print("| person | " + " | ".join(SHAPES) + " |\n|---|" + "---|" * len(SHAPES))
    for seq in load_sequences(args.cache):
        pts = np.stack(seq.points)
        ref = "first" if seq.name in args.neutral_first else "median"
        amp = amplitudes(pts, ref, rig.basis, net.neutral, net.rigid)
        cells = [f"{np.percentile(a, 2):+.1f} / {np.percentile(a, 98):+.1f}" for a in amp.values()]
        print(f"| {seq.name} ({len(pts)}) | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
