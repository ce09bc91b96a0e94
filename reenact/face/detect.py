"""BlazeFace short-range face detection: letterbox, network, SSD anchor decode, weighted NMS (as MediaPipe does it).

MediaPipe's settings for face_detection_short_range: 128x128 letterboxed input in [-1, 1]; 896 anchors from 4 SSD
layers with strides (8, 16, 16, 16), fixed anchor size; box/keypoint offsets divided by 128 and scaled by the anchor;
sigmoid scores (logits clipped to +-100), threshold 0.5; weighted NMS at IoU 0.3.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np
import torch

from reenact.device import inference
from reenact.weights import load_model

INPUT = 128
MIN_SCORE = 0.5
NMS_IOU = 0.3


@dataclass
class Detection:
    box: np.ndarray  # (4,) float32 xyxy, pixels of the original image
    score: float
    keypoints: np.ndarray  # (6, 2) px: right eye, left eye, nose tip, mouth, right ear tragion, left ear (subject's)

    @property
    def width(self) -> float:
        return float(self.box[2] - self.box[0])


@lru_cache(maxsize=1)
def anchors() -> np.ndarray:
    """(896, 2) anchor centres in [0, 1] (SSD anchors, strides 8, 16, 16, 16; layers of equal stride share cells)."""
    out = []
    strides = (8, 16, 16, 16)
    i = 0
    while i < len(strides):
        n = 0
        j = i
        while j < len(strides) and strides[j] == strides[i]:
            n += 2  # aspect ratio 1.0 + the interpolated-scale anchor, per layer
            j += 1
        fm = INPUT // strides[i]
        ys, xs = np.meshgrid((np.arange(fm) + 0.5) / fm, (np.arange(fm) + 0.5) / fm, indexing="ij")
        cells = np.stack([xs.ravel(), ys.ravel()], 1)  # (fm*fm, 2), row-major like the NHWC outputs
        out.append(np.repeat(cells, n, axis=0))
        i = j
    return np.concatenate(out).astype(np.float32)


def letterbox_matrix(h: int, w: int, size: int = INPUT) -> np.ndarray:
    """2x3 affine image px -> letterboxed input px (aspect kept, centred, zero border)."""
    k = size / max(h, w)
    return np.array([[k, 0, (size - w * k) / 2], [0, k, (size - h * k) / 2]], np.float64)


def preprocess(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (H, W, 3) -> letterboxed uint8 (128, 128, 3) and its matrix."""
    m = letterbox_matrix(*rgb.shape[:2])
    return cv2.warpAffine(rgb, m, (INPUT, INPUT), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT), m


def decode(reg: np.ndarray, logits: np.ndarray, min_score: float = MIN_SCORE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Raw outputs of one image -> (boxes (N, 4) xyxy, keypoints (N, 6, 2), scores (N,)) in input px, before NMS."""
    scores = (1.0 / (1.0 + np.exp(-np.clip(logits.astype(np.float64), -100.0, 100.0)))).astype(np.float32)
    keep = scores >= min_score
    reg, a = reg[keep].astype(np.float32), anchors()[keep] * INPUT  # anchor centres in input px
    centre = reg[:, :2] + a
    half = reg[:, 2:4] / 2
    boxes = np.concatenate([centre - half, centre + half], 1)
    kps = reg[:, 4:16].reshape(-1, 6, 2) + a[:, None, :]
    return boxes, kps, scores[keep]


def iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    lo = np.maximum(box[:2], boxes[:, :2])
    hi = np.minimum(box[2:], boxes[:, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=1)
    area = lambda b: np.prod(b[..., 2:] - b[..., :2], axis=-1)  # noqa: E731
    return inter / np.maximum(area(box) + area(boxes) - inter, 1e-9)


def weighted_nms(boxes: np.ndarray, kps: np.ndarray, scores: np.ndarray, thr: float = NMS_IOU) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """MediaPipe's weighted NMS: each kept face = score-weighted mean of the boxes overlapping the best one."""
    order = np.argsort(-scores)
    boxes, kps, scores = boxes[order], kps[order], scores[order]
    out = []
    alive = np.ones(len(scores), bool)
    for i in range(len(scores)):  # loops over surviving faces (a handful), not over points
        if not alive[i]:
            continue
        group = alive & (iou(boxes[i], boxes) > thr)
        group[i] = True
        w = scores[group][:, None]
        box = (boxes[group] * w).sum(0) / w.sum()
        kp = (kps[group].reshape(-1, 12) * w).sum(0).reshape(6, 2) / w.sum()
        out.append((box, kp, float(scores[i])))
        alive &= ~group
    return out


class BlazeFaceDetector:
    """Short-range BlazeFace (faces larger than ~1/10 of the image side)."""

    def __init__(self, device: torch.device = torch.device("cpu"), min_score: float = MIN_SCORE) -> None:
        self.device = device
        self.min_score = min_score
        self.net = load_model("blazeface_short", device).to(memory_format=torch.channels_last)

    def __call__(self, frames: list[np.ndarray]) -> list[list[Detection]]:
        """Detect faces in a batch of RGB uint8 frames (any sizes). Returns detections sorted left to right."""
        if not frames:
            return []
        inputs, mats = zip(*(preprocess(f) for f in frames))
        x = torch.from_numpy(np.stack(inputs)).to(self.device).permute(0, 3, 1, 2).float() / 127.5 - 1.0  # (B, 3, 128, 128)
        with inference(self.device):
            reg, logits = self.net(x)
        reg, logits = reg.float().cpu().numpy(), logits.float().cpu().numpy()
        results = []
        for r, lg, m in zip(reg, logits, mats):
            boxes, kps, scores = decode(r, lg, self.min_score)
            dets = []
            for box, kp, score in weighted_nms(boxes, kps, scores):
                k, off = m[0, 0], m[:, 2]  # letterbox is a scale + offset: invert per axis
                dets.append(Detection(box=((box.reshape(2, 2) - off) / k).ravel().astype(np.float32), score=score,
                                      keypoints=((kp - off) / k).astype(np.float32)))
            results.append(sorted(dets, key=lambda d: float(d.box[0] + d.box[2])))
        return results
