"""Batch rendering (docs/batch.md): many sources x many drivers, resumable, on a local process pool or on Ray.

    jobs = plan_jobs("photos/", "clips/", Path("out"))        # every source x every driver
    jobs = read_manifest(Path("pairs.csv"), Path("out"))      # or explicit pairs, with per-job options
    summary = run_batch(jobs, Path("out"), BatchConfig(workers=2))
    summary.ok, summary.skipped, summary.failed, summary.exit_code

Work is done once. Each video driver's parameter track is extracted once and cached beside the outputs in
`OUTDIR/.reenact-cache/tracks/`, keyed by the sha256 of the file's content, the tracking settings, reenact's version
and source files and the sha256 of every shipped weight, so a changed file, model or reading never reuses a stale
track. Each worker analyses each source photo once (jobs are sent out grouped by source, and a worker keeps its last
few sources).

Resumable: a job whose output file exists is skipped (`force=True` renders it again; the track cache stays valid
because its key covers everything that shapes a track). Videos are written under a hidden temporary name and
renamed when complete, so an interrupted batch never leaves a partial file under an output name.

One failing job (corrupt file, no face, ...) never stops the batch: its message and exit code are recorded in its
JobResult, and `BatchSummary.exit_code` is 1 when any job failed.

Parallelism policy (`plan_workers`): on CPU, min(cores // 2, jobs) worker processes with cores // (2 * workers) torch
threads each, so torch uses half the cores, as in reenact.device.configure_threads, and each worker's decoder and
x264 encoder have the other half; with one worker the jobs run in this process (no start-up cost). On CUDA one
worker by default: the GPU is the shared resource and every extra process would hold its own copy of the models;
pass `workers` to override.
Ray (`ray_address`): the same jobs become Ray tasks, GPU-aware (`num_gpus` per task when the cluster has GPUs).
Inputs travel through Ray's object store and outputs come back as bytes, so workers need no shared file system;
the driver process writes every output and cache file. Ray is optional (`pip install reenact[ray]`).
"""

from __future__ import annotations

import csv
import glob
import hashlib
import json
import time
from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterable

from reenact.batch_jobs import (  # the jobs' types, below the executors (reenact.batch_exec); importable from here
    AUDIO_SUFFIXES,
    IMAGE_SUFFIXES,
    OUTPUT_SUFFIXES,
    VIDEO_SUFFIXES,
    BatchConfig,
    BatchSpec,
    BatchSummary,
    Job,
    JobOptions,
    JobResult,
    mouths_path,
    plan_workers,
)
from reenact.errors import InputError, ReenactError
from reenact.io.atomic import remove_stale
from reenact.limits import check_distinct

__all__ = ["AUDIO_SUFFIXES", "CACHE_DIR", "IMAGE_SUFFIXES", "OUTPUT_SUFFIXES", "VIDEO_SUFFIXES", "BatchConfig",
           "BatchSpec", "BatchSummary", "Job", "JobOptions", "JobResult", "expand", "plan", "plan_jobs", "plan_workers",
           "read_manifest", "run_batch", "track_key", "track_path"]

CACHE_DIR = ".reenact-cache"
Event = Callable[[dict], None]


# ------------------------------------------------------------------------------------------------ discovery
def expand(spec: str | Path, suffixes: set[str], what: str) -> list[Path]:
    """A folder (its files with `suffixes`, not recursive, hidden files ignored), a glob, or one file."""
    path = Path(spec).expanduser()
    if path.is_dir():
        found = [p for p in sorted(path.iterdir()) if p.is_file() and not p.name.startswith(".")
                 and p.suffix.lower() in suffixes]
        if not found:
            raise InputError(f"No {what} in folder {path} (looked for {', '.join(sorted(suffixes))}).")
        return found
    if any(c in str(spec) for c in "*?["):
        found = [Path(p) for p in sorted(glob.glob(str(path), recursive=True)) if Path(p).is_file()]
        if not found:
            raise InputError(f"No file matches {spec}; check the pattern (quote it so the shell does not expand it).")
        return found
    if path.is_file():
        return [path]
    raise InputError(f"{what.capitalize()} {spec} not found; give a folder, a glob or a file.")


def _short_hash(*parts: Path) -> str:
    return hashlib.sha1("\0".join(str(p.absolute()) for p in parts).encode()).hexdigest()[:6]


def _labels(paths: Iterable[Path]) -> dict[Path, str]:
    """File stem, with a short hash of the path added when two different files share a stem."""
    groups: dict[str, list[Path]] = {}
    for p in dict.fromkeys(paths):
        groups.setdefault(p.stem.lower(), []).append(p)
    return {p: p.stem if len(g) == 1 else f"{p.stem}-{_short_hash(p)}" for g in groups.values() for p in g}


def _name_outputs(pairs: list[tuple[Path, Path, Path | None, JobOptions]], outdir: Path) -> list[Job]:
    src, drv = _labels(p[0] for p in pairs), _labels(p[1] for p in pairs)
    jobs = [Job(s, d, outdir / (o if o is not None else f"{src[s]}__{drv[d]}.mp4"), opts) for s, d, o, opts in pairs]
    seen: dict[str, int] = {}
    for i, (job, pair) in enumerate(zip(jobs, pairs)):
        key = str(job.output.absolute()).lower()  # case-insensitive file systems count too
        if key in seen:
            if pair[2] is not None:
                raise InputError(f"Two jobs write {job.output}; give each manifest row its own output.")
            job = jobs[i] = replace(job, output=job.output.with_name(
                f"{job.output.stem}-{_short_hash(job.source, job.driver)}.mp4"))
            key = str(job.output.absolute()).lower()
        seen[key] = i
        check_distinct({"source": job.source, "driver": job.driver}, {f"job {i + 1}: output": job.output})
    return jobs


def plan_jobs(sources: str | Path, drivers: str | Path, outdir: Path, options: JobOptions | None = None) -> list[Job]:
    """Every source x every driver, named `{source}__{driver}.mp4` in `outdir`."""
    options = (options or JobOptions()).validate()
    srcs = expand(sources, IMAGE_SUFFIXES, "source photos")
    drvs = expand(drivers, VIDEO_SUFFIXES | AUDIO_SUFFIXES, "drivers (videos or audio)")
    return _name_outputs([(s, d, None, options) for s in srcs for d in drvs], outdir)


def check_job_output(out: Path, outdir: Path, where: str) -> None:
    """A manifest's output: a video name relative to OUTDIR that stays inside it (no absolute path, no `..`, no
    link out of it, not in the cache folder)."""
    inside = (outdir / out).resolve().is_relative_to(outdir.resolve())
    if out.is_absolute() or out.drive or ".." in out.parts or out.parts[:1] == (CACHE_DIR,) or not inside:
        raise InputError(f"{where}: output {out} must be a path inside OUTDIR, relative to it (e.g. anna_talk.mp4 "
                         f"or anna/talk.mp4): no absolute path, no `..`, not in {CACHE_DIR}.")
    if out.suffix.lower() not in OUTPUT_SUFFIXES:
        raise InputError(f"{where}: output {out} must end in .mp4, .mov or .mkv.")


def read_manifest(path: Path, outdir: Path, options: JobOptions | None = None) -> list[Job]:
    """CSV rows `source,driver[,output][,options]` (a header row naming them is optional). Input paths are relative
    to the manifest's folder, outputs to `outdir`; options are `key=value;key=value` over `options`."""
    options = (options or JobOptions()).validate()
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = [r for r in csv.reader(f) if r and any(c.strip() for c in r) and not r[0].startswith("#")]
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise InputError(f"Cannot read manifest {path}: {err}; give a UTF-8 CSV file.") from None
    columns = ["source", "driver", "output", "options"]
    if rows and rows[0][0].strip().lower() == "source":
        columns = [c.strip().lower() for c in rows.pop(0)]
        if not {"source", "driver"} <= set(columns):
            raise InputError(f"Manifest {path}: the header needs source and driver columns.")
    if not rows:
        raise InputError(f"Manifest {path} has no jobs; write one `source,driver` row per job.")
    pairs = []
    for n, row in enumerate(rows, 1):
        cell = {c: v.strip() for c, v in zip(columns, row)}
        where = f"{path.name} job {n}"
        if not cell.get("source") or not cell.get("driver"):
            raise InputError(f"{where}: needs a source and a driver.")
        out = Path(cell["output"]) if cell.get("output") else None
        if out is not None:
            check_job_output(out, outdir, where)
        opts = options.override(cell.get("options", ""), where)
        pairs.append((path.parent / cell["source"], path.parent / cell["driver"], out, opts))
    return _name_outputs(pairs, outdir)


def plan(spec: BatchSpec) -> list[Job]:
    """The batch's jobs: its manifest's rows, or every source x every driver."""
    if spec.pairs is not None:
        return read_manifest(spec.pairs, spec.output, spec.options)
    return plan_jobs(spec.sources or "", spec.drivers or "", spec.output, spec.options)


# ------------------------------------------------------------------------------------------------ track cache
def file_sha256(path: Path) -> str:
    from reenact.weights import sha256_of

    try:
        return sha256_of(path)
    except OSError as err:
        raise InputError(f"Cannot read driver {path} ({err.strerror}); check the path.") from None


@lru_cache(maxsize=1)
def code_sha256() -> str:
    """sha256 over reenact's own source files: how a track is read changes between commits of one version."""
    root = Path(__file__).parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def track_key(driver: Path, smooth: str) -> str:
    """sha256 over the driver's content, the tracking settings, reenact's version and source, and every weight's
    sha256."""
    import reenact
    from reenact.weights import shipped

    parts = {"file": file_sha256(driver), "smooth": smooth, "calibrate": True, "reenact": reenact.__version__,
             "code": code_sha256(), "weights": {c.name: c.sha256 for c in shipped()}}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def track_path(outdir: Path, driver: Path, key: str) -> Path:
    return outdir / CACHE_DIR / "tracks" / f"{driver.stem}.{key[:20]}.json"


def usable(cache: Path) -> bool:
    """Whether a cached track reads back as a track with rows, with its driver's mouth points for every row (a
    damaged or incomplete entry is re-extracted, not trusted)."""
    import numpy as np

    from reenact.params import Track

    remove_stale(cache, mouths_path(cache))
    if not cache.exists() or not mouths_path(cache).exists():
        return False
    try:
        track = Track.read(cache)
        mouths = np.load(mouths_path(cache), mmap_mode="r", allow_pickle=False)
        return len(track) > 0 and "fps" in track.meta and mouths.shape[0] == len(track) and mouths.ndim == 3
    except (ReenactError, OSError, ValueError, KeyError, TypeError):
        return False


# ------------------------------------------------------------------------------------------------ running
def run_batch(jobs: list[Job], outdir: Path, config: BatchConfig | None = None,
              on_event: Event | None = None) -> BatchSummary:
    """Run the jobs (resuming: existing outputs are skipped unless `config.force`); never raises for one job.

    `on_event` sees `{"event": "track", ...}` per extracted driver track and `{"event": "job", ...}` per job.
    Raises InputError only for the batch as a whole (e.g. Ray asked for but not installed or not reachable).
    """
    config = config or BatchConfig()
    emit = on_event or (lambda e: None)
    start = time.perf_counter()
    outdir.mkdir(parents=True, exist_ok=True)
    results = _Results(jobs, emit)
    remove_stale(*(job.output for job in jobs))  # this batch's temporaries left by a killed run (SIGKILL, power cut)
    pending = [i for i, job in enumerate(jobs) if not results.skip(i, config.force)]
    need = tracks_needed(jobs, pending, outdir)
    # --force tracks again too; a cache entry that does not read back (damaged, cut short) is tracked again and
    # replaced instead of failing its jobs forever
    todo = [(d, s, p) for (d, s), p in need.items() if isinstance(p, Path) and (config.force or not usable(p))]
    cached = sum(isinstance(p, Path) for p in need.values()) - len(todo)
    if not pending:  # nothing to do: no models, no pool, no cluster
        return BatchSummary(results.done(), time.perf_counter() - start, "none", 0, tracks_cached=cached)
    from reenact.batch_exec import LocalBackend, RayBackend  # they import torch: only once there is work
    from reenact.device import resolve_device

    resolve_device(config.device)  # a device this machine lacks fails the batch here, not every job
    backend = RayBackend(config) if config.ray_address else LocalBackend(config, len(pending))
    try:
        extracted = extract_tracks(backend, todo, need, emit)
        render_jobs(backend, jobs, pending, need, results)
    except BaseException:  # Ctrl-C, SIGTERM, SIGHUP (reenact.errors.Interrupted) or a bug: stop the workers now
        backend.close(abort=True)
        remove_stale(*(job.output for job in jobs), *(p for _, _, p in todo),
                     *(mouths_path(p) for _, _, p in todo))  # what the stopped workers wrote
        raise
    backend.close()
    return BatchSummary(results.done(), time.perf_counter() - start, backend.name, backend.workers,
                        tracks_extracted=extracted, tracks_cached=cached)


class _Results:
    """Each job's JobResult as it finishes, announced as a `job` event."""

    def __init__(self, jobs: list[Job], emit: Event) -> None:
        self.jobs, self.emit = jobs, emit
        self.results: list[JobResult | None] = [None] * len(jobs)

    def finish(self, i: int, rec: dict) -> None:
        job = self.jobs[i]
        self.results[i] = result = JobResult(i, str(job.source), str(job.driver), str(job.output), **rec)
        self.emit({"event": "job", "done": sum(r is not None for r in self.results), "total": len(self.jobs),
                   **result.to_dict()})

    def skip(self, i: int, force: bool) -> bool:
        """Whether job i is done already (its output exists, no --force): then it is recorded as skipped. Otherwise
        its output's folder is made."""
        job = self.jobs[i]
        if job.output.exists() and not force:
            self.finish(i, {"status": "skipped", "message": "output exists"})
            return True
        job.output.parent.mkdir(parents=True, exist_ok=True)
        return False

    def done(self) -> list[JobResult]:
        return [r for r in self.results if r is not None]


def tracks_needed(jobs: list[Job], pending: list[int], outdir: Path) -> dict[tuple[Path, str], Path | dict]:
    """One track per (driver, smoothing) that a pending job needs: its cache path, or the failure (a record) that
    sinks its jobs."""
    need: dict[tuple[Path, str], Path | dict] = {}
    for i in pending:
        key = (jobs[i].driver, jobs[i].options.smooth)
        if jobs[i].kind == "video" and key not in need:
            try:
                need[key] = track_path(outdir, key[0], track_key(*key))
            except ReenactError as err:
                need[key] = {"status": "failed", "message": str(err), "exit_code": err.exit_code}
    return need


def extract_tracks(backend: Any, todo: list[tuple[Path, str, Path]], need: dict, emit: Event) -> int:
    """Track the drivers of `todo` on the backend, each announced as a `track` event; a failed one's record goes into
    `need` for its jobs. Returns how many were tracked."""
    extracted = 0
    for (d, s, p), rec in backend.tracks(todo):
        emit({"event": "track", "driver": str(d), "smooth": s, "cache": str(p), **rec})
        if rec["status"] == "ok":
            extracted += 1
        else:
            need[(d, s)] = {k: rec[k] for k in ("status", "message", "exit_code")}
    return extracted


def render_jobs(backend: Any, jobs: list[Job], pending: list[int], need: dict, results: _Results) -> None:
    """Render the pending jobs on the backend, grouped by source; a job whose driver failed fails with its
    message."""
    runnable = []
    for i in pending:
        got = need.get((jobs[i].driver, jobs[i].options.smooth)) if jobs[i].kind == "video" else None
        if isinstance(got, dict):
            results.finish(i, got)  # the driver's track failed: its message names the driver
        else:
            runnable.append((i, jobs[i], got))
    runnable.sort(key=lambda r: str(r[1].source))  # a worker then sees one source's jobs in a row
    for i, rec in backend.renders(runnable):
        results.finish(i, rec)
