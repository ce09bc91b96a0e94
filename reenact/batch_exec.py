"""The execution side of reenact.batch: what a worker does for one job, and the backends that run the jobs
(this process, a spawn-started process pool, or Ray tasks). See reenact/batch.py for the policy; the jobs' types are
in reenact/batch_jobs.py.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

from reenact.batch_jobs import BatchConfig, Job, JobOptions, mouths_path, plan_workers
from reenact.device import configure_threads
from reenact.errors import EXIT_RUNTIME, InputError, ReenactError, from_os_error


# ------------------------------------------------------------------------------------------------ worker side
class _Worker:
    """Models (loaded once per process) and the last few analysed sources (or their errors)."""

    def __init__(self, device: str, identity: str) -> None:
        from reenact.device import resolve_device
        from reenact.analysis import Models

        self.spec = (device, identity)
        self.models = Models(resolve_device(device), identity)
        self.sources: OrderedDict[tuple, Any] = OrderedDict()

    def source(self, path: Path, opts: JobOptions) -> tuple[Any, bool]:
        from reenact.analysis import load_source

        try:
            st = path.stat()
            key = (str(path.absolute()), st.st_size, st.st_mtime_ns, opts.max_size, opts.face)
        except OSError:
            key = None  # missing file: load_source raises the right MediaError
        if key in self.sources:
            self.sources.move_to_end(key)
            hit = self.sources[key]
            if isinstance(hit, ReenactError):
                raise hit
            return hit, True
        try:
            value = load_source(path, self.models, opts.max_size, opts.face)
        except ReenactError as err:
            value = err
        if key is not None:
            self.sources[key] = value
            while len(self.sources) > 4:
                self.sources.popitem(last=False)
        if isinstance(value, ReenactError):
            raise value
        return value, False


_WORKER: _Worker | None = None  # one per process: a pool or Ray worker keeps its models across jobs


def _worker(device: str, identity: str, threads: int = 0) -> _Worker:
    global _WORKER
    if _WORKER is None or _WORKER.spec != (device, identity):
        if threads:  # a pool or Ray worker: its share of the cores (reenact.batch.plan_workers)
            os.environ["REENACT_THREADS"] = str(threads)
        _WORKER = _Worker(device, identity)
        configure_threads(_WORKER.models.device)
    return _WORKER


def _attempt(fn: Callable[[], dict]) -> dict:
    """Run one unit of work; every failure becomes a record instead of an exception."""
    t = time.perf_counter()
    try:
        out = {"status": "ok", **fn()}
    except ReenactError as err:
        out = {"status": "failed", "message": str(err), "exit_code": err.exit_code}
    except OSError as err:  # a full disk, an unwritable sub-folder: the CLI's wording and exit code
        failure = from_os_error(err)
        out = {"status": "failed", "message": str(failure), "exit_code": failure.exit_code}
    except MemoryError:
        out = {"status": "failed", "message": "out of memory; try max_size=720 or batch_size=4.",
               "exit_code": EXIT_RUNTIME}
    except Exception as err:  # a bug in one job must not stop the others; the message names it
        out = {"status": "failed", "message": f"internal error {type(err).__name__}: {err}", "exit_code": EXIT_RUNTIME}
    out["seconds"] = round(time.perf_counter() - t, 3)
    return out


def extract_track(driver: Path, smooth: str, cache: Path, device: str, identity: str, threads: int = 0) -> dict:
    """Track a driver once and write its cache file (atomically). Runs in a worker."""
    import numpy as np

    from reenact.analysis import video_track
    from reenact.io.atomic import OutputGroup

    def work() -> dict:
        from reenact.render.interior import DriverMouths

        mouths = DriverMouths(driver)  # the driver's mouth points, for jobs with --mouth driver (as `drive` keeps)
        track = video_track(driver, _worker(device, identity, threads).models, smooth, on_frame=mouths.on_frame)
        cache.parent.mkdir(parents=True, exist_ok=True)
        with OutputGroup(overwrite=True) as group:  # the track and its mouth points: together or not at all
            track.write(group.stage(cache))
            with group.stage(mouths_path(cache)).open("wb") as f:
                np.save(f, np.stack(mouths.points).astype(np.float32), allow_pickle=False)
        damage = track.meta.get("damage")  # a damaged driver: tracked as far as it decodes, said in the event
        return {"frames": len(track), **({"message": damage_note(damage)} if damage else {})}

    return _attempt(work)


def damage_note(damage: dict) -> str:
    """The one line a job or track record carries for a driver rendered as far as it decodes."""
    return f"{damage['message']}: {damage['frames_decoded']} of {damage['frames_expected']} frames decode"


def driver_mouths(job: Job, track: Path | None, mouth: str) -> Any:
    """The driver's mouths for a drive job with `--mouth driver` (as `drive` carries them), from the points cached
    beside its track; None otherwise (the library's or painted mouths)."""
    if mouth != "driver" or track is None:
        return None
    import numpy as np

    from reenact.render.interior import DriverMouths

    points = np.load(mouths_path(track), allow_pickle=False)  # (T, 40, 2); `usable` checked it with the track
    return DriverMouths(job.driver, points=list(points))


def render_job(job: Job, track: Path | None, output: Path, overwrite: bool, device: str, identity: str,
               threads: int = 0) -> dict:
    """Render one job to `output` (an audio driver: `speak`; a video: `drive` from its cached track). Runs in a
    worker."""
    def work() -> dict:
        from reenact.params import Track
        from reenact.pipeline import drive
        from reenact.speak import speak

        w = _worker(device, identity, threads)
        if job.kind == "audio":  # `speak` analyses the photo itself
            report = speak(job.speak_spec(output, overwrite), w.models)
            return {"frames": report.frames, "identity": report.identity, "source_cached": False}
        spec = job.drive_spec(output, overwrite)
        source, cached = w.source(job.source, job.options)
        assert track is not None, "run_batch gives every video job its driver's track"
        tracked = Track.read(track)
        report = drive(spec, w.models, source=source, track=tracked,
                       mouths=driver_mouths(job, track, spec.render.mouth))
        damage = tracked.meta.get("damage")
        return {"frames": report.frames, "identity": report.identity, "source_cached": cached,
                **({"message": damage_note(damage)} if damage else {})}

    return _attempt(work)


def _keep(rec: dict) -> dict:
    """The fields of a worker's record that JobResult takes."""
    return {k: rec[k] for k in ("status", "seconds", "message", "exit_code", "frames", "identity", "source_cached")
            if k in rec}


class LocalBackend:
    """This process (one worker) or a spawn-started process pool (fork and torch threads do not mix)."""

    def __init__(self, config: BatchConfig, n_jobs: int) -> None:
        self.config = config
        self.workers, threads = plan_workers(max(n_jobs, 1), config.device, config.workers)
        self.threads = threads if self.workers > 1 else 0  # inline: leave this process's threads alone
        self.pool = None
        self.name = "pool" if self.workers > 1 else "inline"
        if self.workers > 1:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            self.pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"))

    def _run(self, calls: list[tuple[Any, Callable[..., dict], tuple]]):
        if self.pool is None:
            for key, fn, args in calls:
                yield key, fn(*args)
            return
        from concurrent.futures import as_completed

        futures = {self.pool.submit(fn, *args): key for key, fn, args in calls}
        for fut in as_completed(futures):
            try:
                yield futures[fut], fut.result()
            except Exception as err:  # a worker process died (killed, out of memory): record it, go on
                yield futures[fut], {"status": "failed", "message": f"worker process failed: {err}",
                                     "exit_code": EXIT_RUNTIME, "seconds": 0.0}

    def tracks(self, todo: list[tuple[Path, str, Path]]):
        c = self.config
        return self._run([((d, s, p), extract_track, (d, s, p, c.device, c.identity, self.threads))
                          for d, s, p in todo])

    def renders(self, runnable: list[tuple[int, Job, Path | None]]):
        c = self.config
        calls = [(i, render_job, (job, track, job.output, c.force, c.device, c.identity, self.threads))
                 for i, job, track in runnable]
        return ((i, _keep(rec)) for i, rec in self._run(calls))

    def close(self, abort: bool = False) -> None:
        """Wait for the pool's workers; `abort`: stop them at once (the batch was interrupted), so that the
        caller can remove what they were writing."""
        if self.pool is None:
            return
        if abort:
            processes = list((self.pool._processes or {}).values())  # no public way to stop running workers
            self.pool.shutdown(wait=False, cancel_futures=True)
            for proc in processes:
                proc.terminate()
            for proc in processes:
                proc.join(5)
            return
        self.pool.shutdown(cancel_futures=True)


# ------------------------------------------------------------------------------------------------ Ray
def _materialise(data: bytes, name: str) -> Path:
    """Write shipped input bytes once per node (content-addressed, keeping the file's name for messages)."""
    import tempfile

    folder = Path(tempfile.gettempdir()) / "reenact-ray" / hashlib.sha256(data).hexdigest()[:20]
    path = folder / name
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{name}.{os.getpid()}"
        tmp.write_bytes(data)
        os.replace(tmp, path)
    return path


def _ray_extract(origin: Path, data: bytes, smooth: str, device: str, identity: str) -> dict:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="reenact-") as tmp:
        out = Path(tmp) / "track.json"
        local = _materialise(data, origin.name)
        rec = extract_track(local, smooth, out, device, identity, threads=1)
        rec["message"] = rec.get("message", "").replace(str(local), str(origin))  # name the user's file
        if rec["status"] == "ok":
            rec["track_json"] = out.read_text()
            rec["mouths_npy"] = mouths_path(out).read_bytes()
    return rec


def _ray_render(job: Job, src: bytes, drv: bytes, track_json: bytes | None, mouths_npy: bytes | None, device: str,
                identity: str) -> dict:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="reenact-") as tmp:
        local = replace(job, source=_materialise(src, job.source.name), driver=_materialise(drv, job.driver.name),
                        output=Path(tmp) / job.output.name)
        track = None
        if track_json is not None:
            track = Path(tmp) / "track.json"
            track.write_bytes(track_json)
            mouths_path(track).write_bytes(mouths_npy or b"")
        rec = render_job(local, track, local.output, True, device, identity, threads=1)
        for here, there in ((local.source, job.source), (local.driver, job.driver), (local.output, job.output)):
            rec["message"] = rec.get("message", "").replace(str(here), str(there))
        if local.output.exists():  # also a video kept for inspection after a --strict identity failure
            rec["video"] = local.output.read_bytes()
    return rec


class RayBackend:
    """The same jobs as Ray tasks. Inputs go through the object store; outputs come back as bytes."""

    name = "ray"

    def __init__(self, config: BatchConfig) -> None:
        try:
            import ray
        except ImportError:
            raise InputError("--ray needs Ray installed: pip install 'reenact[ray]' (or pip install ray).") from None
        self.ray, self.config, self.started = ray, config, False
        if not ray.is_initialized():
            try:
                ray.init(address=config.ray_address, include_dashboard=False, log_to_driver=False,
                         configure_logging=False)
            except (ConnectionError, RuntimeError, ValueError) as err:
                raise InputError(f"Cannot start or reach Ray at {config.ray_address!r} ({err}); run `ray start "
                                 f"--head` first, or use --ray local.".replace("\n", " ")) from None
            self.started = True
        res = ray.cluster_resources()
        self.workers = int(res.get("CPU", 1))
        gpus = config.gpus_per_task if res.get("GPU", 0) > 0 else 0
        self.extract_fn = ray.remote(_ray_extract).options(num_cpus=1, num_gpus=gpus)
        self.render_fn = ray.remote(_ray_render).options(num_cpus=1, num_gpus=gpus)
        self.refs: dict[Path, Any] = {}

    def _put(self, path: Path) -> Any:
        if path not in self.refs:
            try:
                data = path.read_bytes()
            except OSError:
                data = b""  # the worker then reports the file as empty/missing with the usual message
            self.refs[path] = self.ray.put(data)
        return self.refs[path]

    def _gather(self, refs: dict):
        remaining = list(refs)
        while remaining:
            ready, remaining = self.ray.wait(remaining, num_returns=1)
            for ref in ready:
                try:
                    yield refs[ref], self.ray.get(ref)
                except self.ray.exceptions.RayError as err:
                    yield refs[ref], {"status": "failed", "message": f"Ray task failed: {str(err).splitlines()[0]}",
                                      "exit_code": EXIT_RUNTIME, "seconds": 0.0}

    def tracks(self, todo: list[tuple[Path, str, Path]]):
        from reenact.io.atomic import OutputGroup

        c = self.config
        refs = {self.extract_fn.remote(d, self._put(d), s, c.device, c.identity): (d, s, p) for d, s, p in todo}
        for (d, s, p), rec in self._gather(refs):
            text, mouths = rec.pop("track_json", None), rec.pop("mouths_npy", None)
            if text is not None:
                p.parent.mkdir(parents=True, exist_ok=True)
                with OutputGroup(overwrite=True) as group:  # the track and its mouth points together
                    group.stage(p).write_text(text)
                    group.stage(mouths_path(p)).write_bytes(mouths or b"")
            yield (d, s, p), rec

    def renders(self, runnable: list[tuple[int, Job, Path | None]]):
        from reenact.io.atomic import atomic_output

        c = self.config
        refs = {self.render_fn.remote(job, self._put(job.source), self._put(job.driver),
                                      self._put(track) if track else None,
                                      self._put(mouths_path(track)) if track else None, c.device, c.identity): (i, job)
                for i, job, track in runnable}  # each file enters the object store once, however many jobs use it
        for (i, job), rec in self._gather(refs):
            video = rec.pop("video", None)
            if video is not None:
                try:
                    with atomic_output(job.output, overwrite=c.force) as tmp:
                        tmp.write_bytes(video)
                except ReenactError as err:
                    rec.update(status="failed", message=str(err), exit_code=err.exit_code)
            yield i, _keep(rec)

    def close(self, abort: bool = False) -> None:
        """Ray tasks write into their own temporary folders; this process writes every output, so an abort needs
        nothing more than the shutdown."""
        if self.started:
            self.ray.shutdown()
