"""Speed of the identity check: ms per face to embed a batch of aligned chips, and to align one face.

Uses a shipped embedder (--identity: default, mobilefacenet or dlib) on the fixture faces repeated to the batch
size. Target (issue 4): < 20 ms/face for a batch of 64 on a 2-core CPU. Prints one JSON object.

    python benchmarks/bench_identity.py                    # CPU, all threads torch uses by default
    python benchmarks/bench_identity.py --identity dlib --threads 1
    python benchmarks/bench_identity.py --threads 2 --batch 64 --device cuda
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from reenact.device import describe, resolve_device
from reenact.identity import load_embedder

FIX = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "identity"


def timed(fn, repeats: int) -> tuple[float, float]:  # noqa: ANN001
    """Median wall seconds and median process CPU seconds of `repeats` calls after one warm-up.

    On a shared machine the wall time includes waiting for a core; the CPU time (all threads) does not, so with
    --threads 1 it is what the call costs on an idle core.
    """
    fn()
    wall, cpu = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return float(np.median(wall)), float(np.median(cpu))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--identity", default="default", help="default | mobilefacenet | dlib")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    emb = load_embedder(args.identity, device)
    z = np.load(FIX / "reference.npz")
    crops = [np.asarray(Image.open(FIX / f"crop_{i:02d}.jpg").convert("RGB")) for i in range(len(z["names"]))]
    chips = emb.align_batch(crops, list(z["mesh"]))
    batch = torch.from_numpy(np.resize(chips, (args.batch, *chips.shape[1:]))).permute(0, 3, 1, 2).float()

    def run() -> None:
        out = emb.embed(batch)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        assert out.shape[0] == args.batch

    t_embed, c_embed = timed(run, args.repeats)
    big = np.asarray(Image.fromarray(crops[0]).resize((1280, 1280), Image.BILINEAR))  # a large face: pyramid path
    t_align, _ = timed(lambda: emb.align_batch(crops, list(z["mesh"])), args.repeats)
    t_big, _ = timed(lambda: emb.align(big, z["mesh"][0] * (1280 / 224)), args.repeats)
    print(json.dumps({
        "device": describe(device),
        "embedder": emb.name,
        "threads": torch.get_num_threads(),
        "batch": args.batch,
        "embed_ms_per_face": round(1000 * t_embed / args.batch, 2),
        "embed_batch_ms": round(1000 * t_embed, 1),
        "embed_cpu_ms_per_face": round(1000 * c_embed / args.batch, 2),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "align_ms_per_face_224px": round(1000 * t_align / len(crops), 3),
        "align_ms_1280px_face": round(1000 * t_big, 3),
    }))


if __name__ == "__main__":
    main()
