"""Video face tracking: the mesh's ROI comes from the previous frame's landmarks; re-detect when lost.

As in MediaPipe's face_landmark_front graph: detection runs only when there is no tracked face; each frame's mesh
gives the next frame's ROI (box of the 468 points, rotation from eye corner 33 to 263, 1.5x). When the mesh's
presence score drops below the threshold the face is dropped and the detector runs on that same frame, so a
frame is reported missing (None) only when the detector finds nothing either.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from reenact.face.analyzer import MIN_PRESENCE, FaceAnalyzer, FaceLandmarks, as_rgb, make_landmarks
from reenact.face.landmarks import Roi, roi_from_detection, roi_from_landmarks


class FaceTracker:
    """Stateful per-video tracker of one face (the largest when (re)detecting, else the one nearest the last)."""

    def __init__(self, analyzer: FaceAnalyzer, min_presence: float = MIN_PRESENCE) -> None:
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

        `iris=False` returns the 468 mesh points only; add the iris of many frames at once with
        `analyzer.mesh.irises(frames, points)` (batched, much faster per frame on a CPU).
        """
        rgb = as_rgb(rgb, "video frame")
        if self.roi is not None:
            lm = self._mesh(rgb, iris)
            if lm is not None:
                return lm
        self.roi = self._detect_roi(rgb)  # no face tracked, or it was just lost: detect on this frame
        return self._mesh(rgb, iris) if self.roi is not None else None

    def _mesh(self, rgb: np.ndarray, iris: bool = True) -> FaceLandmarks | None:
        assert self.roi is not None
        pts, scores = self.analyzer.mesh([rgb], [self.roi], iris=iris)
        if scores[0] < self.min_presence:
            self.roi = None
            return None
        self.roi = roi_from_landmarks(pts[0])
        self.last_centre = self.roi.centre.copy()
        return make_landmarks(pts[0], float(scores[0]))


def track_video(frames: Iterable[np.ndarray], analyzer: FaceAnalyzer) -> Iterator[FaceLandmarks | None]:
    """Per-frame landmarks of the main face of a video (None for frames without a face); streams, O(1) memory."""
    tracker = analyzer.tracker()
    for frame in frames:
        yield tracker.update(frame)
