"""Refiner cost per frame on CPU: the network alone at the crop size, and the whole `Refiner.refine` call (crop,
net, uncrop, composite) on a renderer-sized ROI.

    .venv/bin/python benchmarks/bench_refiner.py [--threads 1] [--batch 8] [--roi 320] [--repeats 10] [--prior mouth]

Reports process CPU ms per frame (~ uncontended single-core time on a shared machine) and wall ms per frame.
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
from reenact.render.refine import Refiner, prior_bits
from reenact.weights import weights_dir


def timed(fn, repeats: int) -> tuple[float, float]:
    fn()  # warm-up (oneDNN primitive creation)
    w, c = time.perf_counter(), time.process_time()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - w) / repeats, (time.process_time() - c) / repeats


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--roi", type=int, default=320, help="side of the warped ROI in px")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--prior", default=None, help='force a region prior: "", mouth, eyes, mouth+eyes (default: the contract\'s)')
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    refiner = Refiner()
    if args.prior is not None:
        refiner.prior = prior_bits(args.prior)
    net, size, b = refiner.net, refiner.size, args.batch
    params = sum(p.numel() for p in net.parameters())
    roi = torch.rand(b, 3, args.roi, args.roi) * 255
    mesh = load_canonical().vertices478
    pts = np.repeat((mesh * args.roi / 24 + [args.roi / 2, args.roi / 2, 0])[None], b, 0).astype(np.float32)
    shapes = np.random.default_rng(0).uniform(0, 0.5, (b, 52)).astype(np.float32)
    crop, p = torch.rand(b, 3, size, size) * 2 - 1, torch.from_numpy(shapes)
    with torch.inference_mode():
        net_wall, net_cpu = timed(lambda: net(crop, p, crop if net.use_source else None), args.repeats)
    full_wall, full_cpu = timed(lambda: refiner.refine(roi, pts, shapes, source_roi=roi[:1]), args.repeats)
    weights = weights_dir() / "refiner.safetensors"
    print(json.dumps({
        "crop": size, "batch": b, "prior": refiner.prior, "use_source": net.use_source, "threads": args.threads, "roi": args.roi, "params": params,
        "weights_mb": round(weights.stat().st_size / 1e6, 2),
        "net_ms_per_frame": {"cpu": round(1000 * net_cpu / b, 2), "wall": round(1000 * net_wall / b, 2)},
        "refine_ms_per_frame": {"cpu": round(1000 * full_cpu / b, 2), "wall": round(1000 * full_wall / b, 2)},
    }, indent=1))


if __name__ == "__main__":
    main()
