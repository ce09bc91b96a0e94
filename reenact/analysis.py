"""Analysis stages shared by every job: the models (loaded once per process), the source photo's analysis, and the
driver video's parameter track (decode -> face tracking -> estimator -> smoothing), streamed in chunks.
"""

from __future__ import annotations

import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable

import numpy as np
import torch

from reenact.errors import InputError, MediaError, NoFaceError
from reenact.params import ARKIT52, Track

if TYPE_CHECKING:  # the networks' types; each module loads only when its network is first used
    from reenact.estimate import Estimator
    from reenact.face import FaceAnalyzer
    from reenact.identity import Embedder
    from reenact.render.refine import Refiner
    from reenact.render.shade import ExpressionShading
    from reenact.rig import EyeArea, Rig

Advance = Callable[[int], None]
ProgressFactory = Callable[[str, "int | None"], Any]  # (label, total) -> context manager yielding advance(n)


def no_progress(label: str, total: int | None) -> Any:
    import contextlib

    return contextlib.nullcontext(lambda n=1: None)


@dataclass
class Models:
    """Every network, loaded once on first use and shared by the jobs of a process.

    It leaves torch's thread count alone: applications call `reenact.device.configure_threads` (the CLI does).
    """

    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    identity: str = "default"

    @cached_property
    def analyzer(self) -> FaceAnalyzer:
        from reenact.face import FaceAnalyzer

        return FaceAnalyzer(self.device)

    @cached_property
    def estimator(self) -> Estimator:
        from reenact.estimate import Estimator

        return Estimator(self.device)

    @cached_property
    def rig(self) -> Rig:
        from reenact.rig import load_rig

        return load_rig(self.device)

    @cached_property
    def eye_area(self) -> EyeArea:
        from reenact.rig import load_eye_area

        return load_eye_area(self.device)

    @cached_property
    def refiner(self) -> Refiner | None:
        """The GAN refiner, or None when its weights are absent or their contract fails `render.refine.gate`.

        The contract records how the refiner did on held-out video and on unseen faces; one that is not better than
        the warp there costs time for nothing or harms the picture, so it is not used.
        """
        from reenact.render.refine import Refiner, gate
        from reenact.weights import contract_path, read_contract

        if not contract_path("refiner").exists() or gate(read_contract("refiner").extra) is not None:
            return None
        return Refiner(device=self.device)

    @cached_property
    def shading(self) -> ExpressionShading | None:
        """The expression-shading maps, or None when their weights are absent or their contract fails
        `render.shade.gate` (maps that do not carry over to people outside their fit are not used)."""
        from reenact.render.shade import ExpressionShading, gate
        from reenact.weights import contract_path, load_typed, read_contract

        if not contract_path("shading").exists() or gate(read_contract("shading").extra) is not None:
            return None
        return load_typed("shading", ExpressionShading, self.device)

    @cached_property
    def embedder(self) -> Embedder:
        from reenact.identity import load_embedder

        return load_embedder(self.identity, self.device)


@dataclass
class Source:
    """A source photo analysed once: the (possibly downscaled) image, its mesh and its own expression."""

    path: Path
    image: np.ndarray  # (H, W, 3) uint8
    points: np.ndarray  # (478, 3) px
    values: np.ndarray  # (C,) every estimator channel (reenact.estimate.CHANNELS)
    lip_gap: float = 0.0  # cm, the inner lips' gap in the canonical (pose-free) frame: how far the mouth is open

    @property
    def shapes(self) -> np.ndarray:  # (52,) ARKit
        return self.values[: len(ARKIT52)]


def load_source(path: Path, models: Models, max_size: int = 1280, face: int | None = None) -> Source:
    from reenact.io.image import MAX_SIDE, read_image

    # One resampling, in the decoder: a large JPEG is decoded at a fraction of its size, then resized to max_size
    # (max_size 0: only the reader's own cap). It was read at up to MAX_SIDE and resized a second time here.
    image = read_image(path, max_side=min(max_size, MAX_SIDE) if max_size else MAX_SIDE)
    landmarks = models.analyzer.analyze(image, face=face, name=str(path))
    from reenact.clip_geometry import canonical_points, lip_gap
    from reenact.estimate import photo_reading

    values = photo_reading(models.estimator.estimate(landmarks.points)[0])
    gap = float(lip_gap(canonical_points(landmarks.points[None].astype(np.float32), models.estimator))[0])
    return Source(Path(path), image, landmarks.points, values, max(gap, 0.0))


class Timer:
    def __init__(self) -> None:
        self.total: dict[str, float] = {}

    def __call__(self, stage: str, start: float) -> float:
        now = time.perf_counter()
        self.total[stage] = self.total.get(stage, 0.0) + (now - start)
        return now


def media_damage(path: Path, info: Any, fps: Any, decoded: int, message: str | None) -> dict[str, Any] | None:
    """{"message", "frames_expected", "frames_decoded"} when a video decoded short of what it declares (a decode
    error on the way, or fewer frames than its duration at `fps`: a cut MKV or WebM says its full length in its
    header and simply ends), else None. A frame or 2 % short is the rounding of variable-rate timing, not damage."""
    expected = round(float(info.duration) * float(fps)) or int(info.n_frames or 0)  # the reader's output: at fps
    short = expected - decoded > max(1, 0.02 * expected)
    if message is None and not short:
        return None
    if message is None:
        message = (f"{path} ends early: {decoded} of the {expected} frames it declares decode; it is probably "
                   f"truncated, re-export or re-download it")
    return {"message": message.rstrip("."), "frames_expected": expected, "frames_decoded": decoded}


MESH_BATCH = 8  # frames per batched mesh call while tracking (see reenact.face.track.FaceTracker.update_many)


def video_track(path: Path, models: Models, smooth: str = "offline", progress: ProgressFactory = no_progress,
                chunk: int = 16, on_frame: Callable[[Any, Any], None] | None = None, calibrate: bool = True) -> Track:
    """Decode a video, track the face, estimate every channel per frame, smooth. Memory: one chunk of frames.

    `on_frame(frame, landmarks_or_None)` sees every frame as it is tracked (e.g. to stream landmarks to a file).

    A damaged or truncated video is tracked as far as it decodes; `meta["damage"]` then says so, with the frames
    expected (its declared duration at its rate) and decoded, for the caller to warn about (or refuse, --strict).
    """
    from reenact.io.video import read_frames

    clip = _ClipTracker(models, chunk, on_frame)
    # The sequential mesh tracking stays on this thread; each finished chunk's iris + estimator runs on a second
    # thread (torch releases the GIL), so two cores work. At most two chunks wait: memory stays bounded.
    with ThreadPoolExecutor(max_workers=1) as pool, read_frames(path, on_damage="stop") as frames:
        info, fps = frames.info, frames.fps
        with progress("tracking driver", info.n_frames or None) as advance:
            clip.track(frames, pool, advance)
        clip.drain(pool)
        damage = frames.damage
    rows = clip.rows
    if not rows:
        raise MediaError(f"{path} has no video frames; give a video with at least one frame.")
    raw = np.concatenate([r for r, _ in rows])  # (T, C)
    if np.isnan(raw).all():
        raise NoFaceError(f"No face found in any frame of {path}; use a driving video that shows a face.")
    meta = {"fps": str(fps), "source": path.name,
            "timings_ms": {k: round(v * 1000, 1) for k, v in clip.timer.total.items()}}
    damaged = media_damage(path, info, fps, len(raw), damage)
    if damaged is not None:
        meta["damage"] = damaged
    return finish_track(raw, np.concatenate([g for _, g in rows]), float(fps), smooth, calibrate, meta)


class _ClipTracker:
    """video_track's streaming: the face mesh of MESH_BATCH frames at a time on the calling thread, each chunk's
    irises and estimates on a helper thread."""

    def __init__(self, models: Models, chunk: int, on_frame: Callable[[Any, Any], None] | None) -> None:
        self.models, self.chunk, self.on_frame = models, chunk, on_frame
        self.rows: list[tuple[np.ndarray, np.ndarray]] = []
        self.pending: list[tuple[Any, Any]] = []  # (frame, 468-point landmarks or None) awaiting the iris model
        self.inflight: deque[Future[tuple[np.ndarray, np.ndarray]]] = deque()
        self.tracker = models.analyzer.tracker()
        self.timer = Timer()

    def track(self, frames: Iterable[Any], pool: ThreadPoolExecutor, advance: Advance) -> None:
        """Every frame's mesh, in batches; each full chunk goes to the helper thread."""
        batch: list[Any] = []
        t = time.perf_counter()
        for frame in frames:
            self.timer("decode", t)
            batch.append(frame)
            if len(batch) == MESH_BATCH:
                self.track_batch(batch, advance)
            if len(self.pending) >= self.chunk:
                self.inflight.append(pool.submit(self.finish, self.pending))
                self.pending = []
                while len(self.inflight) > 2:
                    self.rows.append(self.inflight.popleft().result())
            t = time.perf_counter()
        if batch:
            self.track_batch(batch, advance)

    def track_batch(self, batch: list[Any], advance: Advance) -> None:
        """The mesh of a few frames at once: batched calls cost less per frame."""
        t = time.perf_counter()
        self.pending.extend(zip(batch, self.tracker.update_many([f.rgb for f in batch], iris=False)))
        self.timer("landmarks", t)
        advance(len(batch))
        batch.clear()

    def drain(self, pool: ThreadPoolExecutor) -> None:
        """The last chunk, and every chunk's rows in order."""
        if self.pending:
            self.inflight.append(pool.submit(self.finish, self.pending))
        self.rows.extend(f.result() for f in self.inflight)

    def finish(self, chunk: list[tuple[Any, Any]]) -> tuple[np.ndarray, np.ndarray]:
        """Iris (one batch of eye crops for the chunk) + estimator: (len(chunk), C) rows and their (len(chunk), 8)
        geometry (the clip's blinks, gaze and brows are read from it). Runs on the helper thread."""
        from reenact.clip_geometry import clip_geometry
        from reenact.face.track import add_irises

        models = self.models
        t = time.perf_counter()
        add_irises(models.analyzer.mesh, [f.rgb for f, _ in chunk], [lm for _, lm in chunk])
        if self.on_frame is not None:
            for f, lm in chunk:
                self.on_frame(f, lm)
        points = np.stack([_NAN_POINTS if lm is None else lm.points for _, lm in chunk])
        out = models.estimator.estimate(points)
        self.timer("iris+estimate", t)
        return out, clip_geometry(points, models.estimator)


_NAN_POINTS = np.full((478, 3), np.nan, np.float32)  # a frame without a face


def finish_track(raw: np.ndarray, geometry: np.ndarray, fps: float, smooth: str, calibrate: bool,
                 meta: dict[str, Any]) -> Track:
    """A clip's (T, C) raw estimates and its `clip_geometry` -> its Track: blinks, gaze, brows and mouth read from
    the geometry, the eye area's own motion added (EYE_AREA channels), gaps filled, neutral calibrated, filtered.
    The one place both `video_track` and `extract_track` finish a track."""
    from reenact.clip_geometry import eye_area_channels, read_geometry
    from reenact.estimate import CHANNELS
    from reenact.params import EYE_AREA
    from reenact.smooth import smooth_track

    values, channels = read_geometry(raw, geometry), list(CHANNELS)
    area = eye_area_channels(geometry)
    if area is not None:
        values, channels = np.concatenate([values, area], 1), channels + list(EYE_AREA)
    values, missing = smooth_track(values, channels, fps, mode=smooth, calibrate=calibrate)
    info = {"frames": len(values), "missing_frames": int(missing.sum()), "missing": np.flatnonzero(missing).tolist(),
            "smoothing": smooth, "calibrated": calibrate, **meta}
    return Track(np.arange(len(values)) / fps, values.astype(np.float32), channels, info)


def extract_track(landmarks: Iterable[np.ndarray | None], fps: float, estimator: Estimator | None = None,
                  smooth: str = "offline", calibrate: bool = True, meta: dict | None = None) -> Track:
    """Per-frame landmarks ((478|468, 3) px, or None when no face) -> a smoothed, validated Track.

    smooth: `offline` (zero-phase, default), `online` (One Euro) or `none` (raw). Missing frames are interpolated
    and counted in `track.meta["missing_frames"]`. Raises NoFaceError when no frame has a face.
    """
    from reenact.clip_geometry import clip_geometry
    from reenact.estimate import Estimator

    estimator = estimator or Estimator()
    frames = [np.full((478, 3), np.nan, np.float32) if p is None else np.asarray(p, np.float32)[:478]
              for p in landmarks]
    if not frames:
        raise InputError("No frames to extract parameters from; the video is empty.")
    n = max(len(f) for f in frames)
    frames = [f if len(f) == n else np.full((n, 3), np.nan, np.float32) for f in frames]
    values = np.concatenate([estimator.estimate(np.stack(frames[i:i + 1024])) for i in range(0, len(frames), 1024)])
    track = finish_track(values, clip_geometry(np.stack(frames), estimator), fps, smooth, calibrate,
                         {"fps": fps, **(meta or {})})
    return track.validate("extracted track")
