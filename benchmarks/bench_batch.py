"""Batch throughput: N sources x 1 driver as one `reenact batch` versus N separate `reenact drive` runs, and the
rerun of the same batch with every output done (it should load no model: `rerun_ratio` < 0.1 of the first run).

    .venv/bin/python benchmarks/bench_batch.py [--sources 4] [--frames 48] [--device cpu] [--workers N]

Both sides are timed as command-line processes from start to exit (a user's shell loop versus one batch), on the same
inputs made from samples/ (copies, mirrors and crops of samples/source.jpg; the first --frames frames of
samples/driver.mp4). The batch tracks the driver once and loads the models once; each `drive` does both again.
Results go to stdout as JSON; work files to .cache/bench_batch/ (git-ignored). CPU numbers depend on what else the
machine is doing: compare the two sides of one run, not runs taken at different times.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".cache" / "bench_batch"


def make_inputs(n_sources: int, frames: int) -> tuple[Path, Path]:
    from PIL import Image, ImageOps

    from reenact.io.video import read_frames
    from reenact.io.writer import VideoWriter

    src = WORK / "sources"
    shutil.rmtree(src, ignore_errors=True)
    src.mkdir(parents=True)
    photo = Image.open(ROOT / "samples" / "source.jpg").convert("RGB")
    w, h = photo.size
    variants = [photo, ImageOps.mirror(photo), photo.crop((w // 16, h // 16, w, h)),
                ImageOps.mirror(photo).crop((0, 0, w - w // 12, h - h // 20))]
    for i in range(n_sources):
        variants[i % len(variants)].save(src / f"face{i}.jpg", quality=92)
    driver = WORK / "driver.mp4"
    with read_frames(ROOT / "samples" / "driver.mp4") as reader, VideoWriter(driver, reader.fps, overwrite=True) as out:
        for f in reader:
            if f.index >= frames:
                break
            out.write(f.rgb)
    return src, driver


def timed(cmd: list[str]) -> float:
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return seconds


def as_cli(args: list[str]) -> None:
    """Run the `reenact` app with `batch` registered (the real one once app.py registers it)."""
    import typer

    sys.path.insert(0, str(ROOT))
    from tests.checkout import use_checkout_cli

    use_checkout_cli()  # this checkout's cli/, as the tests use it
    from reenact_cli import app as app_module
    from reenact_cli.batch_cmd import batch

    app = app_module.app
    if not any(getattr(c.callback, "__wrapped__", None) is batch for c in app.registered_commands):
        app = typer.Typer()
        app.callback()(app_module.main_options)
        app.command("batch")(app_module.guarded(batch))
    sys.argv = ["reenact", *args]
    app()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sources", type=int, default=4)
    ap.add_argument("--frames", type=int, default=48)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--workers", type=int, default=None)
    a = ap.parse_args()
    src, driver = make_inputs(a.sources, a.frames)
    py = sys.executable
    separate_dir, batch_dir = WORK / "separate", WORK / "batch"
    for d in (separate_dir, batch_dir):
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
    separate = []
    for photo in sorted(src.glob("*.jpg")):
        separate.append(timed([py, "-m", "reenact", "--device", a.device, "drive", str(photo), str(driver), "-o",
                               str(separate_dir / f"{photo.stem}.mp4")]))
    batch_args = ["--device", a.device, "batch", str(src), str(driver), "-o", str(batch_dir),
                  "--report", str(WORK / "batch.json")] + (["--workers", str(a.workers)] if a.workers else [])
    batched = timed([py, str(Path(__file__).resolve()), "--as-cli", *batch_args])
    report = json.loads((WORK / "batch.json").read_text())
    rerun = timed([py, str(Path(__file__).resolve()), "--as-cli", *batch_args])  # every output exists: all skipped
    rerun_report = json.loads((WORK / "batch.json").read_text())
    rel = lambda p: str(Path(p).relative_to(ROOT)) if str(p).startswith(str(ROOT)) else str(p)  # noqa: E731
    print(json.dumps({
        "sources": a.sources, "driver_frames": a.frames, "device": a.device,
        "separate_drive_s": [round(s, 2) for s in separate], "separate_total_s": round(sum(separate), 2),
        "batch_s": round(batched, 2), "speedup": round(sum(separate) / batched, 2),
        "batch_backend": report["summary"]["backend"], "batch_workers": report["summary"]["workers"],
        "batch_job_s": [j["seconds"] for j in report["jobs"]],
        "rerun_s": round(rerun, 2), "rerun_ratio": round(rerun / batched, 3),
        "rerun_backend": rerun_report["summary"]["backend"], "rerun_skipped": rerun_report["summary"]["skipped"],
        "commands": {"separate": f"reenact --device {a.device} drive SOURCE {rel(driver)} -o OUT.mp4 (x{a.sources})",
                     "batch": "reenact " + " ".join(rel(x) for x in batch_args)},
    }, indent=2))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--as-cli":
        as_cli(sys.argv[2:])
    else:
        main()
