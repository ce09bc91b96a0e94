"""Check a refiner on photos of people it never saw, and record the result in its contract.

The held-out pairs are later frames of the training people; they say nothing about a stranger's photo. A refiner
that learned those people's mouths and skin blurs and tints everyone else (docs/refiner.md), so before the renderer
uses one (`reenact.render.refine.gate`), its contract must also say how it does here:

* renders each photo with a mouth opening, a blink and a smile, warp-only and refined;
* sharpness: variance of the Laplacian over the face box, refined / warp-only (below ~0.9 the refiner blurs);
* skin change: mean |refined - warp-only| (0..255) on the face away from the rendered mouth and eyes, where a warp
  needs no help;
* identity: cosine similarity of each render to the photo (the identity network), warp-only and refined;
* mouth opening: the inner-lip gap the face tracker measures on the jaw-open render, refined / warp-only. A refiner
  that fills an open mouth with lip- or tongue-coloured paint makes it read as less open: to the tracker, to an
  expression classifier (surprise stops being recognised) and to a viewer.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from reenact.params import ARKIT52
from reenact.render.shade import luminance as luma

TESTS = (("jawOpen", 0.6), ("eyeBlinkLeft", 1.0), ("mouthSmileLeft", 0.8))  # eyeBlinkLeft also closes the right eye
TILE = 192
INNER_LIPS = ((13, 14), (82, 87), (312, 317))  # MediaPipe upper/lower inner-lip pairs: centre, left, right


def lip_gap(analyzer, frame: np.ndarray) -> float:
    """Mean inner-lip gap (px) of the largest face in `frame` as the face tracker sees it."""
    p = analyzer.analyze(frame).points
    return float(np.mean([p[lo, 1] - p[up, 1] for up, lo in INNER_LIPS]))


def _skin_mask(points: np.ndarray, shape: tuple[int, int], face: tuple[slice, slice]) -> np.ndarray:
    """(H, W) bool: the face box minus boxes around the mouth and both eyes."""
    mask = np.zeros(shape, bool)
    mask[face] = True
    for group in ((61, 291, 0, 17), (33, 133, 159, 145), (362, 263, 386, 374)):
        gx, gy = points[list(group), 0], points[list(group), 1]
        pad = 0.25 * (gx.max() - gx.min())
        mask[max(int(gy.min() - pad), 0):int(gy.max() + pad), max(int(gx.min() - pad), 0):int(gx.max() + pad)] = False
    return mask


def check_unseen(refiner, photos: list[Path], models=None, sheet: Path | None = None) -> dict[str, dict[str, float]]:
    """Per photo: identity (warp, refined), sharpness ratio, skin change and mouth-opening ratio of `refiner` (a
    render.refine.Refiner).

    sheet: also write an image, one row per photo: the face in the three renders warp-only, then refined."""
    from reenact.analysis import Models, load_source
    from reenact.face.analyzer import FaceAnalyzer
    from reenact.identity import IdentityChecker
    from reenact.render.renderer import FaceRenderer

    models = models or Models()
    # The mouth-opening gate (render.refine.MOUTH_OPEN_MIN/MAX) reads lips with the plain FaceMesh, as when it was
    # set: the attention mesh reads lips by their shape more than by their pixels (a dark cavity painted over the lips
    # read as nearly shut, the lower 3/4 of the opening painted over as more open), so it cannot see this failure.
    lips = FaceAnalyzer(models.device, mesh="plain")
    out: dict[str, dict[str, float]] = {}
    rows = []
    for photo in photos:
        src = load_source(photo, models)
        shapes = np.repeat(src.shapes[None], len(TESTS), 0)  # (3, 52)
        for row, (name, value) in enumerate(TESTS):
            shapes[row, ARKIT52.index(name)] = value
            if name == "eyeBlinkLeft":
                shapes[row, ARKIT52.index("eyeBlinkRight")] = value
        warp, points = FaceRenderer(src.image, src.points, src.shapes, models.rig, models.device, None).render_with_points(shapes)
        refined, _ = FaceRenderer(src.image, src.points, src.shapes, models.rig, models.device, refiner).render_with_points(shapes)
        x0, y0 = np.maximum(np.floor(src.points[:, :2].min(0)).astype(int), 0)
        x1, y1 = np.ceil(src.points[:, :2].max(0)).astype(int)
        face = (slice(y0, y1), slice(x0, x1))
        sharp = lambda frames: float(np.mean([cv2.Laplacian(luma(f[face]), cv2.CV_32F).var() for f in frames]))
        skin = np.stack([_skin_mask(p, src.image.shape[:2], face) for p in points])  # (3, H, W) around each target mesh
        checker = IdentityChecker(models.embedder, src.image, src.points)
        out[photo.name] = {
            "identity_warp": round(float(np.mean(checker.check(list(warp), list(points)))), 4),
            "identity_refined": round(float(np.mean(checker.check(list(refined), list(points)))), 4),
            "sharpness_ratio": round(sharp(refined) / max(sharp(warp), 1e-6), 4),
            "skin_change": round(float(np.abs(refined.astype(np.float32) - warp.astype(np.float32)).mean(-1)[skin].mean()), 3),
            "mouth_open_ratio": round(lip_gap(lips, refined[0]) / max(lip_gap(lips, warp[0]), 1e-3), 4),
        }
        tile = lambda im: cv2.resize(np.ascontiguousarray(im[face]), (TILE, TILE), interpolation=cv2.INTER_AREA)
        rows.append(np.concatenate([tile(f) for f in (*warp, *refined)], 1))
    if sheet is not None and rows:
        grid = np.concatenate(rows, 0)
        header = np.full((28, grid.shape[1], 3), 255, np.uint8)
        labels = [f"{kind}: {name}" for kind in ("warp", "refined") for name in ("jaw open", "blink", "smile")]
        for k, label in enumerate(labels):
            cv2.putText(header, label, (k * TILE + 4, 19), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        sheet.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(sheet), cv2.cvtColor(np.concatenate([header, grid], 0), cv2.COLOR_RGB2BGR))
    return out


def summarise(per_photo: dict[str, dict[str, float]]) -> dict:
    """The worst case over the photos: what the gate reads (reenact.render.refine.gate)."""
    vals = list(per_photo.values())
    return {"photos": sorted(per_photo),
            "sharpness_min": min(v["sharpness_ratio"] for v in vals),
            "skin_change_max": max(v["skin_change"] for v in vals),
            "mouth_open_min": min(v["mouth_open_ratio"] for v in vals),
            "mouth_open_max": max(v["mouth_open_ratio"] for v in vals),
            "identity_drop_max": round(max(v["identity_warp"] - v["identity_refined"] for v in vals), 4)}


def record_unseen(directory: Path | None, photos: list[Path], sheet: Path | None = None) -> dict:
    """Check the refiner in `directory` (default weights/) on `photos` and write the summary into its contract's
    extra["unseen"] (the weights file is unchanged, so its sha256 stays valid). Returns the summary."""
    from reenact.render.refine import Refiner
    from reenact.weights import load_model, record_extra

    per_photo = check_unseen(Refiner(net=load_model("refiner", directory=directory)), photos, sheet=sheet)
    summary = {**summarise(per_photo), "per_photo": per_photo}
    record_extra("refiner", "unseen", summary, directory)
    return summary

