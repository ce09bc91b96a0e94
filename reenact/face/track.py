"""Video face tracking: the mesh's ROI comes from the previous frame's landmarks; re-detect when lost.

As in MediaPipe's face_landmark_front graph: detection runs only when there is no tracked face; each frame's mesh
gives the next frame's ROI (box of the 468 points, rotation from eye corner 33 to 263, 1.5x). When the mesh's
presence score drops below the threshold the face is dropped and the detector runs on that same frame, so a
frame is reported missing (None) only when the detector finds nothing either.

`update_many` tracks a chunk of frames with batched mesh calls (a CPU runs a batch of 8 crops at about half the
cost per crop of single calls). Pass 1 crops every frame of the chunk with the last tracked ROI. A frame whose own
landmarks give an ROI within `DRIFT` of the one it was cropped with is kept as is: that is no further from its
ideal crop than MediaPipe's previous-frame ROI is. Frames that moved further are re-run in one batch with the ROI
of their own pass-1 landmarks (a better crop than the previous frame's); frames where the face was lost take the
sequential path (detector). The result matches frame-by-frame tracking to well under 1 % of the eye distance.

The attention mesh (the default) is more sensitive to its crop: against MediaPipe's refined mesh on the tuning clips,
its lips, lids and brows left 0.07-0.27 of their motion unreproduced this way, 0.02-0.19 with a second batched pass
that crops every frame with its predecessor's ROI, as frame-by-frame tracking does. The rendered output did not tell
them apart (held-out clips: mouth / eyes / brows 0.34 / 0.97 / 0.67 unreproduced with this, 0.35 / 0.98 / 0.67 with
the second pass), which cost `drive` 14 % of its wall time on the sample; it is not used.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Protocol

import numpy as np

from reenact.face.detect import Detection
from reenact.face.landmarks import MeshModel, Roi, roi_from_detection, roi_from_landmarks
from reenact.face.result import MIN_PRESENCE, FaceLandmarks, as_rgb, make_landmarks

DRIFT = 0.04  # largest accepted ROI change (centre shift and size change as a fraction of the side; angle in rad)


def drifted(used: Roi, own: Roi, tol: float) -> bool:
    """Whether a frame's own landmark ROI is further than `tol` from the ROI its crop was taken with."""
    shift = float(np.linalg.norm(own.centre - used.centre)) / used.side
    angle = abs((own.angle - used.angle + np.pi) % (2 * np.pi) - np.pi)
    return shift > tol or abs(np.log(own.side / used.side)) > tol or angle > tol


class Analyzer(Protocol):
    """What the tracker uses of a reenact.face.analyzer.FaceAnalyzer (which builds trackers: `FaceAnalyzer.tracker()`),
    so this module sits below the analyzer."""

    detector: Callable[[list[np.ndarray]], list[list[Detection]]]
    mesh: MeshModel


class FaceTracker:
    """Stateful per-video tracker of one face (the largest when (re)detecting, else the one nearest the last)."""

    def __init__(self, analyzer: Analyzer, min_presence: float = MIN_PRESENCE) -> None:
        self.analyzer = analyzer
        self.min_presence = min_presence
        self.roi: Roi | None = None
        self.last_centre: np.ndarray | None = None
        self.detections_run = 0  # how many frames needed the detector (for reports / benchmarks)

    def reset(self) -> None:
        self.roi = None
        self.last_centre = None

    def _detect_roi(self, rgb: np.ndarray) -> Roi | None:
        self.detections_run += 1
        dets = self.analyzer.detector([rgb])[0]
        if not dets:
            return None
        if self.last_centre is not None:  # same person as before the loss, if they are still in frame
            det = min(dets, key=lambda d: float(np.linalg.norm((d.box[:2] + d.box[2:]) / 2 - self.last_centre)))
        else:
            det = max(dets, key=lambda d: float(np.prod(d.box[2:] - d.box[:2])))
        return roi_from_detection(det.box, det.keypoints)

    def update(self, rgb: np.ndarray, iris: bool = True) -> FaceLandmarks | None:
        """Landmarks of the tracked face in this frame, or None when no face is found in it.

        `iris=False` returns the 468 mesh points only (FaceMesh's own lids); refine the eyes of many frames at once
        with `add_irises` (batched, much faster per frame on a CPU).
        """
        rgb = as_rgb(rgb, "video frame")
        if self.roi is not None:
            lm = self._mesh(rgb, iris)
            if lm is not None:
                return lm
        self.roi = self._detect_roi(rgb)  # no face tracked, or it was just lost: detect on this frame
        return self._mesh(rgb, iris) if self.roi is not None else None

    def update_many(self, frames: list[np.ndarray], iris: bool = True) -> list[FaceLandmarks | None]:
        """`update` over consecutive frames, with batched mesh calls (see the module note) and one iris batch."""
        frames = [as_rgb(f, "video frame") for f in frames]
        result: list[FaceLandmarks | None] = [None] * len(frames)
        start = 0
        while start < len(frames) and self.roi is None:  # nothing tracked: frame by frame until a face is found
            result[start] = self.update(frames[start], iris=False)
            start += 1
        if start < len(frames):
            self._track_batch(frames, result, start)
        if iris:
            add_irises(self.analyzer.mesh, frames, result)
        return result

    def _track_batch(self, frames: list[np.ndarray], result: list[FaceLandmarks | None], start: int) -> None:
        """Mesh frames[start:] (468 points) into `result`: pass 1 with the tracked ROI, pass 2 for frames that moved."""
        assert self.roi is not None
        used, todo = self.roi, frames[start:]
        pts, scores = self.analyzer.mesh(todo, [used] * len(todo), iris=False)
        redo: list[tuple[int, Roi]] = []
        for i, (p, s) in enumerate(zip(pts, scores), start):
            if s < self.min_presence:
                continue  # lost: the sequential path below re-detects
            own = roi_from_landmarks(p)
            if drifted(used, own, DRIFT):
                redo.append((i, own))
            else:
                result[i] = make_landmarks(p, float(s))
        if redo:
            pts, scores = self.analyzer.mesh([frames[i] for i, _ in redo], [r for _, r in redo], iris=False)
            for (i, _), p, s in zip(redo, pts, scores):
                if s >= self.min_presence:
                    result[i] = make_landmarks(p, float(s))
        for i in range(start, len(frames)):
            if result[i] is None:  # lost in both passes: track from the previous frame or re-detect, as `update` does
                prev = result[i - 1] if i else None
                self.roi = roi_from_landmarks(prev.points) if prev is not None else None
                if self.roi is not None:
                    self.last_centre = self.roi.centre.copy()
                result[i] = self.update(frames[i], iris=False)
        last = result[-1]
        self.roi = roi_from_landmarks(last.points) if last is not None else None
        if self.roi is not None:
            self.last_centre = self.roi.centre.copy()

    def _mesh(self, rgb: np.ndarray, iris: bool = True) -> FaceLandmarks | None:
        assert self.roi is not None
        pts, scores = self.analyzer.mesh([rgb], [self.roi], iris=iris)
        if scores[0] < self.min_presence:
            self.roi = None
            return None
        self.roi = roi_from_landmarks(pts[0])
        self.last_centre = self.roi.centre.copy()
        return make_landmarks(pts[0], float(scores[0]))


def add_irises(mesh: MeshModel, frames: list[np.ndarray], faces: list[FaceLandmarks | None]) -> None:
    """Refine the eyelids of each 468-point face of `faces` with the iris model's contours and append its 10 iris
    points (in place), one batch of eye crops for all. Nothing to do with the attention mesh (the default), whose
    faces come with their refined lids and irises."""
    found = [(rgb, lm) for rgb, lm in zip(frames, faces) if lm is not None]
    if not found or mesh.iris is None:
        return
    refined = mesh.refine_eyes([rgb for rgb, _ in found], np.stack([lm.points for _, lm in found]))
    for (_, lm), points in zip(found, refined):
        lm.points = points.astype(np.float32)


def track_video(frames: Iterable[np.ndarray], analyzer: Analyzer) -> Iterator[FaceLandmarks | None]:
    """Per-frame landmarks of the main face of a video (None for frames without a face); streams, O(1) memory."""
    tracker = FaceTracker(analyzer)
    for frame in frames:
        yield tracker.update(frame)
