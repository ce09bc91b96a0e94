"""Refiner cost per frame on CPU: the network alone at the crop size, and the whole `Refiner.refine` call (crop,
net, uncrop, composite) on a renderer-sized ROI; with a region prior, full crop vs the prior's window (interleaved,
so a neighbour's load hits both alike) and how far apart their outputs are.

    .venv/bin/python benchmarks/bench_refiner.py [--threads 1] [--batch 8] [--roi 320] [--repeats 10] [--prior mouth]
        [--photo samples/source.jpg] [--weights DIR] [--margin PX]

--photo: real warped ROIs of that photo (the renderer's, jaw opening 0 -> 0.8 over the batch) instead of random
pixels under the canonical mesh. --weights: the refiner exported to DIR (python -m reenact.train.refiner --export
--to DIR), e.g. a candidate trained with a prior, whose output differs enough to compare full and windowed.
--margin: the windowed run's context margin instead of the contract's (how a net's window_margin is chosen: the
smallest margin whose windowed output stays within a few thousandths of a grey level of the full crop's).
Reports process CPU ms per frame (~ uncontended single-core time on a shared machine; median, and min-max over the
repeats as the noise) and wall ms per frame.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reenact.face.canonical import load_canonical
from reenact.params import ARKIT52
from reenact.render.refine import Refiner, prior_bits
from reenact.weights import load_model, weights_dir


def timed(fn, repeats: int) -> tuple[float, float]:
    fn()  # warm-up (oneDNN primitive creation)
    w, c = time.perf_counter(), time.process_time()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - w) / repeats, (time.process_time() - c) / repeats


def interleaved(fns: dict, repeats: int, frames: int) -> dict:
    """Each fn once per round, rounds repeated: name -> CPU and wall ms per frame (median, min, max)."""
    for fn in fns.values():
        fn()  # warm-up
    cpu: dict[str, list[float]] = {k: [] for k in fns}
    wall: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            w, c = time.perf_counter(), time.process_time()
            fn()
            cpu[name].append(1000 * (time.process_time() - c) / frames)
            wall[name].append(1000 * (time.perf_counter() - w) / frames)
    stats = lambda v: {"median": round(float(np.median(v)), 2), "min": round(min(v), 2), "max": round(max(v), 2)}
    return {k: {"cpu": stats(cpu[k]), "wall": stats(wall[k])} for k in fns}


def canonical_inputs(b: int, side: int) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    roi = torch.rand(b, 3, side, side) * 255
    mesh = load_canonical().vertices478
    pts = np.repeat((mesh * side / 24 + [side / 2, side / 2, 0])[None], b, 0).astype(np.float32)
    return roi, pts, np.random.default_rng(0).uniform(0, 0.5, (b, 52)).astype(np.float32)


def photo_inputs(path: Path, b: int) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """The renderer's warped ROIs of the photo (what it hands the refiner), their target meshes and shapes."""
    from types import SimpleNamespace

    from reenact.analysis import Models, load_source
    from reenact.render.renderer import FaceRenderer

    class Grab:  # stands in for the refiner: keeps its input, changes nothing
        net = SimpleNamespace(use_source=False)

        def __init__(self) -> None:
            self.calls: list = []

        def refine(self, roi, pts, shapes, source_roi=None):
            self.calls.append((roi.clone(), pts.copy(), shapes.numpy().copy()))
            return roi

    models = Models()
    src = load_source(path, models)
    shapes = np.repeat(src.shapes[None], b, 0).astype(np.float32)
    shapes[:, ARKIT52.index("jawOpen")] = np.linspace(0, 0.8, b)
    grab = Grab()
    FaceRenderer(src.image, src.points, src.shapes, models.rig, refiner=grab).render(shapes)  # type: ignore[arg-type]
    return grab.calls[0]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--roi", type=int, default=320, help="side of the warped ROI in px")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--prior", default=None, help='force a region prior: "", mouth, eyes, mouth+eyes, inner-mouth (default: the contract\'s)')
    ap.add_argument("--photo", type=Path, default=None, help="real warped ROIs of this photo instead of random pixels")
    ap.add_argument("--weights", type=Path, default=None, help="folder with refiner.safetensors + .json (default: weights/)")
    ap.add_argument("--margin", type=int, default=None, help="window margin in crop px (default: the contract's)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    refiner = Refiner(load_model("refiner", directory=args.weights))  # type: ignore[arg-type]
    if args.prior is not None:
        refiner.prior = prior_bits(args.prior)
    if args.margin is not None:
        refiner.window_margin = args.margin
    full = Refiner(refiner.net, window_margin=None)
    full.prior = refiner.prior
    net, size, b = refiner.net, refiner.size, args.batch
    params = sum(p.numel() for p in net.parameters())
    roi, pts, shapes = photo_inputs(args.photo, b) if args.photo else canonical_inputs(b, args.roi)
    crop, p = torch.rand(b, 3, size, size) * 2 - 1, torch.from_numpy(shapes)
    with torch.inference_mode():
        net_wall, net_cpu = timed(lambda: net(crop, p, crop if net.use_source else None), args.repeats)
    src = roi[:1]
    runs = {"full": lambda: full.refine(roi, pts, shapes, source_roi=src)}
    if refiner.prior:
        runs["windowed"] = lambda: refiner.refine(roi, pts, shapes, source_roi=src)
    report = {"crop": size, "batch": b, "prior": refiner.prior, "use_source": net.use_source, "threads": args.threads,
              "roi": list(roi.shape[-2:]), "photo": str(args.photo) if args.photo else None, "params": params,
              "weights_mb": round(((args.weights or weights_dir()) / "refiner.safetensors").stat().st_size / 1e6, 2),
              "net_ms_per_frame": {"cpu": round(1000 * net_cpu / b, 2), "wall": round(1000 * net_wall / b, 2)},
              "refine_ms_per_frame": interleaved(runs, args.repeats, b)}
    if refiner.prior:
        diff = (full.refine(roi, pts, shapes, source_roi=src) - refiner.refine(roi, pts, shapes, source_roi=src)).abs()
        report["windowed_vs_full"] = {"margin": refiner.window_margin, "max": round(float(diff.max()), 4),
                                      "mean": round(float(diff.mean()), 6)}
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
