"""README pictures from real output: a contact sheet (driver row over output row) and an animated GIF.

    python tools/make_contact_sheet.py OUTPUT.mp4 DRIVER.mp4 [--frames 0,30,48,...] [--name demo]

Writes docs/images/NAME_sheet.png and docs/images/NAME.gif (side by side: driver | output, every 2nd frame).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from reenact.io.video import read_frames

ROOT = Path(__file__).resolve().parent.parent


def fit(img: np.ndarray, height: int) -> np.ndarray:
    return cv2.resize(img, (round(img.shape[1] * height / img.shape[0]), height), interpolation=cv2.INTER_AREA)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("output", type=Path)
    ap.add_argument("driver", type=Path)
    ap.add_argument("--frames", default="")
    ap.add_argument("--name", default="demo")
    ap.add_argument("--height", type=int, default=180)
    ap.add_argument("--crop", default="", help="x0,y0,x1,y1 crop of the output (e.g. the face)")
    args = ap.parse_args()
    with read_frames(args.output) as out_frames, read_frames(args.driver) as drv_frames:
        pairs = [(d.rgb, o.rgb) for d, o in zip(drv_frames, out_frames)]
    if args.crop:
        x0, y0, x1, y1 = (int(v) for v in args.crop.split(","))
        pairs = [(d, o[y0:y1, x0:x1]) for d, o in pairs]
    picks = [int(i) for i in args.frames.split(",")] if args.frames else list(np.linspace(0, len(pairs) - 1, 8).astype(int))
    h = args.height
    top = np.hstack([fit(pairs[i][0], h) for i in picks])
    bottom = np.hstack([fit(pairs[i][1], h) for i in picks])
    if bottom.shape[1] != top.shape[1]:
        bottom = cv2.resize(bottom, (top.shape[1], h))
    sheet = np.vstack([top, np.full((4, top.shape[1], 3), 255, np.uint8), bottom])
    out_dir = ROOT / "docs" / "images"
    out_dir.mkdir(parents=True, exist_ok=True)
    Image.fromarray(sheet).save(out_dir / f"{args.name}_sheet.png", optimize=True)
    gif = [Image.fromarray(np.hstack([fit(d, 150), fit(o, 150)])) for d, o in pairs[::3]]
    gif = [g.convert("P", palette=Image.ADAPTIVE, colors=128) for g in gif]
    gif[0].save(out_dir / f"{args.name}.gif", save_all=True, append_images=gif[1:], duration=125, loop=0, optimize=True)
    print(out_dir / f"{args.name}_sheet.png", out_dir / f"{args.name}.gif")


if __name__ == "__main__":
    main()
