"""Shared helpers for the media layer: input checks, PyAV error mapping, rational frame rates.

Every failure to read a media file becomes a `MediaError` whose message names the file and says what to do.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Literal

import av
import av.container

from reenact.errors import InputError, MediaError

PathLike = str | Path
Kind = Literal["video", "audio", "image", "media"]

# Frame rates that people mean when they type a rounded float (29.97 -> 30000/1001).
_NTSC_RATES = (Fraction(24000, 1001), Fraction(30000, 1001), Fraction(48000, 1001), Fraction(60000, 1001),
               Fraction(120000, 1001))

_WHAT_TO_DO = {
    "video": "give a video file FFmpeg can read (MP4, MOV, MKV, WebM, AVI)",
    "audio": "give an audio file FFmpeg can read (WAV, MP3, M4A, FLAC, OGG) or a video with a sound track",
    "image": "give a JPEG, PNG or WebP image",
    "media": "give a media file FFmpeg can read",
}


def what_to_do(kind: Kind) -> str:
    return _WHAT_TO_DO[kind]


def check_input_file(path: PathLike, kind: Kind) -> Path:
    """Return `path` as a Path if it is a non-empty regular file; raise MediaError otherwise."""
    p = Path(path)
    if not p.exists():
        raise MediaError(f"{kind.capitalize()} file not found: {p}; check the path.")
    if p.is_dir():
        raise MediaError(f"{p} is a folder, not a {kind} file; {what_to_do(kind)}.")
    try:
        size = p.stat().st_size
    except OSError as err:
        raise MediaError(f"Cannot read {p} ({err.strerror}); check its permissions.") from err
    if size == 0:
        raise MediaError(f"{p} is empty (0 bytes); the file was not written completely, {what_to_do(kind)}.")
    return p


def open_input(path: PathLike, kind: Kind) -> av.container.InputContainer:
    """Open a media file for reading with PyAV, mapping every failure to MediaError."""
    p = check_input_file(path, kind)
    try:
        return av.open(str(p), mode="r", metadata_errors="ignore")
    except av.error.PermissionError as err:
        raise MediaError(f"Cannot read {p} (permission denied); check its permissions.") from err
    except (av.error.InvalidDataError, av.error.FFmpegError) as err:
        raise MediaError(
            f"{p} is not a readable {kind} file (FFmpeg: {_short(err)}): it may be corrupt, truncated or "
            f"of another type; {what_to_do(kind)}."
        ) from err


def decode_failure(path: Path, kind: Kind, err: Exception | str, at: str) -> MediaError:
    """The MediaError for a file that opened but failed part way through (`at` says where, e.g. "at 3.200 s")."""
    reason = f"FFmpeg: {_short(err)}" if isinstance(err, Exception) else err
    return MediaError(f"{path} is damaged or truncated ({reason}) {at}; re-export or re-download the {kind}.")


def _short(err: Exception) -> str:
    """FFmpeg's error text without the errno prefix and the repeated file name."""
    msg = getattr(err, "strerror", None) or str(err)
    return str(msg).rstrip(".")


def as_fps(value: Fraction | int | float | str) -> Fraction:
    """A frame rate as an exact Fraction: 25, 29.97 (-> 30000/1001), "30000/1001", Fraction(24000, 1001)."""
    if isinstance(value, Fraction):
        fps = value
    elif isinstance(value, int):
        fps = Fraction(value)
    elif isinstance(value, str):
        try:
            fps = Fraction(value.strip())
        except (ValueError, ZeroDivisionError) as err:
            raise InputError(f"Frame rate {value!r} is not a number; use e.g. 25, 29.97 or 30000/1001.") from err
    elif isinstance(value, float):
        ntsc = [r for r in _NTSC_RATES if abs(float(r) - value) < 0.006]
        fps = ntsc[0] if ntsc else Fraction(value).limit_denominator(1001)
    else:
        raise InputError(f"Frame rate {value!r} has an unsupported type; use an int, float, str or Fraction.")
    if fps <= 0 or fps > 1000:
        raise InputError(f"Frame rate {value} is out of range; use a value between 0 and 1000 frames per second.")
    return fps
