"""Driver parameters -> source parameters.

Everything is expressed in the rig's space, ARKit52 (docs/params.md). The default is **relative** transfer: the
source keeps its own expression and receives the driver's *change* from the driver's neutral, times `strength`; a
source that already smiles keeps smiling while it talks; a source with parted lips takes their opening (up to the
driver's typical one, or as far as its own jaw reads open) as a change of the driver's, so they close when the
driver's do (`driver_reference`). The driver's neutral is its clip's rest
(`rest="clip"`) or its first frame (`rest="first"`). `absolute` copies the driver's values instead.

Per-channel controls accept any channel name of reenact.params: an AU (`AU12`) acts on every ARKit shape it maps to
(mouthSmileLeft/Right), an ARKit name on itself. Regions restrict transfer to groups of shapes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from reenact.errors import InputError
from reenact.limits import check
from reenact.params import ARKIT52, AU17, AU_TO_ARKIT, BLINKS, canonical_channel

_INDEX = {n: i for i, n in enumerate(ARKIT52)}

REGIONS: dict[str, tuple[str, ...]] = {
    "mouth": tuple(n for n in ARKIT52 if n.startswith(("mouth", "jaw", "tongue", "cheekPuff"))),
    "eyes": tuple(n for n in ARKIT52 if n.startswith(("eye", "cheekSquint"))),
    "brows": tuple(n for n in ARKIT52 if n.startswith(("brow", "noseSneer"))),
}
REGIONS["all"] = ARKIT52

# Where a driver's changes are measured from (`--rest`). "clip": each channel's resting value over the whole clip
# (its low percentile, reenact.smooth.neutral_calibrate; the eye area: the clip's resting face). "first": the driver's
# first frame, as LivePortrait's and FOMM's relative modes do, so the photo holds its own expression wherever the
# driver's face is as in its first frame: for a driver that starts at rest. A clip's mouth shapes and eye area are
# read from its resting mouth and face already (reenact.clip_geometry.resting_mouth, resting_face), so its resting
# frames read 0 there; a channel read by the network alone can still take its rest from an expression that pushes it
# below its resting reading, and the photo then holds that reading as an expression whenever the driver rests
# (docs/fidelity.md, "the rest offset"). jawOpen keeps the clip's rest (or the photo's own opening) in both: a clip
# that starts mid-word would otherwise never close the photo's mouth.
RESTS = ("clip", "first")

# Head pose transfer is limited to small angles: a warp of one photo cannot show the other side of a head.
POSE_LIMITS = {"yaw": 15.0, "pitch": 12.0, "roll": 12.0}


def arkit_indices(name: str) -> list[int]:
    """ARKit columns that a channel name controls (an AU expands to its shapes)."""
    canon = canonical_channel(name)
    if canon in _INDEX:
        return [_INDEX[canon]]
    if canon in AU17:
        return [int(i) for i in np.flatnonzero(AU_TO_ARKIT[:, AU17.index(canon)])]
    raise InputError(f"{name!r} is not an expression channel; use an AU (AU12) or an ARKit name (jawOpen).")


def parse_assignments(items: list[str], option: str) -> dict[str, float]:
    """`["AU12=1.4", "jawOpen=0.5"]` -> {"AU12": 1.4, "jawOpen": 0.5}; a bare AU number means that AU."""
    out: dict[str, float] = {}
    for item in items:
        for part in item.split(","):
            name, sep, value = part.partition("=")
            name = name.strip()
            if name.isdigit():
                name = f"AU{int(name)}"
            try:
                out[name] = float(value)
            except ValueError:
                raise InputError(f"{option} {part!r}: expected NAME=NUMBER, e.g. {option} AU12=0.8.") from None
            if not sep:
                raise InputError(f"{option} {part!r}: expected NAME=NUMBER, e.g. {option} AU12=0.8.")
    return out


@dataclass(frozen=True)
class RetargetOptions:
    strength: float = 1.0
    absolute: bool = False
    region: str = "all"
    scale: dict[str, float] = field(default_factory=dict)
    mute: list[str] = field(default_factory=list)
    gaze: bool = True
    pose: bool = False
    rest: str = "clip"  # RESTS: the driver's neutral is its clip's rest or its first frame

    def __post_init__(self) -> None:  # ranges from reenact.limits: a NaN gain fails here, not in the renderer
        check("strength", self.strength)
        if self.rest not in RESTS:
            raise InputError(f"--rest {self.rest!r}: use one of {', '.join(RESTS)}.")
        for name, k in self.scale.items():
            check("scale", k, f"--scale {name}={k}")

    def gains(self) -> np.ndarray:
        """(52,) per-shape gain from strength, region, --scale and --mute."""
        if self.region not in REGIONS:
            raise InputError(f"--region {self.region!r}: choose one of {', '.join(REGIONS)}.")
        g = np.zeros(len(ARKIT52), np.float32)
        g[[_INDEX[n] for n in REGIONS[self.region]]] = self.strength
        if not self.gaze:
            g[[i for n, i in _INDEX.items() if n.startswith("eyeLook")]] = 0.0
        for name, k in self.scale.items():
            g[arkit_indices(name)] *= k
        for name in self.mute:
            g[arkit_indices(name)] = 0.0
        return g


# The lid and brow shapes: the eye area's own motion (reenact.rig.EyeArea) draws them, so it follows their gain.
AREA_SHAPES = [_INDEX[n] for n in ARKIT52 if n.startswith(("eyeBlink", "eyeSquint", "eyeWide", "brow"))]


def area_gain(opts: RetargetOptions) -> float:
    """The gain a driver's eye-area motion is carried at: the lid and brow shapes' common gain (`strength`); 0 (the
    rig draws the eyes alone) where they differ: a --region without the eyes or brows, a --mute or --scale of one."""
    g = opts.gains()[AREA_SHAPES]
    return float(g[0]) if np.all(g == g[0]) else 0.0


def lips_gain(opts: RetargetOptions) -> float:
    """The gain speech's lip closure (p, b, m: `Motion.shut`) is drawn at: mouthClose's (0 when the transfer leaves
    the mouth out)."""
    return float(opts.gains()[_INDEX["mouthClose"]])


# A photo's lips count as parted above this gap (cm, pose-free mesh): the five other talking-face clips' closed first
# frames measure -0.03 to 0.05, carphone's open one 0.74.
PARTED_CM = 0.1
_JAW = _INDEX["jawOpen"]


def driver_reference(driver: np.ndarray, photo_gap: float, gap_per_unit: np.ndarray, rest: str = "clip",
                     photo_jaw: float = 0.0) -> np.ndarray:
    """(T, 52) driver shapes, the photo's own lip gap (cm), the rig's lip gap per unit of each shape (52,) and the
    photo's own jawOpen reading -> (52,) the driver shapes relative transfer measures change from: its rest (0: the
    track is calibrated to its clip's rest) or with `rest="first"` its first frame, for every shape but jawOpen,
    which stands for the photo's own opening. A photo with parted lips then closes them when the driver's close,
    instead of keeping them apart as its rest and opening further; a closed-mouthed photo (gap <= PARTED_CM) keeps
    the rest.

    How much of a parted photo's gap is its jaw's: the gap, at most the driver's median opening (a smile's parted
    lips are the lips', not the jaw's: the sample photo's 1.1 cm read as the jaw would halve her mouth's opening), but
    never less than the photo's own jawOpen reading (a yell: carphone's frame 60, 3.3 cm apart and read 0.9 open,
    never shut when capped at the driver's median). Measured on the held-out clips: carphone's first frame (0.74 cm
    apart) mouth unreproduced 0.52 -> 0.37, lip-gap correlation 0.88 -> 0.96 (fourth pass); frame-60 photos
    docs/fidelity.md, "Sixth pass"."""
    first = rest == "first" and len(driver) > 0
    ref = driver[0].astype(np.float32) if first else np.zeros(len(ARKIT52), np.float32)
    ref[_JAW] = 0.0
    if photo_gap > PARTED_CM and len(driver) and gap_per_unit[_JAW] > 0:
        per_unit = float(gap_per_unit[_JAW])  # cm of lip gap per unit of jawOpen
        typical = float(np.median(driver @ gap_per_unit))  # the driver's median opening above its rest, cm
        ref[_JAW] = max(min(photo_gap, typical) / per_unit, min(photo_jaw, photo_gap / per_unit), 0.0)
    return ref


def retarget(driver: np.ndarray, driver_neutral: np.ndarray, source: np.ndarray, opts: RetargetOptions) -> np.ndarray:
    """(T, 52) driver shapes, (52,) driver neutral, (52,) source shapes -> (T, 52) target shapes in [0, 1]."""
    g = opts.gains()
    if opts.absolute:
        target = source + g * (driver - source)
    else:
        change = g * (driver - driver_neutral)  # (T, 52)
        target = source + change
        # A blink closes a share of the opening the lids have: the driver's closure is composed with the photo's
        # (what is left open is the photo's opening times the driver's), not added to it. Added, a photo whose open
        # eye reads eyeBlink 0.2 (the estimator reads most resting faces as part-expression) shut that eye at a half
        # blink while the other, read 0, closed halfway: a wink (franck's own frame 0, 0.22 / 0).
        s, c = source[BLINKS], change[:, BLINKS]
        target[:, BLINKS] = np.where(c >= 0, s + c * (1 - s), s * (1 + c))
    return np.clip(target, 0.0, 1.0).astype(np.float32)


def retarget_pose(driver_pose: np.ndarray, driver_neutral: np.ndarray) -> np.ndarray:
    """(T, 3) yaw/pitch/roll of the driver -> (T, 3) relative rotation for the source, clipped to small angles."""
    rel = driver_pose - driver_neutral
    limits = np.array([POSE_LIMITS["yaw"], POSE_LIMITS["pitch"], POSE_LIMITS["roll"]], np.float32)
    return np.clip(rel, -limits, limits)
