"""FaceAnalyzer: detection + dense landmarks + pose for photos; the entry point of reenact.face."""

from __future__ import annotations

import numpy as np
import torch

from reenact.errors import InputError, NoFaceError
from reenact.face.detect import CONFIGS, NMS_IOU, AutoDetector, Detection, iou, make_detector
from reenact.face.landmarks import MeshModel, Roi, roi_from_detection
from reenact.face.result import MIN_PRESENCE, FaceLandmarks, as_rgb, make_landmarks
from reenact.face.track import FaceTracker

# FaceLandmarks and its helpers live in reenact.face.result (the tracker needs them without the analyzer); they stay
# importable from here.
__all__ = ["MIN_FACE_PX", "MIN_PRESENCE", "FaceAnalyzer", "FaceLandmarks", "as_rgb", "check_face", "detect_tiles",
           "make_landmarks"]

MIN_FACE_PX = 24  # below this the 192 px mesh crop is upsampled > 10x and the mesh is unreliable
MAX_OUTSIDE = 0.25  # largest fraction of the face box allowed outside the image


def describe(dets: list[Detection]) -> str:
    return "; ".join(f"face {i}: box ({d.box[0]:.0f}, {d.box[1]:.0f}, {d.box[2]:.0f}, {d.box[3]:.0f}) score {d.score:.2f}"
                     for i, d in enumerate(dets))


class FaceAnalyzer:
    """Find faces and their 478-point meshes.

    `detector`: "auto" (BlazeFace short range; full range only for an image/frame where short range finds no face,
    e.g. a small face in a large photo; for a photo, overlapping tiles where neither finds one), "short" (short
    range only) or "full" (full range only). Tracking re-detection uses the same `self.detector`. `mesh`:
    "attention" (MediaPipe's attention mesh, the default) or "plain" (FaceMesh + iris model); see
    reenact.face.landmarks.
    """

    def __init__(self, device: torch.device = torch.device("cpu"), detector: str = "auto", iris: bool = True,
                 mesh: str = "attention") -> None:
        self.device = device
        self.detector = make_detector(detector, device)
        self.mesh = MeshModel(device, iris=iris, model=mesh)

    def detect(self, rgb: np.ndarray, name: str = "image") -> list[Detection]:
        """Faces in one RGB uint8 image, sorted left to right; with the "auto" detector, where the whole image
        shows none, the faces of overlapping tiles (detect_tiles)."""
        rgb = as_rgb(rgb, name)
        found = self.detector([rgb])[0]
        if found or not isinstance(self.detector, AutoDetector):
            return found
        return detect_tiles(self.detector, rgb)

    def landmarks(self, frames: list[np.ndarray], rois: list[Roi]) -> list[FaceLandmarks | None]:
        """Batched mesh for (frame, ROI) pairs; None where the mesh network sees no face."""
        pts, scores = self.mesh(frames, rois)
        return [make_landmarks(p, s) if s >= MIN_PRESENCE else None for p, s in zip(pts, scores)]

    def analyze_all(self, rgb: np.ndarray, name: str = "image", both_ranges: bool = False) -> list[FaceLandmarks]:
        """Every face in the image (left to right), meshes computed in one batch. both_ranges (with the "auto"
        detector): short- and full-range detections merged, which also finds the small faces of a group photo (the
        indices then differ from `analyze(face=N)`'s)."""
        rgb = as_rgb(rgb, name)
        dets = self.detector.both(rgb) if both_ranges and isinstance(self.detector, AutoDetector) else self.detect(rgb, name)
        out = self.landmarks([rgb] * len(dets), [roi_from_detection(d.box, d.keypoints) for d in dets])
        return [f for f in out if f is not None]

    def analyze(self, rgb: np.ndarray, face: int | None = None, name: str = "image") -> FaceLandmarks:
        """The largest face (or the `face`-th from the left, 0-based) with its mesh and pose.

        Raises NoFaceError (naming `name`) when there is no face or `face` is out of range, InputError when the
        chosen face is too small or cut off by the image border.
        """
        rgb = as_rgb(rgb, name)
        dets = self.detect(rgb, name)
        if not dets:
            raise NoFaceError(f"No face found in {name}; use a photo where one face is clearly visible and at least {MIN_FACE_PX * 2} px wide.")
        if face is None:
            det = max(dets, key=lambda d: float(np.prod(d.box[2:] - d.box[:2])))
        elif 0 <= face < len(dets):
            det = dets[face]
        else:
            raise NoFaceError(f"{name} has {len(dets)} face(s), so face {face} does not exist (0-based, left to right): {describe(dets)}.")
        check_face(det, rgb.shape, name)
        lm = self.landmarks([rgb], [roi_from_detection(det.box, det.keypoints)])[0]
        if lm is None:
            raise NoFaceError(f"The face found in {name} could not be meshed (presence below {MIN_PRESENCE}); use a clearer, frontal photo.")
        return lm

    def tracker(self) -> FaceTracker:
        return FaceTracker(self)


TILES = 3  # tiles per longer side (overlapping by half): a face a tenth of a photo fills a third of a tile


def detect_tiles(detector: object, rgb: np.ndarray) -> list[Detection]:
    """Faces found in overlapping square tiles of a photo, in photo pixels, left to right.

    The detectors see the whole photo letterboxed to 128 or 192 px: a face a tenth of a 12000x9000 photo's width
    (1170 px, still 125 px after --max-size 1280) is then 12-19 input px with nothing around it to recognise, and
    is missed. In a tile a third of the longer side it is three times larger. Runs only when the whole image shows
    no face, one batched call for all tiles; a face seen in two tiles is kept once (the higher score).
    """
    h, w = rgb.shape[:2]
    side = min(max(h, w) // TILES, h, w)
    if side < 2 * MIN_FACE_PX:
        return []
    step = max(side // 2, 1)
    ys = sorted({*range(0, h - side + 1, step), h - side})
    xs = sorted({*range(0, w - side + 1, step), w - side})
    corners = [(x, y) for y in ys for x in xs]
    tiles = [np.ascontiguousarray(rgb[y:y + side, x:x + side]) for x, y in corners]
    found: list[Detection] = []
    for (x, y), dets in zip(corners, detector(tiles)):  # type: ignore[operator]
        shift = np.array([x, y], np.float32)
        found += [Detection((d.box.reshape(2, 2) + shift).ravel(), d.score, d.keypoints + shift, d.model, side)
                  for d in dets]
    kept: list[Detection] = []
    for d in sorted(found, key=lambda d: -d.score):
        if not kept or iou(d.box, np.stack([k.box for k in kept])).max() < NMS_IOU:
            kept.append(d)
    return sorted(kept, key=lambda d: float(d.box[0] + d.box[2]))


def check_face(det: Detection, shape: tuple[int, ...], name: str) -> None:
    """InputError when a face is too small or mostly outside the frame."""
    w = det.width
    if w < MIN_FACE_PX:
        raise InputError(f"The face in {name} is only {w:.0f} px wide; use a larger or closer image (at least {MIN_FACE_PX} px, ideally > 100 px).")
    h, wi = shape[:2]
    config = CONFIGS[det.model]
    if w * config.size / (det.view or max(h, wi)) < config.min_box:  # measured in the tile it was found in  # at the detector's smallest box: the face may be smaller still
        raise InputError(f"The face in {name} is too small for its {wi}x{h} image to be measured reliably (box {w:.0f} px); "
                         f"crop the image around the face or use a closer photo (a face at least 1/{config.size / config.min_box:.0f} of the longer side).")
    box = det.box.astype(np.float64)
    inside = np.clip(box, [0, 0, 0, 0], [wi, h, wi, h])
    area = np.prod(box[2:] - box[:2])
    kept = np.prod(np.clip(inside[2:] - inside[:2], 0, None))
    if area > 0 and 1 - kept / area > MAX_OUTSIDE:
        raise InputError(f"The face in {name} is cut off by the image border ({100 * (1 - kept / area):.0f}% outside); use an image with the whole face in frame.")
