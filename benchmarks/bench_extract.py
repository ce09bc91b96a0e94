"""`extract` benchmark: a 640x480 driver -> parameter track; frames per second against real time, peak RSS.

    python benchmarks/bench_extract.py --seconds 30            # the sample driver looped/resized to 640x480, 30 s

Prints one JSON line (per-stage ms/frame from the track's own timings).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_drive import make_driver  # noqa: E402  (same generated driver as the drive benchmark)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--size", default="640x480")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    import torch

    from reenact.device import configure_threads
    from reenact.pipeline import Models, video_track

    w, h = (int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        driver = make_driver(Path(tmp) / "driver.mp4", (w, h), args.seconds)
        configure_threads(torch.device(args.device))  # as the CLI does
        models = Models(torch.device(args.device))
        _ = models.analyzer, models.estimator  # load before timing
        start = time.perf_counter()
        track = video_track(driver, models)
        wall = time.perf_counter() - start
    n = len(track)
    print(json.dumps({"driver": f"{args.size} {args.seconds} s", "frames": n, "wall_s": round(wall, 2),
                      "fps": round(n / wall, 1), "real_time_factor": round(args.seconds / wall, 2),
                      "ms_per_frame": {k: round(v / n, 2) for k, v in track.meta["timings_ms"].items()},
                      "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                      "torch_threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
