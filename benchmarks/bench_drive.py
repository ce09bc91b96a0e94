"""End-to-end `drive` benchmark: per-stage ms/frame, frames per second, peak RSS.

    python benchmarks/bench_drive.py [--no-refine]           # samples/source.jpg x samples/driver.mp4 (6 s)
    python benchmarks/bench_drive.py --size 640x480 --fps 25 --seconds 10 --source-size 512
    python benchmarks/bench_drive.py --size 640x480 --fps 25 --seconds 600   # memory: compare peak RSS with --seconds 10

A longer or larger driver is made by looping the sample driver's frames (resized) into a temporary file; making it
is not timed. Each run is a fresh process so peak RSS is that run's own. Prints one JSON line per run.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def make_driver(path: Path, size: tuple[int, int], seconds: float, fps: float | None = None) -> Path:
    import cv2

    from reenact.io.video import VideoWriter, read_frames

    with read_frames(ROOT / "samples" / "driver.mp4") as frames:
        fps = fps or frames.fps  # another rate replays the same frames faster or slower
        loop = [cv2.resize(f.rgb, size, interpolation=cv2.INTER_LINEAR) for f in frames]
    n = int(round(seconds * fps))
    with VideoWriter(path, fps, preset="ultrafast", crf=23) as w:
        for i in range(n):
            k = i % (2 * len(loop) - 2)  # ping-pong so the loop has no jump
            w.write(loop[k if k < len(loop) else 2 * len(loop) - 2 - k])
    return path


def run_once(source: Path, driver: Path, device: str, max_size: int, refine: bool) -> dict:
    """Run the pipeline in this process (called in a child) and print the JSON result."""
    import torch

    from reenact.device import configure_threads
    from reenact.pipeline import DriveSpec, Models, RenderOptions, drive

    configure_threads(torch.device(device))  # as the CLI does

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        spec = DriveSpec(source, driver, Path(tmp) / "out.mp4", RenderOptions(refine=refine), max_size=max_size)
        report = drive(spec, Models(torch.device(device)))
        wall = time.perf_counter() - start
    n = report.frames
    per_frame = {k: round(v / n, 2) for k, v in report.timings_ms.items() if k not in ("per_frame", "track_total")}
    return {"frames": n, "fps_video": report.fps, "wall_s": round(wall, 2), "end_to_end_fps": round(n / wall, 1),
            "ms_per_frame": per_frame, "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "torch_threads": torch.get_num_threads(), "device": device, "refine": refine}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source", type=Path, default=ROOT / "samples" / "source.jpg")
    ap.add_argument("--driver", type=Path, default=None, help="default: the sample driver (or a generated one)")
    ap.add_argument("--size", default="", help="WxH of a generated driver, e.g. 640x480")
    ap.add_argument("--seconds", type=float, default=0.0, help="length of a generated driver")
    ap.add_argument("--fps", type=float, default=None, help="frame rate of a generated driver (default: the sample's 24)")
    ap.add_argument("--source-size", type=int, default=1280, help="--max-size for the photo")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--no-refine", action="store_true", help="warp only, as `drive --no-refine`")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(run_once(args.source, args.driver, args.device, args.source_size, not args.no_refine)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        driver = args.driver or ROOT / "samples" / "driver.mp4"
        if args.size or args.seconds:
            w, h = (int(v) for v in (args.size or "360x288").split("x"))
            driver = make_driver(Path(tmp) / "driver.mp4", (w, h), args.seconds or 6.0, args.fps)
        cmd = [sys.executable, __file__, "--child", "--source", str(args.source), "--driver", str(driver),
               "--device", args.device, "--source-size", str(args.source_size)] + (["--no-refine"] if args.no_refine else [])
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
        result = json.loads(out)
        result.update({"driver": f"{args.size or 'sample'} {args.seconds or 'sample'} s", "source": args.source.name})
        print(json.dumps(result))


if __name__ == "__main__":
    main()
