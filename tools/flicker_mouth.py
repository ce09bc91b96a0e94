"""Flicker of the mouth interior in `speak` (issue 19): library vs paint on the same lips, frame to frame.

    .venv/bin/python tools/flicker_mouth.py [--photo samples/source.jpg] [--audio samples/speech.wav] [--seconds 10]

The speech's lips (as `speak --still` makes them; the speech repeated to fill the seconds) are rendered onto the
photo in-process with each interior, refiner and shading off (they act the same on both). Inside the rendered
inner-lip contour of both frames of each consecutive pair (eroded 1 px: the lip line itself moves with the lips):

    step   mean |frame t+1 - frame t| (RGB, 0..255): motion plus flicker
    jerk   mean |frame t+1 - 2 frame t + frame t-1|: a steady motion gives ~0, a choice that switches back and
           forth gives a large value (flicker)

over frames where the mouth is open in all frames of the window. `paint` is a fixed function of the mouth shape
(no choice to switch), so it is the floor set by the lips' own motion; "library, unsmoothed" is the library without
its smoothing over frames (each frame's own soft choice).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from reenact.analysis import Models, load_source  # noqa: E402
from reenact.render.interior import INNER_LOOP, LibraryPicker, load_library  # noqa: E402
from reenact.render.mouth import lip_gap  # noqa: E402
from reenact.render.renderer import FaceRenderer  # noqa: E402
from reenact.speech import speech_columns, speech_track  # noqa: E402


def mouth_mask(points: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    mask = np.zeros(shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(points[INNER_LOOP, :2]).astype(np.int32)], 1)
    return cv2.erode(mask, np.ones((3, 3), np.uint8)).astype(bool)


def measure(frames: np.ndarray, points: np.ndarray, opened: np.ndarray) -> dict[str, float]:
    """step / jerk (see the module doc) of (T, H, W, 3) frames with (T, 478, 3) meshes."""
    f = frames.astype(np.float32)
    masks = [mouth_mask(p, frames.shape[1:]) for p in points]
    steps, jerks = [], []
    for t in range(1, len(f) - 1):
        if not opened[t - 1:t + 2].all():
            continue
        m = masks[t - 1] & masks[t] & masks[t + 1]
        if m.sum() < 10:
            continue
        steps.append(np.abs(f[t + 1] - f[t])[m].mean())
        jerks.append(np.abs(f[t + 1] - 2 * f[t] + f[t - 1])[m].mean())
    return {"frames": len(steps), "step": float(np.mean(steps)), "jerk": float(np.mean(jerks)),
            "jerk_p95": float(np.percentile(jerks, 95))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photo", type=Path, default=ROOT / "samples" / "source.jpg")
    ap.add_argument("--audio", type=Path, default=ROOT / "samples" / "speech.wav")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--fps", type=float, default=25.0)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(2)
    models = Models()
    source = load_source(args.photo, models)
    track = speech_track(args.audio, args.fps, models.device)
    n = int(round(args.seconds * args.fps))
    reps = -(-n // len(track))
    cols = speech_columns(track)
    shapes = np.repeat(source.shapes[None], n, 0)
    shapes[:, cols] = np.clip(source.shapes[cols] + np.tile(track.weights, (reps, 1))[:n], 0.0, 1.0)
    renderer = FaceRenderer(source.image, source.points, source.shapes, models.rig, models.device)
    result = {}
    library = load_library()
    pickers = {"paint": None, "library": LibraryPicker(library),
               "library, unsmoothed": LibraryPicker(library, follow=1.0)}  # each frame's own choice: the switch
    for name, picker in pickers.items():
        renderer.picker = picker
        out, pts = [], []
        for i in range(0, n, 16):
            frames, points = renderer.render_with_points(shapes[i:i + 16])
            out.append(frames)
            pts.append(points)
        frames, points = np.concatenate(out), np.concatenate(pts)
        opened = np.array([lip_gap(p) > lip_gap(source.points) + 2.0 for p in points])
        result[name] = measure(frames, points, opened)
        print(name, {k: round(v, 2) for k, v in result[name].items()})
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
