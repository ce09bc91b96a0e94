"""Expression-shading cost per frame on CPU: the renderer on the sample photo with and without the shading maps
(interleaved repeats, so a neighbour's load hits both alike), and the per-photo set-up (maps resampled onto the
photo's mesh, once per source).

    .venv/bin/python benchmarks/bench_shading.py --weights DIR [--photo samples/source.jpg] [--threads 1] [--batch 8]
        [--repeats 10]

DIR holds shading.safetensors/json (python -m reenact.train.shading --out DIR); they are loaded directly, without
the renderer's gate (none is shipped, docs/shading.md), since the cost does not depend on what the maps hold.

Reports process CPU ms per frame (median over the repeats, min-max as the noise) for warp-only rendering, rendering
with shading, their difference, and the set-up time in ms.
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

from reenact.analysis import Models, load_source  # noqa: E402
from reenact.emotion import emotion_to_arkit  # noqa: E402
from reenact.render.renderer import FaceRenderer  # noqa: E402


def cpu_ms(fn) -> float:
    c = time.process_time()
    fn()
    return (time.process_time() - c) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--weights", type=Path, required=True, help="folder holding shading.safetensors/json")
    ap.add_argument("--photo", type=Path, default=Path("samples/source.jpg"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=10)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from reenact.weights import load_model

    models = Models(torch.device("cpu"))
    shading = load_model("shading", directory=args.weights)
    src = load_source(args.photo, models)
    names = ("happy", "sad", "angry", "disgust", "surprise", "fear", "neutral", "happy")
    shapes = np.stack([emotion_to_arkit(n, 1.0) for n in names][: args.batch]).astype(np.float32)
    setup = [cpu_ms(lambda: shading.for_photo(src.points, FaceRenderer(
        src.image, src.points, src.shapes, models.rig).warper.roi, src.shapes)) for _ in range(3)]
    plain = FaceRenderer(src.image, src.points, src.shapes, models.rig)
    shaded = FaceRenderer(src.image, src.points, src.shapes, models.rig, shading=shading)
    plain.render(shapes), shaded.render(shapes)  # warm-up
    a, b = [], []
    for _ in range(args.repeats):
        a.append(cpu_ms(lambda: plain.render(shapes)) / len(shapes))
        b.append(cpu_ms(lambda: shaded.render(shapes)) / len(shapes))
    res = {"photo": str(args.photo), "image": list(src.image.shape[:2]), "roi": list(plain.warper.roi.size),
           "threads": args.threads, "batch": len(shapes), "warp_ms": float(np.median(a)),
           "warp_ms_range": [float(min(a)), float(max(a))], "shaded_ms": float(np.median(b)),
           "shaded_ms_range": [float(min(b)), float(max(b))], "shading_ms": float(np.median(b) - np.median(a)),
           "setup_ms": float(np.median(setup))}
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
