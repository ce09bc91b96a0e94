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
from typing import Any, Callable, get_args, get_origin, get_type_hints

from reenact.errors import InputError, ReenactError
from reenact.limits import check, check_identity_spec, check_photo_options
from reenact.options import RenderOptions, SpeakOptions, check_smoothing  # not reenact.pipeline: no torch
from reenact.retarget import RetargetOptions, parse_assignments
from reenact.specs import IMAGE_SUFFIXES, DriveSpec, SpeakSpec  # noqa: F401  (IMAGE_SUFFIXES: reenact.batch's)

VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".ts"}
AUDIO_SUFFIXES = {".wav", ".mp3", ".m4a", ".aac", ".flac", ".ogg", ".opus", ".wma"}
OUTPUT_SUFFIXES = {".mp4", ".mov", ".mkv"}


# ------------------------------------------------------------------------------------------------ jobs and options
@dataclass(frozen=True)
class JobOptions:
    """What one job may set: the `drive`/`speak` render options plus the job's own settings. A manifest's options
    column overrides them per job by their field names, which are the CLI's option names
    (`strength=0.8;mute=AU45;crf=20`): see `override`."""

    render: RenderOptions = field(default_factory=RenderOptions)  # with the retargeting (strength, region, ...)
    smooth: str = "offline"  # offline | online | none; part of the track cache key
    max_size: int = 1280
    face: int | None = None
    text: str | None = None  # audio drivers (`speak`): transcript for forced alignment
    fps: str = "25"  # audio drivers: output frame rate
    still: bool = False  # audio drivers: lips only, no blinks or head motion
    seed: int = 0  # audio drivers: seed of the idle motion

    def override(self, text: str, where: str) -> "JobOptions":
        """Apply `key=value;key=value` (keys as in the CLI, `-` or `_`) and validate: each key is a field of
        RetargetOptions, RenderOptions or JobOptions (OVERRIDES), its value read by the field's type."""
        changes: dict[type, dict[str, Any]] = {RetargetOptions: {}, RenderOptions: {}, JobOptions: {}}
        for part in filter(None, (p.strip() for p in text.split(";"))):
            key, sep, value = part.partition("=")
            key = key.strip().lower().replace("-", "_")
            if key not in OVERRIDES or not sep:
                raise InputError(f"{where}: option {part!r} is not KEY=VALUE with KEY one of {', '.join(OVERRIDES)}.")
            owner, parse = OVERRIDES[key]
            try:
                changes[owner][key] = parse(value)
            except (ValueError, ReenactError) as err:
                raise InputError(f"{where}: option {part!r} has a bad value ({err}).") from None
        try:  # every options object checks its own values (reenact.limits) when built
            retarget = replace(self.render.retarget, **changes[RetargetOptions])
            return replace(self, render=replace(self.render, retarget=retarget, **changes[RenderOptions]),
                           **changes[JobOptions])
        except InputError as err:
            raise InputError(f"{where}: {err}") from None

    def __post_init__(self) -> None:  # a bad value fails when the options are made, with the CLI's option name
        self.render.retarget.gains()  # region, --scale and --mute names
        check_smoothing(self.smooth)
        check_photo_options(self.max_size, self.face)
        self.rate()

    def validate(self, where: str = "options") -> "JobOptions":
        """Check the options again, naming `where` in the message."""
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


# ------------------------------------------------------------------------------------------------ per-row overrides
def _bool(v: str) -> bool:
    low = v.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{v!r} is not true/false")


def _names(v: str) -> list[str]:  # mute=AU45+AU12 or AU45,AU12
    return [n.strip() for n in v.replace("+", ",").split(",") if n.strip()]


def _gains(v: str) -> dict[str, float]:  # scale=AU12:1.4,jawOpen=0.5 (`:` reads better inside KEY=VALUE)
    return parse_assignments([v.replace(":", "=")], "scale")


def _optional(parse: Callable[[str], Any]) -> Callable[[str], Any]:  # "" or auto: the default (None)
    return lambda v: None if v.strip().lower() in ("", "auto") else parse(v)


def value_parser(hint: Any) -> Callable[[str], Any]:
    """How a manifest value becomes a field of type `hint` (bool, int, float, str, X | None, dict, list)."""
    args = get_args(hint)
    if type(None) in args:
        inner = value_parser(next(a for a in args if a is not type(None)))
        return _optional(inner) if inner is not str.strip else lambda v: v.strip() or None
    simple = {bool: _bool, int: int, float: float, str: str.strip}
    return simple.get(hint) or {dict: _gains, list: _names}[get_origin(hint)]


# Fields a row may not set: what holds the others, and what the batch decides for every job (--force).
_NOT_PER_ROW = {"render", "retarget", "overwrite"}


def overrides() -> dict[str, tuple[type, Callable[[str], Any]]]:
    """Every key a manifest row may set -> (the options class that has it as a field, its value parser): derived
    from the fields of RetargetOptions, RenderOptions and JobOptions, so a new field is a new key."""
    found: dict[str, tuple[type, Callable[[str], Any]]] = {}
    for owner in (RetargetOptions, RenderOptions, JobOptions):
        hints = get_type_hints(owner)
        found.update({f.name: (owner, value_parser(hints[f.name]))
                      for f in fields(owner) if f.name not in _NOT_PER_ROW})
    return found


OVERRIDES = overrides()


@dataclass(frozen=True)
class Job:
    source: Path
    driver: Path
    output: Path
    options: JobOptions = field(default_factory=JobOptions)

    @property
    def kind(self) -> str:
        """`audio` (a `speak` job) for audio files by suffix, else `video` (a `drive` job)."""
        return "audio" if self.driver.suffix.lower() in AUDIO_SUFFIXES else "video"

    def drive_spec(self, output: Path, overwrite: bool) -> DriveSpec:
        """A video driver's job as `reenact drive` would run it, writing to `output`."""
        o = self.options
        return DriveSpec(self.source, self.driver, output, replace(o.render, overwrite=overwrite),
                         max_size=o.max_size, face=o.face, smooth=o.smooth)

    def speak_spec(self, output: Path, overwrite: bool) -> SpeakSpec:
        """An audio driver's job as `reenact speak` would run it, writing to `output`."""
        o = self.options
        speech = SpeakOptions(fps=o.rate(), text=o.text, still=o.still, seed=o.seed,
                              strength=o.render.retarget.strength)
        return SpeakSpec(self.source, self.driver, output, replace(o.render, overwrite=overwrite), speech,
                         max_size=o.max_size, face=o.face)


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


@dataclass(frozen=True)
class BatchConfig:
    device: str = "auto"
    identity: str = "default"
    force: bool = False
    workers: int | None = None  # None: plan_workers decides
    ray_address: str | None = None  # "auto" (running cluster), "local" (start one here) or "ray://host:port"
    gpus_per_task: float = 1.0  # Ray, when the cluster has GPUs

    def __post_init__(self) -> None:  # before any job starts, not in every worker
        check_identity_spec(self.identity)


@dataclass(frozen=True)
class BatchSpec:
    """`batch`: the jobs (every photo of `sources` x every driver of `drivers`, or the rows of the `pairs` manifest)
    with their `options`, rendered into the folder `output` as `config` says (reenact.batch.plan and run_batch)."""

    output: Path
    sources: str | None = None  # a folder, a glob or a file
    drivers: str | None = None
    pairs: Path | None = None  # a CSV manifest instead of sources x drivers
    options: JobOptions = field(default_factory=JobOptions)
    config: BatchConfig = field(default_factory=BatchConfig)

    def __post_init__(self) -> None:
        if self.output.exists() and not self.output.is_dir():
            raise InputError(f"--output {self.output} is a file; give a folder for the batch's videos.")
        if self.pairs is not None and (self.sources or self.drivers):
            raise InputError("Give either SOURCES and DRIVERS or --pairs, not both.")
        if self.pairs is None and not (self.sources and self.drivers):
            raise InputError("Give SOURCES and DRIVERS (folders, globs or files), or --pairs manifest.csv.")


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
