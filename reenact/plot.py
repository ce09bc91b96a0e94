"""A readable PNG plot of a parameter track (one strip per channel), drawn with OpenCV (no plotting library)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from reenact.params import RANGES, Track

if TYPE_CHECKING:
    from reenact.io.atomic import OutputGroup

DEFAULT_CHANNELS = ("jawOpen", "mouthSmileLeft", "mouthSmileRight", "mouthFunnel", "eyeBlinkLeft", "eyeBlinkRight",
                    "browInnerUp", "browDownLeft", "yaw", "pitch")
COLORS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
          (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]


def plot_track(track: Track, channels: tuple[str, ...] = DEFAULT_CHANNELS, width: int = 1200, strip: int = 70,
               missing: list[int] | None = None) -> np.ndarray:
    """(H, W, 3) uint8 RGB image: one labelled strip per channel over time; frames without a face shaded."""
    names = [c for c in channels if c in track.channels]
    left, right, top, bottom = 150, 20, 10, 30
    h = top + bottom + strip * len(names)
    img = np.full((h, width, 3), 255, np.uint8)
    t = track.times
    span = max(float(t[-1] - t[0]), 1e-6) if len(t) else 1.0
    xs = left + (t - (t[0] if len(t) else 0)) / span * (width - left - right)
    for i in missing or []:
        if 0 <= i < len(xs):
            x = int(xs[i])
            img[top:h - bottom, max(left, x - 1):x + 2] = (235, 235, 235)
    for k, name in enumerate(names):
        y0 = top + k * strip
        lo, hi = RANGES[name]
        v = track.column(name)
        if not np.isfinite(lo) or not np.isfinite(hi) or hi - lo > 90:  # pose/gaze: scale to the data
            lo, hi = float(np.nanmin(v)) - 1e-3, float(np.nanmax(v)) + 1e-3
        ys = y0 + strip - 8 - (np.clip(v, lo, hi) - lo) / (hi - lo) * (strip - 16)
        cv2.line(img, (left, y0 + strip - 8), (width - right, y0 + strip - 8), (210, 210, 210), 1)
        pts = np.stack([xs, ys], 1).round().astype(np.int32)
        cv2.polylines(img, [pts], False, COLORS[k % len(COLORS)], 2, cv2.LINE_AA)
        cv2.putText(img, name, (8, y0 + strip // 2 + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(img, f"{hi:.3g}", (left - 40, y0 + 14), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (90, 90, 90), 1, cv2.LINE_AA)
    for s in range(0, int(span) + 1, max(1, int(span) // 10 or 1)):
        x = int(left + s / span * (width - left - right))
        cv2.putText(img, f"{s}s", (x - 8, h - 10), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    return img


def save_plot(track: Track, path: Path, overwrite: bool = False, missing: list[int] | None = None,
              group: OutputGroup | None = None) -> Path:
    """Write the plot (staged in `group`, when given, to appear with the command's other outputs)."""
    from reenact.io.image import write_image

    return write_image(path, plot_track(track, missing=missing), overwrite=overwrite, group=group)
