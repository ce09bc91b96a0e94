"""Named parameter spaces (AU17, ARKit52, Viseme15, pose, gaze), the linear maps between them, and track files.

One rig underlies every space: the ARKit52 basis *is* the rig (reenact.rig). Action Units and visemes are linear
maps onto it; the tables below are the single source of truth and are reproduced in docs/params.md.

Track files (`Track.read` / `Track.write`):
    reenact   CSV with a `time` column (seconds) + one column per channel named as here; JSON with the same + meta
    openface  OpenFace 2 style `AU01_r`..`AU45_r` columns on the 0-5 scale (+ `timestamp`)
    livelink  Live Link Face CSV: Timecode, BlendShapeCount, 52 PascalCase shapes, head/eye rotations (radians)

CSV formats carry only times: `Track.frame_rate()` takes the rate from them (`grid_fps`), so every format reads
back with the frame count, rate and duration it was written with.
"""

from __future__ import annotations

import csv
import json
import math
import re
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from reenact.errors import TrackError

AU17: tuple[str, ...] = ("AU1", "AU2", "AU4", "AU5", "AU6", "AU7", "AU9", "AU10", "AU12", "AU14", "AU15", "AU17",
                         "AU20", "AU23", "AU25", "AU26", "AU45")

# Apple's ARFaceAnchor.BlendShapeLocation order (eyes L, eyes R, jaw, mouth, brows, cheeks, nose, tongue).
ARKIT52: tuple[str, ...] = (
    "eyeBlinkLeft", "eyeLookDownLeft", "eyeLookInLeft", "eyeLookOutLeft", "eyeLookUpLeft", "eyeSquintLeft",
    "eyeWideLeft", "eyeBlinkRight", "eyeLookDownRight", "eyeLookInRight", "eyeLookOutRight", "eyeLookUpRight",
    "eyeSquintRight", "eyeWideRight", "jawForward", "jawLeft", "jawRight", "jawOpen", "mouthClose", "mouthFunnel",
    "mouthPucker", "mouthLeft", "mouthRight", "mouthSmileLeft", "mouthSmileRight", "mouthFrownLeft", "mouthFrownRight",
    "mouthDimpleLeft", "mouthDimpleRight", "mouthStretchLeft", "mouthStretchRight", "mouthRollLower", "mouthRollUpper",
    "mouthShrugLower", "mouthShrugUpper", "mouthPressLeft", "mouthPressRight", "mouthLowerDownLeft",
    "mouthLowerDownRight", "mouthUpperUpLeft", "mouthUpperUpRight", "browDownLeft", "browDownRight", "browInnerUp",
    "browOuterUpLeft", "browOuterUpRight", "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "noseSneerLeft",
    "noseSneerRight", "tongueOut",
)

# The two eyeBlink columns of ARKIT52 (left, right): the shapes that close an opening, which relative transfer, the
# clip's lid reading, the renderer and the estimator's calibration each treat apart from the rest.
BLINKS: list[int] = [ARKIT52.index("eyeBlinkLeft"), ARKIT52.index("eyeBlinkRight")]

VISEME15: tuple[str, ...] = ("sil", "PP", "FF", "TH", "DD", "kk", "CH", "SS", "nn", "RR", "aa", "E", "I", "O", "U")

POSE: tuple[str, ...] = ("yaw", "pitch", "roll", "tx", "ty", "scale")  # degrees, degrees, degrees, px, px, ratio
GAZE: tuple[str, ...] = ("gazeLeftYaw", "gazeLeftPitch", "gazeRightYaw", "gazeRightPitch")  # degrees
# The eye area's motion modes (reenact.rig.EyeArea, weights/eye_area): a clip's lids, the skin round its eyes and its
# brows, moved about the clip's median, as coefficients of the principal motions of real footage (cm, canonical).
EYE_AREA: tuple[str, ...] = tuple(f"eyeArea{k:02d}" for k in range(1, 17))
# cm along a unit mode. The clips measured reach 4.1 (WolfgangLanger's blinks, mode 3); 20 would move every vertex of
# the area 1.7 cm, past any face: a value beyond it is not a face's motion.
EYE_AREA_LIMIT = 20.0

# How far speech shuts the lips (p, b, m), 0..1, whatever the photo's own opening (reenact.render.renderer.close_lips):
# what `speak` draws, kept in a speech track so that `render` of it draws the same.
SPEECH: tuple[str, ...] = ("lipsShut",)

# Live Link Face swaps a few pairs relative to Apple's order (JawRight before JawLeft, MouthRight before MouthLeft).
LIVELINK52: tuple[str, ...] = tuple(
    n[0].upper() + n[1:] for n in ARKIT52[:15] + ("jawRight", "jawLeft") + ARKIT52[17:21] + ("mouthRight", "mouthLeft")
    + ARKIT52[23:]
)
LIVELINK_EXTRA: tuple[str, ...] = ("HeadYaw", "HeadPitch", "HeadRoll", "LeftEyeYaw", "LeftEyePitch", "LeftEyeRoll",
                                   "RightEyeYaw", "RightEyePitch", "RightEyeRoll")

# Valid range of every channel. Pose translation is unbounded (pixels of the frame).
RANGES: dict[str, tuple[float, float]] = {
    **{c: (0.0, 1.0) for c in AU17 + ARKIT52 + VISEME15 + SPEECH},
    "yaw": (-180.0, 180.0), "pitch": (-180.0, 180.0), "roll": (-180.0, 180.0),
    "tx": (-math.inf, math.inf), "ty": (-math.inf, math.inf), "scale": (0.0, math.inf),
    **{c: (-90.0, 90.0) for c in GAZE},
    **{c: (-EYE_AREA_LIMIT, EYE_AREA_LIMIT) for c in EYE_AREA},
}
ALL_CHANNELS: tuple[str, ...] = AU17 + ARKIT52 + VISEME15 + POSE + GAZE + EYE_AREA + SPEECH
_CANON = {c.lower(): c for c in ALL_CHANNELS}

# Frame rates a track's times are matched against (the rate a file was written at, from its times alone).
STANDARD_FPS: tuple[Fraction, ...] = tuple(
    Fraction(r) for r in ("8", "10", "12", "15", "24000/1001", "24", "25", "30000/1001", "30", "48", "50",
                          "60000/1001", "60", "90", "100", "120", "240"))
MIN_FRAME_FPS = 8  # rows further apart than 1/8 s are keyframes, interpolated at the output rate
MAX_FRAME_FPS = 240  # the highest rate a track is rendered at by itself (`--fps` range)
LIVELINK_FPS = 60  # Live Link Face's timecode rate (the app records at 60 fps unless set to 30)

# ---------------------------------------------------------------- linear maps (documented in docs/params.md)
# AU -> ARKit: FACS muscle action -> the Apple shapes that the same muscle produces (both sides).
AU_TO_ARKIT_TABLE: dict[str, dict[str, float]] = {
    "AU1": {"browInnerUp": 1.0},
    "AU2": {"browOuterUpLeft": 1.0, "browOuterUpRight": 1.0},
    "AU4": {"browDownLeft": 1.0, "browDownRight": 1.0},
    "AU5": {"eyeWideLeft": 1.0, "eyeWideRight": 1.0},
    "AU6": {"cheekSquintLeft": 1.0, "cheekSquintRight": 1.0},
    "AU7": {"eyeSquintLeft": 1.0, "eyeSquintRight": 1.0},
    "AU9": {"noseSneerLeft": 1.0, "noseSneerRight": 1.0},
    "AU10": {"mouthUpperUpLeft": 1.0, "mouthUpperUpRight": 1.0},
    "AU12": {"mouthSmileLeft": 1.0, "mouthSmileRight": 1.0},
    "AU14": {"mouthDimpleLeft": 1.0, "mouthDimpleRight": 1.0},
    "AU15": {"mouthFrownLeft": 1.0, "mouthFrownRight": 1.0},
    "AU17": {"mouthShrugLower": 1.0},
    "AU20": {"mouthStretchLeft": 1.0, "mouthStretchRight": 1.0},
    "AU23": {"mouthPressLeft": 1.0, "mouthPressRight": 1.0},
    "AU25": {"mouthLowerDownLeft": 0.6, "mouthLowerDownRight": 0.6},  # lips part without the jaw
    "AU26": {"jawOpen": 1.0},
    "AU45": {"eyeBlinkLeft": 1.0, "eyeBlinkRight": 1.0},
}

# Viseme -> ARKit mouth weights. Symmetric entries ("mouthSmile") apply to Left and Right.
VISEME_TO_ARKIT_TABLE: dict[str, dict[str, float]] = {
    "sil": {},
    "PP": {"jawOpen": 0.05, "mouthClose": 0.05, "mouthPress": 0.5, "mouthRollLower": 0.2, "mouthRollUpper": 0.15},
    "FF": {"jawOpen": 0.1, "mouthRollLower": 0.6, "mouthUpperUp": 0.2},
    "TH": {"jawOpen": 0.15, "tongueOut": 0.3, "mouthLowerDown": 0.1},
    "DD": {"jawOpen": 0.2, "mouthLowerDown": 0.1, "mouthStretch": 0.1},
    "kk": {"jawOpen": 0.25, "mouthStretch": 0.1},
    "CH": {"jawOpen": 0.2, "mouthFunnel": 0.5, "mouthPucker": 0.2},
    "SS": {"jawOpen": 0.08, "mouthStretch": 0.25, "mouthSmile": 0.1},
    "nn": {"jawOpen": 0.18, "mouthLowerDown": 0.1},
    "RR": {"jawOpen": 0.15, "mouthPucker": 0.35, "mouthFunnel": 0.25},
    "aa": {"jawOpen": 0.6, "mouthLowerDown": 0.2},
    "E": {"jawOpen": 0.35, "mouthStretch": 0.3, "mouthSmile": 0.15},
    "I": {"jawOpen": 0.2, "mouthStretch": 0.35, "mouthSmile": 0.25},
    "O": {"jawOpen": 0.45, "mouthFunnel": 0.6, "mouthPucker": 0.2},
    "U": {"jawOpen": 0.15, "mouthPucker": 0.75, "mouthFunnel": 0.3},
}


def _table_matrix(table: dict[str, dict[str, float]], rows: Sequence[str]) -> np.ndarray:
    """(52, len(rows)) matrix; a key without a side suffix that is not itself a name means both sides."""
    m = np.zeros((len(ARKIT52), len(rows)), np.float32)
    index = {n: i for i, n in enumerate(ARKIT52)}
    for j, row in enumerate(rows):
        for name, w in table[row].items():
            targets = [name] if name in index else [name + "Left", name + "Right"]
            for t in targets:
                m[index[t], j] = w
    return m


AU_TO_ARKIT: np.ndarray = _table_matrix(AU_TO_ARKIT_TABLE, AU17)  # (52, 17): arkit = M @ au
# ARKit -> AU is the Moore-Penrose pseudo-inverse: each AU reads the mean of its shapes (divided by their weight).
ARKIT_TO_AU: np.ndarray = np.linalg.pinv(AU_TO_ARKIT).astype(np.float32)  # (17, 52)
VISEME_TO_ARKIT: np.ndarray = _table_matrix(VISEME_TO_ARKIT_TABLE, VISEME15)  # (52, 15)


def au_to_arkit(au: np.ndarray) -> np.ndarray:
    """(..., 17) AU intensities in [0, 1] -> (..., 52) ARKit weights in [0, 1]."""
    return np.clip(np.asarray(au, np.float32) @ AU_TO_ARKIT.T, 0.0, 1.0)


def arkit_to_au(arkit: np.ndarray) -> np.ndarray:
    """(..., 52) ARKit weights -> (..., 17) AU intensities (pseudo-inverse of AU_TO_ARKIT, clipped to [0, 1])."""
    return np.clip(np.asarray(arkit, np.float32) @ ARKIT_TO_AU.T, 0.0, 1.0)


def viseme_to_arkit(vis: np.ndarray) -> np.ndarray:
    """(..., 15) viseme weights (one-hot or posteriors) -> (..., 52) ARKit mouth weights."""
    return np.clip(np.asarray(vis, np.float32) @ VISEME_TO_ARKIT.T, 0.0, 1.0)


def canonical_channel(name: str) -> str:
    """The channel's canonical spelling (case-insensitive; `AU01`, `au12`, `AU12_r` and `EyeBlinkLeft` accepted)."""
    key = name.strip()
    m = re.fullmatch(r"(?i)au0*(\d+)(_r)?", key)
    if m:
        key = f"AU{int(m.group(1))}"
    canon = _CANON.get(key.lower())
    if canon is None:
        raise TrackError(f"Unknown channel {name!r}: use names from reenact.params (e.g. AU12, jawOpen, yaw, aa).")
    return canon


# ---------------------------------------------------------------- tracks
@dataclass
class Track:
    """A parameter track: `values[t, c]` is channel `channels[c]` at `times[t]` seconds."""

    times: np.ndarray  # (T,) float64 seconds, strictly increasing
    values: np.ndarray  # (T, C) float32
    channels: list[str]
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.times = np.asarray(self.times, np.float64).reshape(-1)
        self.values = np.asarray(self.values, np.float32).reshape(len(self.times), len(self.channels))
        self.channels = [canonical_channel(c) for c in self.channels]
        dup = {c for c in self.channels if self.channels.count(c) > 1}
        if dup:
            raise TrackError(f"Channel {sorted(dup)[0]} appears twice in the track; keep one column per channel.")

    def __len__(self) -> int:
        return len(self.times)

    def column(self, name: str) -> np.ndarray:
        """(T,) values of one channel."""
        name = canonical_channel(name)
        if name not in self.channels:
            raise TrackError(f"The track has no {name} channel; it has {', '.join(self.channels[:8])}...")
        return self.values[:, self.channels.index(name)]

    def select(self, names: Sequence[str], fill: float = 0.0) -> np.ndarray:
        """(T, len(names)) in the given order; channels the track lacks are `fill`."""
        out = np.full((len(self), len(names)), fill, np.float32)
        for j, n in enumerate(names):
            n = canonical_channel(n)
            if n in self.channels:
                out[:, j] = self.values[:, self.channels.index(n)]
        return out

    def at(self, times: np.ndarray) -> np.ndarray:
        """(T', C) values linearly interpolated at `times` (held constant outside the track)."""
        times = np.asarray(times, np.float64)
        return np.stack([np.interp(times, self.times, self.values[:, c]) for c in range(len(self.channels))],
                        axis=-1).astype(np.float32)

    def validate(self, source: str = "track") -> "Track":
        """Raise TrackError naming the column and row of the first bad value; return self."""
        if len(self) and not np.all(np.isfinite(self.times)):
            raise TrackError(f"{source}: row {int(np.argmin(np.isfinite(self.times))) + 1} has no valid time.")
        if len(self) > 1 and np.any(np.diff(self.times) <= 0):
            row = int(np.argmax(np.diff(self.times) <= 0)) + 2
            raise TrackError(f"{source}: time must increase from row to row; row {row} does not.")
        for c, name in enumerate(self.channels):
            lo, hi = RANGES[name]
            col = self.values[:, c]
            bad = ~np.isfinite(col) | (col < lo - 1e-4) | (col > hi + 1e-4)
            if np.any(bad):
                row = int(np.argmax(bad))
                raise TrackError(f"{source}: column {name} row {row + 1} is {col[row]:g}, outside [{lo:g}, {hi:g}].")
        return self

    def frame_rate(self) -> Fraction | None:
        """The rate the rows were sampled at: `meta["fps"]`, else the standard rate (or the rate) of evenly spaced
        times at least MIN_FRAME_FPS; None for keyframes (sparse or uneven times) and single rows."""
        if self.meta.get("fps"):
            try:
                rate = Fraction(str(self.meta["fps"])).limit_denominator(1001)
            except (ValueError, ZeroDivisionError):
                raise TrackError(f"The track's meta fps {self.meta['fps']!r} is not a frame rate; use e.g. 25 or "
                                 "30000/1001.") from None
            if MIN_FRAME_FPS <= rate <= MAX_FRAME_FPS:
                return rate
        return grid_fps(self.times)

    # ---- files
    @classmethod
    def read(cls, path: str | Path, flavour: str = "auto", fps: float | None = None) -> "Track":
        """Read a CSV (reenact / openface / livelink, auto-detected) or JSON track and validate it. `fps`: the
        Live Link timecode rate (LIVELINK_FPS unless given), or the rate of an OpenFace CSV without timestamps (30);
        the track's own rate is `frame_rate()`."""
        path = Path(path)
        if not path.is_file():
            raise TrackError(f"Track file {path} does not exist; give a CSV or JSON track.")
        if path.suffix.lower() == ".json":
            return _read_json(path).validate(path.name)
        try:  # rows are parsed as they are read: a large CSV never exists as a list of strings
            with open(path, newline="", encoding="utf-8-sig") as f:  # "CSV UTF-8" from spreadsheets has a BOM
                rows = (r for r in csv.reader(f) if r and any(x.strip() for x in r))
                first = next(rows, None)
                if first is None:
                    raise TrackError(f"Track {path.name} is empty; it needs a header row and one row per frame.")
                header = [h.strip() for h in first]
                if flavour == "auto":
                    low = {h.lower() for h in header}
                    flavour = "livelink" if "timecode" in low else "openface" if any(
                        re.fullmatch(r"au\d\d_r", h) for h in low) else "reenact"
                reader = {"reenact": _parse_reenact, "openface": _parse_openface,
                          "livelink": _parse_livelink}.get(flavour)
                if reader is None:
                    raise TrackError(f"Unknown track format {flavour!r}: use csv, json, openface or livelink.")
                track = reader(header, rows, path.name, fps)
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise TrackError(f"Cannot read track {path.name}: {exc}; save it as UTF-8 CSV.") from exc
        return track.validate(path.name)

    def write(self, path: str | Path, flavour: str = "auto") -> Path:
        """Write as `csv`/`json` (by suffix when `auto`), `openface` or `livelink` CSV."""
        path = Path(path)
        if flavour in ("auto", "csv", "json"):
            flavour = "json" if (flavour == "json" or path.suffix.lower() == ".json") else "reenact"
        if flavour == "json":
            data = {"format": "reenact-track", "version": 1, "channels": self.channels, "meta": self.meta,
                    "time": [round(float(t), 6) for t in self.times],
                    "values": {c: [round(float(v), 5) for v in self.values[:, i]] for i, c in enumerate(self.channels)}}
            path.write_text(json.dumps(data, indent=1) + "\n")
            return path
        writer = {"reenact": _rows_reenact, "openface": _rows_openface, "livelink": _rows_livelink}.get(flavour)
        if writer is None:
            raise TrackError(f"Unknown track format {flavour!r}: use csv, json, openface or livelink.")
        with open(path, "w", newline="") as f:
            csv.writer(f).writerows(writer(self))
        return path


def grid_fps(times: np.ndarray, tolerance: float = 6e-4) -> Fraction | None:
    """The frame rate of evenly spaced `times` (each within `tolerance` s of its slot, which covers OpenFace's
    millisecond timestamps): the standard rate (STANDARD_FPS) that fits best, else the measured rate; None below
    MIN_FRAME_FPS or above MAX_FRAME_FPS, for uneven times or fewer than two."""
    times = np.asarray(times, np.float64)
    if len(times) < 2 or not times[-1] > times[0]:
        return None
    measured = (len(times) - 1) / float(times[-1] - times[0])
    if not MIN_FRAME_FPS <= measured <= MAX_FRAME_FPS * 1.01:
        return None
    slots = np.arange(len(times))
    near = [r for r in STANDARD_FPS if abs(float(r) / measured - 1) < 0.01]
    fits = [(float(np.max(np.abs(times - times[0] - slots / float(r)))), r) for r in near]
    if fits and min(fits)[0] <= tolerance:
        return min(fits)[1]
    error = float(np.max(np.abs(times - times[0] - slots / measured)))
    return Fraction(measured).limit_denominator(1001) if error <= tolerance and measured <= MAX_FRAME_FPS else None


Rows = Iterable[list[str]]
Cell = Callable[[str], float]  # a cell's text -> its value; ValueError when it is not one


def _floats(rows: Rows, cols: list[int], names: list[str], source: str,
            cells: dict[int, tuple[Cell, str]] | None = None) -> np.ndarray:
    """(rows, len(cols)) float64 of the given columns, filled block by block as the rows stream in. `cells` maps a
    column to its own parser and what it expects (default: float, "a number")."""
    parse = [(cells or {}).get(c, (float, "a number")) for c in cols]
    blocks, block, n = [], np.empty((4096, len(cols)), np.float64), 0
    for r, row in enumerate(rows):
        if n == len(block):
            blocks.append(block)
            block, n = np.empty_like(block), 0
        for j, c in enumerate(cols):
            try:
                block[n, j] = parse[j][0](row[c])
            except (ValueError, IndexError):
                cell = row[c] if c < len(row) else ""
                raise TrackError(f"{source}: column {names[j]} row {r + 1} is {cell!r}, not {parse[j][1]}.") \
                    from None
        n += 1
    blocks.append(block[:n])
    return np.concatenate(blocks)


def _parse_reenact(header: list[str], rows: Rows, source: str, fps: float | None) -> Track:
    if "time" not in header:
        raise TrackError(f"{source}: no `time` column (seconds); add one, or use --format openface/livelink.")
    cols = [i for i, h in enumerate(header) if h != "time"]
    if not cols:
        raise TrackError(f"{source}: only a `time` column; add one column per channel (e.g. AU12, jawOpen, yaw; "
                         "names in docs/params.md).")
    names = []
    for i in cols:
        try:
            names.append(canonical_channel(header[i]))
        except TrackError:
            raise TrackError(f"{source}: unknown column {header[i]!r} (column {i + 1}); channel names are listed "
                             "in docs/params.md.") from None
    t = header.index("time")
    data = _floats(rows, [t] + cols, ["time"] + names, source)
    return Track(data[:, 0], data[:, 1:], names, {"format": "reenact"})


def _parse_openface(header: list[str], rows: Rows, source: str, fps: float | None) -> Track:
    low = [h.lower() for h in header]
    cols = [i for i, h in enumerate(low) if re.fullmatch(r"au\d\d_r", h)]
    names = [canonical_channel(header[i]) for i in cols]
    tcol = low.index("timestamp") if "timestamp" in low else None
    if tcol is None:
        data = _floats(rows, cols, names, source)
        times = np.arange(len(data)) / (fps or 30.0)
    else:
        both = _floats(rows, cols + [tcol], names + ["timestamp"], source)
        data, times = both[:, :-1], both[:, -1]
    return Track(times, data / 5.0, names, {"format": "openface"})  # OpenFace intensities are 0-5


def _parse_livelink(header: list[str], rows: Rows, source: str, fps: float | None) -> Track:
    """`fps` is the timecode's frame rate (else `timecode_rate` reads it from the timecodes); the track's own rate
    is read from its times."""
    low = [h.lower() for h in header]
    if "timecode" not in low:
        raise TrackError(f"{source}: no Timecode column; a Live Link Face CSV starts with Timecode,BlendShapeCount.")
    tc = low.index("timecode")
    lut = {n.lower(): a for n, a in zip(LIVELINK52, [n[0].lower() + n[1:] for n in LIVELINK52])}
    extra = {"headyaw": "yaw", "headpitch": "pitch", "headroll": "roll", "lefteyeyaw": "gazeLeftYaw",
             "lefteyepitch": "gazeLeftPitch", "righteyeyaw": "gazeRightYaw", "righteyepitch": "gazeRightPitch"}
    cols, names = [], []
    for i, h in enumerate(header):
        k = h.lower()
        if k in lut or k in extra:
            cols.append(i)
            names.append(lut.get(k) or extra[k])
        elif k not in ("timecode", "blendshapecount", "lefteyeroll", "righteyeroll"):
            raise TrackError(f"{source}: unknown Live Link Face column {h!r} (column {i + 1}).")

    def timecode(text: str) -> float:  # whole seconds * 1000 + the frame field FF.fff (< 1000), exact in float64
        m = re.fullmatch(r"(\d+):(\d+):(\d+)[:;](\d+(?:\.\d+)?)", text.strip())
        if m is None or float(m[4]) >= 1000:
            raise ValueError(text)
        return (int(m[1]) * 3600 + int(m[2]) * 60 + int(m[3])) * 1000 + float(m[4])

    both = _floats(rows, cols + [tc], names + ["Timecode"], source, {tc: (timecode, "HH:MM:SS:FF.fff")})
    data, stamps = both[:, :-1], both[:, -1]
    seconds = np.floor(stamps / 1000)
    frames = stamps - seconds * 1000
    rate = float(fps or timecode_rate(seconds, frames))
    times = seconds + frames / rate
    for j, n in enumerate(names):
        if n in POSE or n in GAZE:
            data[:, j] = np.degrees(data[:, j])  # Live Link rotations are radians; ours are degrees
    return Track(times - (times[0] if len(times) else 0.0), data, names,
                 {"format": "livelink", "timecode_fps": f"{rate:g}"})


TIMECODE_RATES = (24, 25, 30, 48, 50, 60, 120, 240)


def timecode_rate(seconds: np.ndarray, frames: np.ndarray) -> int:
    """The frame rate of Live Link timecodes HH:MM:SS:FF. The app records at 60 or 30 fps, one row per frame, and
    its frame field FF counts 0 .. rate - 1 before the seconds tick: so in a take of consecutive frames (FF steps of
    about 1) that crosses a second, the rate is the first standard rate above the largest FF. Anything else (a take
    within one second, sparse or uneven rows, reenact's own exports, whose FF are 60ths of a second with
    fractions) gives no such evidence: LIVELINK_FPS."""
    same_second = np.diff(seconds) == 0
    steps = np.diff(frames)[same_second]
    consecutive = len(steps) > 0 and abs(float(np.median(steps)) - 1) < 0.1  # FF.fff: the fraction may vary a little
    if not consecutive or not np.any(np.diff(seconds) > 0):
        return LIVELINK_FPS
    top = float(frames.max())
    return next((r for r in TIMECODE_RATES if top < r), LIVELINK_FPS)


def _fmt(v: float) -> str:
    return f"{v:.5f}".rstrip("0").rstrip(".") if math.isfinite(v) else "nan"


def _rows_reenact(tr: Track) -> list[list[str]]:
    rows = [["time"] + tr.channels]
    rows += [[f"{t:.6f}"] + [_fmt(v) for v in row] for t, row in zip(tr.times, tr.values.tolist())]
    return rows


def _rows_openface(tr: Track) -> list[list[str]]:
    au = as_au(tr)
    rows = [["frame", "timestamp"] + [f"AU{int(a[2:]):02d}_r" for a in AU17]]
    rows += [[str(i + 1), f"{t:.6f}"] + [f"{5 * v:.2f}" for v in row] for i, (t, row) in
             enumerate(zip(tr.times, au.tolist()))]
    return rows


def _rows_livelink(tr: Track) -> list[list[str]]:
    ticks = _livelink_ticks(tr.times)
    shapes = as_arkit(tr)
    order = [ARKIT52.index(n[0].lower() + n[1:]) for n in LIVELINK52]
    rot = np.radians(tr.select(("yaw", "pitch", "roll", "gazeLeftYaw", "gazeLeftPitch", "gazeRightYaw",
                                "gazeRightPitch")))
    rows = [["Timecode", "BlendShapeCount", *LIVELINK52, *LIVELINK_EXTRA]]
    for tick, s, r in zip(ticks, shapes, rot):
        sec, sub = divmod(tick, LIVELINK_FPS * 1000)
        h, m, ss = sec // 3600, (sec // 60) % 60, sec % 60
        tc = f"{h:02d}:{m:02d}:{ss:02d}:{sub // 1000:02d}.{sub % 1000:03d}"
        eyes = [r[3], r[4], 0.0, r[5], r[6], 0.0]  # Left yaw/pitch/roll, Right yaw/pitch/roll; we track no roll
        rows.append([tc, "61", *[_fmt(float(s[i])) for i in order], *[_fmt(float(x)) for x in r[:3]],
                     *[_fmt(float(x)) for x in eyes]])
    return rows


def _livelink_ticks(times: np.ndarray) -> list[int]:
    """Each time in thousandths of a LIVELINK_FPS timecode frame (exact integers, so no two rows share a timecode)."""
    if len(times) and times[0] < 0:
        raise TrackError(f"A Live Link timecode cannot be negative; the track starts at {times[0]:g} s.")
    ticks = [int(round(float(t) * LIVELINK_FPS * 1000)) for t in times]
    same = [i for i in range(1, len(ticks)) if ticks[i] <= ticks[i - 1]]
    if same:
        raise TrackError(f"Rows {same[0]} and {same[0] + 1} are closer than a Live Link timecode can tell apart "
                         f"(1/{LIVELINK_FPS * 1000} s); write this track as csv or json.")
    return ticks


def as_arkit(tr: Track) -> np.ndarray:
    """(T, 52): the track's ARKit channels, or its AUs (and visemes) mapped onto ARKit when it has none."""
    if any(c in ARKIT52 for c in tr.channels):
        return tr.select(ARKIT52)
    return np.clip(au_to_arkit(tr.select(AU17)) + viseme_to_arkit(tr.select(VISEME15)), 0.0, 1.0)


def as_au(tr: Track) -> np.ndarray:
    """(T, 17): the track's AUs, or its ARKit channels mapped to AUs when it has none."""
    if any(c in AU17 for c in tr.channels):
        return tr.select(AU17)
    return arkit_to_au(as_arkit(tr))


def _read_json(path: Path) -> Track:
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
        channels = list(data["channels"])
        values = np.array([data["values"][c] for c in channels], np.float64).T.reshape(len(data["time"]), -1)
        return Track(np.array(data["time"], np.float64), values, channels, dict(data.get("meta", {})))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise TrackError(f"{path.name} is not a reenact JSON track ({exc}); it needs channels, time and values.") \
            from exc
