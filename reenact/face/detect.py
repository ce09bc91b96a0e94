"""BlazeFace face detection: letterbox, network, SSD anchor decode, weighted NMS (as MediaPipe does it).

Two models share the code, each described by a `DetectorConfig` (MediaPipe's graph settings):
  short range (face_detection_short_range): 128x128 letterboxed input in [-1, 1]; 896 anchors from 4 SSD layers with
    strides (8, 16, 16, 16), 2 anchors per cell; score threshold 0.5.
  full range (face_detection_full_range_sparse): 192x192 letterboxed input in [-1, 1]; 2304 anchors, one per cell of
    one stride-4 layer (48x48); score threshold 0.6.
Both: fixed anchor size, so box/keypoint offsets are input px added to the anchor centre; sigmoid scores (logits
clipped to +-100); weighted NMS at IoU 0.3. `AutoDetector` runs short range and falls back to full range per frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np
import torch

from reenact.device import inference
from reenact.errors import InputError
from reenact.weights import load_model

NMS_IOU = 0.3


@dataclass(frozen=True)
class DetectorConfig:
    weights: str  # weights/NAME.safetensors
    size: int  # square letterboxed input, px
    strides: tuple[int, ...]  # one per SSD layer; consecutive equal strides share the grid
    per_layer: int  # anchors per cell contributed by each layer
    min_score: float
    # Smallest box (input px) whose size can be trusted. The full-range model never reports boxes much under ~9 px
    # of its input: a face of 6-8 px comes out at 8-9 px (measured), so a box near that floor may be a smaller face.
    min_box: float = 0.0


SHORT = DetectorConfig("blazeface_short", 128, (8, 16, 16, 16), 2, 0.5)  # aspect 1.0 + the interpolated scale
FULL = DetectorConfig("blazeface_full", 192, (4,), 1, 0.6, min_box=10.0)  # interpolated_scale_aspect_ratio 0: one anchor per cell
CONFIGS = {"short": SHORT, "full": FULL}


@dataclass
class Detection:
    box: np.ndarray  # (4,) float32 xyxy, pixels of the original image
    score: float
    keypoints: np.ndarray  # (6, 2) px: right eye, left eye, nose tip, mouth, right ear tragion, left ear (subject's)
    model: str = "short"  # which detector found it: "short" or "full" (CONFIGS key)
    view: int = 0  # side (px) of the square tile it was found in (reenact.face.analyzer.detect_tiles); 0: the image

    @property
    def width(self) -> float:
        return float(self.box[2] - self.box[0])


@lru_cache(maxsize=4)
def anchors(config: DetectorConfig = SHORT) -> np.ndarray:
    """(N, 2) anchor centres in [0, 1]: 896 short range, 2304 full range (layers of equal stride share cells)."""
    out = []
    strides = config.strides
    i = 0
    while i < len(strides):
        n = 0
        j = i
        while j < len(strides) and strides[j] == strides[i]:
            n += config.per_layer
            j += 1
        fm = config.size // strides[i]
        ys, xs = np.meshgrid((np.arange(fm) + 0.5) / fm, (np.arange(fm) + 0.5) / fm, indexing="ij")
        cells = np.stack([xs.ravel(), ys.ravel()], 1)  # (fm*fm, 2), row-major like the NHWC outputs
        out.append(np.repeat(cells, n, axis=0))
        i = j
    return np.concatenate(out).astype(np.float32)


def letterbox_matrix(h: int, w: int, size: int) -> np.ndarray:
    """2x3 affine image px -> letterboxed input px (aspect kept, centred, zero border)."""
    k = size / max(h, w)
    return np.array([[k, 0, (size - w * k) / 2], [0, k, (size - h * k) / 2]], np.float64)


def preprocess(rgb: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (H, W, 3) -> letterboxed uint8 (size, size, 3) and its matrix."""
    m = letterbox_matrix(*rgb.shape[:2], size)
    return cv2.warpAffine(rgb, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT), m


def decode(reg: np.ndarray, logits: np.ndarray, min_score: float,
           config: DetectorConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Raw outputs of one image -> (boxes (N, 4) xyxy, keypoints (N, 6, 2), scores (N,)) in input px, before NMS."""
    scores = (1.0 / (1.0 + np.exp(-np.clip(logits.astype(np.float64), -100.0, 100.0)))).astype(np.float32)
    keep = scores >= min_score
    reg, a = reg[keep].astype(np.float32), anchors(config)[keep] * config.size  # anchor centres in input px
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
    """BlazeFace, `model` "short" (faces wider than ~1/10 of the image side) or "full" (down to ~1/20, slower)."""

    def __init__(self, device: torch.device = torch.device("cpu"), min_score: float | None = None, model: str = "short") -> None:
        if model not in CONFIGS:
            raise InputError(f"Unknown BlazeFace model {model!r}; use one of {', '.join(CONFIGS)}.")
        self.config, self.model = CONFIGS[model], model
        self.device = device
        self.min_score = self.config.min_score if min_score is None else min_score
        self.net = load_model(self.config.weights, device).to(memory_format=torch.channels_last)

    def __call__(self, frames: list[np.ndarray]) -> list[list[Detection]]:
        """Detect faces in a batch of RGB uint8 frames (any sizes). Returns detections sorted left to right."""
        if not frames:
            return []
        size = self.config.size
        inputs, mats = zip(*(preprocess(f, size) for f in frames))
        x = torch.from_numpy(np.stack(inputs)).to(self.device).permute(0, 3, 1, 2).float() / 127.5 - 1.0  # (B, 3, size, size)
        with inference(self.device):
            reg, logits = self.net(x)
        reg, logits = reg.float().cpu().numpy(), logits.float().cpu().numpy()
        results = []
        for r, lg, m in zip(reg, logits, mats):
            boxes, kps, scores = decode(r, lg, self.min_score, self.config)
            dets = []
            for box, kp, score in weighted_nms(boxes, kps, scores):
                k, off = m[0, 0], m[:, 2]  # letterbox is a scale + offset: invert per axis
                dets.append(Detection(box=((box.reshape(2, 2) - off) / k).ravel().astype(np.float32), score=score,
                                      keypoints=((kp - off) / k).astype(np.float32), model=self.model))
            results.append(sorted(dets, key=lambda d: float(d.box[0] + d.box[2])))
        return results


class AutoDetector:
    """Short range first (fast; every normal photo or video frame); full range only for the frames where it finds
    nothing, which is what finds a small face in a large photo. Same call as BlazeFaceDetector."""

    def __init__(self, device: torch.device = torch.device("cpu")) -> None:
        self.device = device
        self.short = BlazeFaceDetector(device, model="short")
        self._full: BlazeFaceDetector | None = None  # loaded on first need

    @property
    def full(self) -> BlazeFaceDetector:
        if self._full is None:
            self._full = BlazeFaceDetector(self.device, model="full")
        return self._full

    def __call__(self, frames: list[np.ndarray]) -> list[list[Detection]]:
        results = self.short(frames)
        empty = [i for i, dets in enumerate(results) if not dets]
        if empty:
            for i, dets in zip(empty, self.full([frames[i] for i in empty])):
                results[i] = dets
        return results

    def both(self, frame: np.ndarray) -> list[Detection]:
        """Short- and full-range faces of one frame merged (full-range boxes overlapping a short-range one dropped):
        the small faces of a group photo as well as the large ones, left to right."""
        dets = self.short([frame])[0]
        for d in self.full([frame])[0]:
            if not dets or iou(d.box, np.stack([e.box for e in dets])).max() < 0.3:
                dets.append(d)
        return sorted(dets, key=lambda d: float(d.box[0]))


def make_detector(kind: str, device: torch.device = torch.device("cpu")) -> BlazeFaceDetector | AutoDetector:
    """The detector for kind "auto" (an AutoDetector), "short" or "full" (a BlazeFaceDetector)."""
    if kind == "auto":
        return AutoDetector(device)
    if kind not in CONFIGS:
        raise InputError(f"Unknown face detector {kind!r}; use 'auto' (short range, full range when it finds no face), 'short' or 'full'.")
    return BlazeFaceDetector(device, model=kind)
