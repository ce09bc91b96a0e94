"""What a command accepts, checked before any media is opened (GitHub issue 20).

`RANGES` is the one table of numeric option ranges. The CLI, the library's options objects (RetargetOptions,
RenderOptions, JobOptions) and the batch manifest all check values with `check`, so a bad number (NaN, infinity, a
fraction where a count is due, out of range) is one InputError that names the option and its range, exit code 2.
The README's option table quotes these ranges.

`check_distinct` refuses an output that is one of the command's inputs or another of its outputs (an `extract -o`
equal to the video it reads, a `--report` equal to `-o`).
"""

from __future__ import annotations

import math
import numbers
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from reenact.errors import DeviceError, InputError, OutputError

N = TypeVar("N")


@dataclass(frozen=True)
class Range:
    option: str  # the CLI's spelling, used in messages (the batch manifest's keys are the same names)
    low: float
    high: float | None = None  # None: no upper bound
    integer: bool = False
    exclusive: bool = False  # low and high themselves are refused
    note: str = ""  # what the value means, appended to the message

    def contains(self, value: float) -> bool:
        if self.exclusive:
            return self.low < value and (self.high is None or value < self.high)
        return self.low <= value and (self.high is None or value <= self.high)

    def span(self) -> str:
        """The range as `--help` quotes it: "0..2", "at least 64", "strictly between 0 and 1"."""
        if self.high is None:
            return f"{'above' if self.exclusive else 'at least'} {self.low:g}"
        if self.exclusive:
            return f"strictly between {self.low:g} and {self.high:g}"
        return f"{self.low:g}..{self.high:g}"

    def describe(self) -> str:
        """"a number from 0 to 2", "a whole number of at least 64", "a number strictly between 0 and 1"."""
        kind = "a whole number" if self.integer else "a number"
        if self.high is None:
            return f"{kind} {'above' if self.exclusive else 'of at least'} {self.low:g}"
        if self.exclusive:
            return f"{kind} strictly between {self.low:g} and {self.high:g}"
        return f"{kind} from {self.low:g} to {self.high:g}"


RANGES: dict[str, Range] = {
    "strength": Range("--strength", 0, 2, note="1 transfers the change as driven, 0 none"),
    "scale": Range("--scale", 0, 4, note="a per-channel gain on top of --strength; 0 is --mute"),
    "threshold": Range("--threshold", 0, 1, exclusive=True,
                       note="a cosine similarity; each embedder's own is in docs/identity.md"),
    "check_every": Range("--check-every", 1, integer=True, note="identity-check every N-th frame"),
    "batch_size": Range("--batch-size", 1, 1024, integer=True, note="frames rendered per batch"),
    "max_size": Range("--max-size", 64, integer=True, note="the photo's long side in px after scaling down"),
    "face": Range("--face", 0, integer=True, note="0-based, left to right"),
    "fps": Range("--fps", 1, 240, note="frames per second, such as 25 or 30000/1001"),
}


def span(name: str) -> str:
    """`RANGES[name]` as `--help` quotes it, e.g. "0..2"."""
    return RANGES[name].span()


def check(name: str, value: N, shown: str | None = None) -> N:
    """`value` unchanged when it is a finite number in `RANGES[name]` (a whole one where the range asks for it), else
    InputError. `shown` is how the message quotes it (default `--option value`, e.g. `--scale AU12=nan`)."""
    limit = RANGES[name]
    text = shown or f"{limit.option} {_format(value)}"
    number = isinstance(value, numbers.Real) and not isinstance(value, bool)
    whole = isinstance(value, numbers.Integral) or not limit.integer
    if not (number and whole and math.isfinite(value) and limit.contains(float(value))):  # type: ignore[arg-type]
        raise InputError(f"{text}: use {limit.describe()} ({limit.note}).")
    return value


def check_photo_options(max_size: int, face: int | None) -> None:
    """`max_size` and `face` (None: the largest face) in range, before the photo is read: a tiny `max_size` would
    otherwise be reported as a photo without a face."""
    check("max_size", max_size)
    if face is not None:
        check("face", face)


def _format(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def check_distinct(inputs: dict[str, Path | None], outputs: dict[str, Path | None]) -> None:
    """OutputError when an output is one of the inputs or two outputs are the same file. Keys name the paths in the
    message (`"-o"`, `"--report"`, `"DRIVER"`); None values are ignored. Paths are compared resolved (links and
    `..` followed), and existing files also by identity (a hard link is the same file)."""
    seen: list[tuple[str, Path]] = [(k, p) for k, p in inputs.items() if p is not None]
    for key, path in outputs.items():
        if path is None:
            continue
        for other_key, other in seen:
            if _same_file(path, other):
                raise OutputError(f"{key} {path} is the same file as {other_key}; give every output a name of its "
                                  f"own, other than the inputs'.")
        seen.append((key, path))


def _same_file(a: Path, b: Path) -> bool:
    if Path(a).expanduser().resolve() == Path(b).expanduser().resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet): not the same file
        return False


DEVICE_SPEC = re.compile(r"^(auto|cpu|cuda(:\d+)?|mps)$")


def check_device_spec(spec: str) -> str:
    """`--device` spelled `auto|cpu|cuda[:N]|mps` (lower-cased), else DeviceError; whether it exists is
    reenact.device.resolve_device's question, which needs torch."""
    spec = (spec or "auto").strip().lower()
    if not DEVICE_SPEC.match(spec):
        raise DeviceError(f"Unknown device {spec!r}: use auto, cpu, cuda or cuda:N.")
    return spec


IDENTITY_SPEC = re.compile(r"^(default|mobilefacenet|dlib|arcface(:.+)?)$")


def check_identity_spec(spec: str) -> str:
    """`--identity` spelled as reenact.identity.load_embedder takes it, checked before torch loads (the embedder
    itself loads with the models, which for `drive` is after the driver is tracked)."""
    if not IDENTITY_SPEC.match((spec or "default").strip()):
        raise InputError(f"Unknown identity embedder {spec!r}: use mobilefacenet | dlib | arcface[:PATH] or default "
                         f"(mobilefacenet).")
    return spec
