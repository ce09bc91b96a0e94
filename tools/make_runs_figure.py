"""A figure from tools/eval_fidelity.py runs: the driver's row over each run's output row, at chosen frames, cropped.

    python tools/make_runs_figure.py --clip wolfgang --runs before_t after_t --frames 118 185 \
        --crop 180,40,460,240 --out docs/images/eyes_guard.png

Each run is a `--label` of tools/eval_fidelity.py (its driver and output under .cache/fidelity/runs/LABEL/CLIP): run
it once with `--code` of another checkout and once with this one to show what a change does to the same frames.
Frames are shown at full size (`--zoom` to enlarge them, nearest neighbour, so every pixel stays visible).

Other people's photos driven by one clip (`reenact drive`, `tools/sweep_sheets.py`) have frames of their own sizes:
give the videos themselves, the driver first, with a crop each, and a row height every cell is scaled to:

    python tools/make_runs_figure.py --videos driver.mp4 a_before.mp4 a_after.mp4 --crops 180,40,460,240 \
        30,0,210,128 30,0,210,128 --height 200 --frames 150 173 --out docs/images/eyes_gaze.png
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
    ap.add_argument("--clip")
    ap.add_argument("--runs", nargs="+", help="eval_fidelity labels, one output row each")
    ap.add_argument("--videos", nargs="+", type=Path, help="instead of --clip and --runs: the driver, then outputs")
    ap.add_argument("--frames", nargs="+", type=int, required=True)
    ap.add_argument("--crop", default="", help="x0,y0,x1,y1 of every frame (default: whole frames)")
    ap.add_argument("--crops", nargs="+", help="x0,y0,x1,y1 of each video's frames, in --videos' order")
    ap.add_argument("--height", type=int, help="scale every cell to this height (px)")
    ap.add_argument("--zoom", type=int, default=1)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    wanted = set(args.frames)
    if args.videos:
        videos = args.videos
    elif args.clip and args.runs:
        videos = [RUNS / args.runs[0] / args.clip / "driver.mp4"] + [RUNS / r / args.clip / "output.mp4"
                                                                      for r in args.runs]
    else:
        raise SystemExit("give --clip and --runs, or --videos")
    crops = args.crops or [args.crop] * len(videos)
    if len(crops) != len(videos):
        raise SystemExit(f"--crops: {len(crops)} crops for {len(videos)} videos")
    missing = [str(v) for v in videos if not v.exists()]
    if missing:
        raise SystemExit(f"no such video: {', '.join(missing)} (for --runs: run tools/eval_fidelity.py --label first)")
    boxes = [tuple(int(v) for v in c.split(",")) if c else None for c in crops]  # x0, y0, x1, y1 per video
    rows = []
    for video, box in zip(videos, boxes):
        found = frames_at(video, wanted)
        if short := sorted(wanted - set(found)):
            raise SystemExit(f"{video} ends before frame {short[0]}")
        cells = []
        for i in args.frames:
            img = found[i]
            if box:
                x0, y0, x1, y1 = box
                img = img[y0:y1, x0:x1]
            if args.height:
                img = cv2.resize(img, (round(img.shape[1] * args.height / img.shape[0]), args.height),
                                 interpolation=cv2.INTER_CUBIC)
            big = np.kron(img, np.ones((args.zoom, args.zoom, 1), np.uint8))  # nearest neighbour
            cells += [big, np.full((big.shape[0], 4, 3), 255, np.uint8)]
        row = np.hstack(cells[:-1])
        rows += [row, np.full((4, row.shape[1], 3), 255, np.uint8)]
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), cv2.cvtColor(np.vstack(rows[:-1]), cv2.COLOR_RGB2BGR))
    print(args.out)


if __name__ == "__main__":
    main()
