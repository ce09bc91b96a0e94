"""The batch's jobs and settings: what one job may set (JobOptions, with the manifest's per-row overrides), the job,
its result, the batch's summary and configuration, and how many workers run them. Below both the planner
(reenact.batch) and the executors (reenact.batch_exec); imports neither torch nor PyAV, so a rerun with nothing
left to do stays fast.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields, replace
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable

from reenact.errors import InputError, ReenactError
from reenact.limits import check, check_identity_spec, check_photo_options
from reenact.options import RenderOptions, check_smoothing  # not reenact.pipeline: a rerun imports no torch
from reenact.retarget import RetargetOptions, parse_assignments

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}
VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".ts"}
AUDIO_SUFFIXES = {".wav", ".mp3", ".m4a", ".aac", ".flac", ".ogg", ".opus", ".wma"}
OUTPUT_SUFFIXES = {".mp4", ".mov", ".mkv"}


# ------------------------------------------------------------------------------------------------ jobs and options
def _bool(v: str) -> bool:
    low = v.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{v!r} is not true/false")


def _names(v: str) -> list[str]:
    return [n.strip() for n in v.replace("+", ",").split(",") if n.strip()]


def _scale(v: str) -> dict[str, float]:
    return parse_assignments([v.replace(":", "=")], "scale")


def _maybe(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    return lambda v: None if v.strip().lower() in ("", "auto") else kind(v)


_RETARGET_KEYS = {f.name for f in fields(RetargetOptions)}
_PARSE: dict[str, Callable[[str], Any]] = {
    "strength": float, "absolute": _bool, "region": str.strip, "scale": _scale, "mute": _names, "pose": _bool,
    "gaze": _bool, "smooth": str.strip, "max_size": int, "face": _maybe(int), "strict": _bool,
    "threshold": _maybe(float), "check_every": int, "batch_size": int, "crf": int, "preset": str.strip, "text": str, "fps": str.strip,
    "still": _bool, "seed": int, "refine": _bool,
}


# RenderOptions fields a job may set
_RENDER_KEYS = ("strict", "threshold", "check_every", "batch_size", "crf", "preset", "refine")


@dataclass
class JobOptions:
    """What one job may set: the `drive`/`speak` render options plus the job's own settings. A manifest's options
    column overrides them per job with the CLI's option names (`strength=0.8;mute=AU45;crf=20`)."""

    render: RenderOptions = field(default_factory=RenderOptions)  # with the retargeting (strength, region, ...)
    smooth: str = "offline"  # offline | online | none; part of the track cache key
    max_size: int = 1280
    face: int | None = None
    text: str | None = None  # audio drivers (`speak`): transcript for forced alignment
    fps: str = "25"  # audio drivers: output frame rate
    still: bool = False  # audio drivers: lips only, no blinks or head motion
    seed: int = 0  # audio drivers: seed of the idle motion

    def override(self, text: str, where: str) -> "JobOptions":
        """Apply `key=value;key=value` (keys as in the CLI, `-` or `_`) and validate."""
        changes: dict[str, Any] = {}
        for part in filter(None, (p.strip() for p in text.split(";"))):
            key, sep, value = part.partition("=")
            key = key.strip().lower().replace("-", "_")
            if key not in _PARSE or not sep:
                raise InputError(f"{where}: option {part!r} is not KEY=VALUE with KEY one of {', '.join(_PARSE)}.")
            try:
                changes[key] = _PARSE[key](value)
            except (ValueError, ReenactError) as err:
                raise InputError(f"{where}: option {part!r} has a bad value ({err}).") from None
        retarget = {k: changes.pop(k) for k in list(changes) if k in _RETARGET_KEYS}
        render = {k: changes.pop(k) for k in list(changes) if k in _RENDER_KEYS}
        try:  # every options object checks its own values (reenact.limits) when built
            new = replace(self.render, retarget=replace(self.render.retarget, **retarget), **render)
            return replace(self, render=new, **changes)
        except InputError as err:
            raise InputError(f"{where}: {err}") from None

    def __post_init__(self) -> None:  # a bad value fails when the options are made, with the CLI's option name
        self.render.retarget.gains()  # region, --scale and --mute names
        check_smoothing(self.smooth)
        check_photo_options(self.max_size, self.face)
        self.rate()

    def validate(self, where: str = "options") -> "JobOptions":
        """Check the options again (after a change to a field), naming `where` in the message."""
        try:
            self.__post_init__()
        except InputError as err:
            raise InputError(f"{where}: {err}") from None
        return self

    def rate(self) -> Fraction:
        """The output frame rate of audio jobs."""
        try:
            rate = Fraction(self.fps)
        except (ValueError, ZeroDivisionError):
            raise InputError(f"--fps {self.fps!r}: give a number or a ratio such as 25 or 30000/1001.") from None
        return check("fps", rate, f"--fps {self.fps}")

    def render_options(self, overwrite: bool) -> RenderOptions:
        return replace(self.render, overwrite=overwrite)


@dataclass
class Job:
    source: Path
    driver: Path
    output: Path
    options: JobOptions = field(default_factory=JobOptions)

    @property
    def kind(self) -> str:
        """`audio` (a `speak` job) for audio files by suffix, else `video` (a `drive` job)."""
        return "audio" if self.driver.suffix.lower() in AUDIO_SUFFIXES else "video"


@dataclass
class JobResult:
    index: int
    source: str
    driver: str
    output: str
    status: str  # ok | skipped | failed
    seconds: float = 0.0
    message: str = ""
    exit_code: int = 0
    frames: int = 0
    identity: dict[str, Any] = field(default_factory=dict)
    source_cached: bool = False  # the worker had already analysed this source

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class BatchSummary:
    jobs: list[JobResult]
    seconds: float
    backend: str  # inline | pool | ray | none (every job skipped)
    workers: int
    tracks_extracted: int = 0
    tracks_cached: int = 0

    def count(self, status: str) -> int:
        return sum(j.status == status for j in self.jobs)

    @property
    def ok(self) -> int:
        return self.count("ok")

    @property
    def skipped(self) -> int:
        return self.count("skipped")

    @property
    def failed(self) -> int:
        return self.count("failed")

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0

    def to_dict(self) -> dict[str, Any]:
        head = {k: getattr(self, k) for k in ("ok", "skipped", "failed", "exit_code", "backend", "workers",
                                               "tracks_extracted", "tracks_cached")}
        return {"summary": {**head, "jobs": len(self.jobs), "seconds": round(self.seconds, 3)},
                "jobs": [j.to_dict() for j in self.jobs]}


@dataclass
class BatchConfig:
    device: str = "auto"
    identity: str = "default"
    force: bool = False
    workers: int | None = None  # None: plan_workers decides
    ray_address: str | None = None  # "auto" (running cluster), "local" (start one here) or "ray://host:port"
    gpus_per_task: float = 1.0  # Ray, when the cluster has GPUs

    def __post_init__(self) -> None:  # before any job starts, not in every worker
        check_identity_spec(self.identity)


def plan_workers(n_jobs: int, device: str = "auto", requested: int | None = None) -> tuple[int, int]:
    """(worker processes, torch threads per worker) for this machine; the policy is in reenact.batch's docstring."""
    from reenact.device import resolve_device

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if requested:
        workers = requested
    elif resolve_device(device).type == "cuda":
        workers = 1
    else:
        workers = cores // 2
    workers = max(1, min(workers, n_jobs))
    return workers, max(1, cores // (2 * workers))  # half the cores for torch, as reenact.device does


def mouths_path(cache: Path) -> Path:
    """Beside a cached track: the driver's mouth points per frame (T, 40, 2), so that a batch's drive jobs carry the
    driver's own mouth interior as `drive` does (reenact.render.interior.DriverMouths)."""
    return cache.with_suffix(".mouths.npy")
