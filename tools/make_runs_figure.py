"""A figure from tools/eval_fidelity.py runs: the driver's row over each run's output row, at chosen frames, cropped.

    python tools/make_runs_figure.py --clip wolfgang --runs before_t after_t --frames 118 185 \
        --crop 180,40,460,240 --out docs/images/eyes_guard.png

Each run is a `--label` of tools/eval_fidelity.py (its driver and output under .cache/fidelity/runs/LABEL/CLIP): run
it once with `--code` of another checkout and once with this one to show what a change does to the same frames.
Frames are shown at full size (`--zoom` to enlarge them, nearest neighbour, so every pixel stays visible).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tools.eval_fidelity import CACHE, frames_at  # noqa: E402  (its runs, read as it reads them)

RUNS = CACHE / "runs"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clip", required=True)
    ap.add_argument("--runs", nargs="+", required=True, help="eval_fidelity labels, one output row each")
    ap.add_argument("--frames", nargs="+", type=int, required=True)
    ap.add_argument("--crop", default="", help="x0,y0,x1,y1 of every frame (default: whole frames)")
    ap.add_argument("--zoom", type=int, default=1)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    wanted = set(args.frames)
    videos = [RUNS / args.runs[0] / args.clip / "driver.mp4"] + [RUNS / r / args.clip / "output.mp4" for r in args.runs]
    missing = [str(v) for v in videos if not v.exists()]
    if missing:
        raise SystemExit(f"no such run video: {', '.join(missing)} (run tools/eval_fidelity.py --label ... first)")
    rows = []
    for video in videos:
        found = frames_at(video, wanted)
        cells = []
        for i in args.frames:
            img = found[i]
            if args.crop:
                x0, y0, x1, y1 = (int(v) for v in args.crop.split(","))
                img = img[y0:y1, x0:x1]
            big = np.kron(img, np.ones((args.zoom, args.zoom, 1), np.uint8))  # nearest neighbour
            cells += [big, np.full((big.shape[0], 4, 3), 255, np.uint8)]
        row = np.hstack(cells[:-1])
        rows += [row, np.full((4, row.shape[1], 3), 255, np.uint8)]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), cv2.cvtColor(np.vstack(rows[:-1]), cv2.COLOR_RGB2BGR))
    print(args.out)


if __name__ == "__main__":
    main()
