"""Every option that more than one command takes, declared once: its flag, type, choices and help.

A command writes `strength: Strength = 1.0`; the alias carries the rest, so `--strength` reads the same in `drive`,
`render`, `speak` and `batch`. Options with a fixed set of values are Enums, which Click checks (exit 2, one line,
before any file is opened) and `--help` lists. Value ranges come from reenact.limits (`span`), which the library
checks again when the options are built. Options of one command only stay in that command's signature.

Adding an option that several commands share: one alias here, one parameter per command (see docs/architecture.md).
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from reenact.limits import span

if TYPE_CHECKING:
    from fractions import Fraction

    from reenact.retarget import RetargetOptions


class Smooth(str, Enum):
    """reenact.options.SMOOTHING, as Click choices."""

    offline = "offline"
    online = "online"
    none = "none"


class Rest(str, Enum):
    """reenact.retarget.RESTS, as Click choices."""

    clip = "clip"
    first = "first"


class Region(str, Enum):
    """reenact.retarget.REGIONS, as Click choices."""

    all = "all"
    mouth = "mouth"
    eyes = "eyes"
    brows = "brows"


THRESHOLD_HELP = (f"Identity similarity threshold (cosine, {span('threshold')}; default: the embedder's own, "
                  f"docs/identity.md).")

# ------------------------------------------------------------------------------------------------ outputs
Output = Annotated[Optional[Path], typer.Option("--output", "-o",
                                                help="Output file (default: beside the input, with a suffix).")]
Overwrite = Annotated[bool, typer.Option("--overwrite", "-y", help="Replace an existing output file.")]
Report = Annotated[Optional[Path], typer.Option(
    "--report", help="Write a JSON report (identity per frame, missing faces, timings).")]
Crf = Annotated[int, typer.Option(
    "--crf", help="H.264 quality: 0 lossless .. 51 worst; 18 looks lossless, 23 is x264's default.")]
Preset = Annotated[str, typer.Option(
    "--preset", help="x264 speed: ultrafast .. veryslow (slower = smaller file at the same quality).")]

# ------------------------------------------------------------------------------------------------ the photo
Face = Annotated[Optional[int], typer.Option(
    "--face", help="Which face of the photo, 0-based left to right (default: the largest).")]
MaxSize = Annotated[int, typer.Option(
    "--max-size", help=f"Scale the photo down to this long side (px, {span('max_size')}).")]

# ------------------------------------------------------------------------------------------------ the transfer
Strength = Annotated[float, typer.Option(
    "--strength", help=f"Multiply the transferred expression change; speech: the mouth motion ({span('strength')}).")]
Absolute = Annotated[bool, typer.Option(
    "--absolute", help="Take the driver's (or track's) values as they are, not their changes from neutral.")]
Scale = Annotated[list[str], typer.Option(
    "--scale", help=f"Per-channel gain ({span('scale')}), e.g. --scale AU12=1.4 (repeatable).")]
Mute = Annotated[list[str], typer.Option("--mute", help="Channels not to transfer, e.g. --mute AU45 (repeatable).")]
RegionOption = Annotated[Region, typer.Option("--region", help="Which part of the face moves.")]
Pose = Annotated[bool, typer.Option(
    "--pose", help="Also transfer the driver's (or track's) small head rotations (off by default).")]
Gaze = Annotated[bool, typer.Option("--gaze/--no-gaze", help="Transfer eye gaze.")]
RestOption = Annotated[Rest, typer.Option(
    "--rest", help="Where the driver's changes are measured from: clip (each channel's rest over the whole clip) | "
    "first (the driver's first frame, for a driver that starts with a resting face: the photo then holds its own "
    "expression wherever the driver's face is as in that frame). docs/params.md.")]
SmoothOption = Annotated[Smooth, typer.Option(
    "--smooth", help="Smoothing of the driver's track: offline (zero-phase), online (One Euro) or none (raw).")]

# ------------------------------------------------------------------------------------------------ rendering
Refine = Annotated[bool, typer.Option(
    "--refine/--no-refine", help="Draw over the warp with the GAN refiner and the expression shading when the "
    "shipped ones pass their checks (docs/refiner.md, docs/shading.md); --no-refine: warp only.")]
Mouth = Annotated[str, typer.Option(
    "--mouth", help="An opening mouth's inside: library (real teeth, tongue and shadow from talking-face footage, "
    "chosen by mouth shape, docs/mouth.md) | paint (drawn teeth and a dark cavity).")]
DriverMouth = Annotated[str, typer.Option(
    "--mouth", help="An opening mouth's inside: driver (the driving video's own teeth, tongue and shadow, "
    "docs/mouth.md) | library (real mouths chosen by shape) | paint (drawn teeth and a dark cavity). With --audio, "
    "driver means library.")]
Creases = Annotated[bool, typer.Option(
    "--creases", help="With --mouth driver, also carry the driver's fine creases onto the photo, behind the expression "
    "shading (off: on another person's photo they carry the driver's skin texture; docs/shading.md).")]
BatchSize = Annotated[int, typer.Option("--batch-size", help=f"Frames rendered per batch ({span('batch_size')}).")]

# ------------------------------------------------------------------------------------------------ identity
Strict = Annotated[bool, typer.Option(
    "--strict", help="Exit 3 (batch: fail the job) when any frame fails the identity check; a damaged or truncated "
    "driver is exit 2 instead of rendering the frames that decode.")]
def _identity_spec(value: str) -> str:
    """--identity spelled right, checked by the parser (the embedder loads only with the models, much later)."""
    from reenact.errors import InputError
    from reenact.limits import check_identity_spec

    try:
        return check_identity_spec(value)
    except InputError as err:
        raise typer.BadParameter(str(err).rstrip(".")) from None


Identity = Annotated[str, typer.Option(
    "--identity", callback=_identity_spec,
    help="mobilefacenet (= default: ArcFace-trained, shipped) | dlib (shipped, CC0) | arcface[:PATH] "
    "(an insightface pack you have); docs/identity.md.")]
Threshold = Annotated[Optional[float], typer.Option("--threshold", help=THRESHOLD_HELP)]
CheckEvery = Annotated[int, typer.Option(
    "--check-every", help=f"Identity-check every N-th frame ({span('check_every')}).")]

# ------------------------------------------------------------------------------------------------ speech
Fps = Annotated[str, typer.Option(
    "--fps", help="Output frame rate, a number or a ratio such as 30000/1001 (speech: 25; render: the track's).")]
OptionalFps = Annotated[Optional[str], typer.Option(
    "--fps", help="Output frame rate, a number or a ratio such as 30000/1001 (speech: 25; render: the track's).")]
Text = Annotated[Optional[str], typer.Option(
    "--text", help="Transcript of the speech audio, for forced alignment (best lip timing; needs the \\[speech] "
    "extra).")]
Still = Annotated[bool, typer.Option("--still", help="Speech: no blinks, brow or head motion; only the lips move.")]
Seed = Annotated[int, typer.Option("--seed", help="Speech: seed of the idle motion (blinks, head).")]


# ------------------------------------------------------------------------------------------------ into the library
def retarget_options(strength: float, absolute: bool, region: str, scale: list[str], mute: list[str],
                     pose: bool, gaze: bool = True, rest: str = "clip") -> RetargetOptions:
    """Build the transfer options and validate every channel name before any work starts."""
    from reenact.retarget import RetargetOptions, parse_assignments

    opts = RetargetOptions(strength=strength, absolute=absolute, region=str(getattr(region, "value", region)),
                           scale=parse_assignments(scale, "--scale"), mute=list(mute), gaze=gaze, pose=pose,
                           rest=str(getattr(rest, "value", rest)))
    opts.gains()
    return opts


def parse_fps(text: str) -> Fraction:
    from fractions import Fraction

    from reenact.errors import InputError
    from reenact.limits import check

    try:
        rate = Fraction(text)
    except (ValueError, ZeroDivisionError):
        raise InputError(f"--fps {text!r}: give a number or a ratio such as 25 or 30000/1001.") from None
    return check("fps", rate, f"--fps {text}")
