"""The jobs' options (render, speak, smoothing), in a module of their own that imports neither torch nor PyAV: the
CLI checks every option before anything heavy loads, and `reenact batch` builds them before it knows whether any
job is left to do (a rerun with every output done must not pay for those imports). `reenact.pipeline` and
`reenact.speak` re-export them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

from reenact.errors import InputError, OutputError
from reenact.limits import check
from reenact.retarget import RetargetOptions

PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")


def check_x264(crf: int, preset: str) -> None:
    """The encoder settings `VideoWriter` accepts; `RenderOptions` checks them before any work with this too."""
    if not 0 <= crf <= 51:
        raise OutputError(f"--crf {crf}: use 0 (lossless) to 51 (worst); 18 looks lossless.")
    if preset not in PRESETS:
        raise OutputError(f"--preset {preset!r}: use one of {', '.join(PRESETS)}.")


# --smooth: zero-phase over the whole track | One Euro, causal | the raw per-frame values (reenact.smooth).
SMOOTHING = ("offline", "online", "none")


def check_smoothing(smooth: str) -> str:
    if smooth not in SMOOTHING:
        raise InputError(f"--smooth {smooth!r}: use one of {', '.join(SMOOTHING)}.")
    return smooth


# --mouth: carry the driving video's mouth interior | real mouths from the library, by shape | paint teeth and a cavity.
# "driver" where there is no driver's mouth (speak, render, drive --audio) means the library; an edit has no driver.
PHOTO_MOUTHS = ("library", "paint")
MOUTHS = ("driver", *PHOTO_MOUTHS)


@dataclass(frozen=True)
class RenderOptions:
    retarget: RetargetOptions = field(default_factory=RetargetOptions)
    batch_size: int = 16
    check_every: int = 1  # identity check on every n-th frame
    strict: bool = False
    overwrite: bool = False
    crf: int = 18
    preset: str = "veryfast"  # x264: ~4x faster than medium at the same CRF, a little larger files
    threshold: float | None = None
    refine: bool = True  # use the GAN refiner when its weights are shipped (`--no-refine`: warp only)
    mouth: str = "driver"  # opening mouth's interior: the driver's own (drive) | library | paint (docs/mouth.md)

    def __post_init__(self) -> None:  # fail before any work, not when the encoder opens after tracking
        check_x264(self.crf, self.preset)
        check("batch_size", self.batch_size)
        check("check_every", self.check_every)
        if self.threshold is not None:
            check("threshold", self.threshold)
        if self.mouth not in MOUTHS:
            raise InputError(f"Unknown --mouth {self.mouth!r}; use one of: {', '.join(MOUTHS)}.")


@dataclass(frozen=True)
class SpeakOptions:
    """What `speak` adds to the render options: the frame rate, the transcript and the idle motion."""

    fps: Fraction = Fraction(25)
    text: str | None = None
    still: bool = False
    seed: int = 0
    strength: float = 1.0

    def __post_init__(self) -> None:  # the ranges of reenact.limits, before any audio is read
        check("strength", self.strength)
        check("fps", self.fps)
