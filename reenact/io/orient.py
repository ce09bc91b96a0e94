"""Upright frames from the display matrix (rotated phone videos).

Phones store portrait video as landscape pixels plus a 3x3 display matrix (ISO-BMFF `tkhd`, FFmpeg's
AV_FRAME_DATA_DISPLAYMATRIX: nine int32, 16.16 fixed point except the last column). We apply it the way the `ffmpeg`
command does (its autorotate rules), restricted to multiples of 90 degrees: any other angle is rounded to the nearest
quarter turn, because a non-axis-aligned rotation would need resampling and a frame-size change that no real phone
produces.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import av
import numpy as np

Transform = Callable[[np.ndarray], np.ndarray]


def _identity(img: np.ndarray) -> np.ndarray:
    return img


def display_matrix(frame: av.VideoFrame) -> np.ndarray | None:
    """The frame's display matrix as nine int32 values, or None when it has none."""
    side: Any = frame.side_data  # PyAV types this loosely; it iterates SideData objects
    for sd in side:
        if sd.type.name == "DISPLAYMATRIX":
            return np.frombuffer(bytes(sd), dtype="<i4").copy()
    return None


def rotation_degrees(matrix: np.ndarray | None) -> int:
    """Counter-clockwise display rotation in degrees (0, 90, 180, 270) encoded by `matrix`.

    This is the angle the stored picture must be turned counter-clockwise to look upright (same sign convention as
    PyAV's `VideoFrame.rotation` and `VideoStream.set_display_rotation`), normalised to [0, 360).
    """
    if matrix is None:
        return 0
    m = matrix.astype(np.float64) / 65536.0
    s0, s1 = math.hypot(m[0], m[3]), math.hypot(m[1], m[4])
    if s0 == 0.0 or s1 == 0.0:
        return 0  # degenerate matrix: ignore it rather than guess
    ccw = -math.degrees(math.atan2(m[1] / s1, m[0] / s0))  # FFmpeg's av_display_rotation_get
    return int(round(ccw / 90.0)) % 4 * 90


def transform_for(matrix: np.ndarray | None) -> tuple[Transform, bool]:
    """(function that makes an (H, W, C) frame upright, whether it swaps width and height).

    Mirrors FFmpeg's autorotate: theta = clockwise angle; 90 -> transpose "clock" (or "cclock_flip" when mirrored),
    270 -> "cclock" (or "clock_flip"), 180 -> hflip and/or vflip from the matrix signs, 0 -> vflip if mirrored.
    """
    if matrix is None:
        return _identity, False
    cw = (360 - rotation_degrees(matrix)) % 360
    m0, m3, m4 = int(matrix[0]), int(matrix[3]), int(matrix[4])
    if cw == 90:
        if m3 > 0:
            return (lambda img: np.ascontiguousarray(img.transpose(1, 0, 2))), True  # cclock_flip
        return (lambda img: np.ascontiguousarray(np.rot90(img, -1))), True  # clock
    if cw == 270:
        if m3 < 0:
            return (lambda img: np.ascontiguousarray(np.rot90(img, -1)[::-1])), True  # clock_flip
        return (lambda img: np.ascontiguousarray(np.rot90(img, 1))), True  # cclock
    if cw == 180:
        h, v = m0 < 0, m4 < 0
        if h and v:
            return (lambda img: np.ascontiguousarray(img[::-1, ::-1])), False
        if h:
            return (lambda img: np.ascontiguousarray(img[:, ::-1])), False
        if v:
            return (lambda img: np.ascontiguousarray(img[::-1])), False
        return _identity, False
    if m4 < 0:
        return (lambda img: np.ascontiguousarray(img[::-1])), False
    return _identity, False
