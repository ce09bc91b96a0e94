"""What the analyzer finds for one face (FaceLandmarks) and the image checks shared by the analyzer and the tracker.

Below both reenact.face.analyzer and reenact.face.track, so the tracker needs no analyzer import.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from reenact.errors import InputError
from reenact.face.pose import Pose, estimate_pose

MIN_PRESENCE = 0.5  # MediaPipe's default min_tracking_confidence


@dataclass
class FaceLandmarks:
    points: np.ndarray  # (478, 3) float32: x, y px of the original frame; z px-scaled (+ away from camera)
    box: np.ndarray  # (4,) float32 xyxy px: bounding box of the 468 mesh points
    score: float  # face presence probability from the mesh network, in [0, 1]
    pose: Pose

    def to_record(self) -> dict:
        """JSON-friendly dict (see docs/face.md for the per-frame format)."""
        return {"score": round(self.score, 4), "box": [round(float(v), 2) for v in self.box], "pose": self.pose.as_dict(),
                "landmarks": np.round(self.points, 2).tolist()}


def as_rgb(image: np.ndarray, name: str = "image") -> np.ndarray:
    """Accept uint8 RGB, grayscale or RGBA arrays; return contiguous uint8 (H, W, 3)."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise InputError(f"{name}: expected a uint8 image array, got {getattr(image, 'dtype', type(image))}; decode it with reenact.io first.")
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = image[..., :3]
    if image.ndim != 3 or image.shape[2] != 3 or min(image.shape[:2]) < 8:
        raise InputError(f"{name}: expected an (H, W, 3) image at least 8 px on a side, got shape {image.shape}.")
    return np.ascontiguousarray(image)


def make_landmarks(points: np.ndarray, score: float) -> FaceLandmarks:
    xy = points[:468, :2]
    box = np.concatenate([xy.min(0), xy.max(0)]).astype(np.float32)
    return FaceLandmarks(points=points.astype(np.float32), box=box, score=float(score), pose=estimate_pose(points))
