"""The render layer's job-facing end: `render_video` turns per-frame ARKit shapes into an encoded, identity-checked
video, and `RunReport` says what it did. Every job (reenact.pipeline's drive and render, reenact.speak, the batch
workers) ends here; this module imports none of them.

Streaming: frames are rendered, checked and encoded in batches, so memory stays flat in video length.
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
import torch

from reenact.analysis import Models, ProgressFactory, Source, Timer, no_progress
from reenact.errors import IdentityError
from reenact.io.atomic import OutputGroup
from reenact.options import RenderOptions

if TYPE_CHECKING:
    from reenact.render.interior import DriverMouths, LibraryPicker
    from reenact.render.renderer import FaceRenderer


@dataclass
class RunReport:
    output: str
    frames: int = 0
    fps: str = ""
    size: tuple[int, int] = (0, 0)
    missing_driver_frames: list[int] | None = None  # None: no driving video (speak, render)
    identity: dict[str, Any] = field(default_factory=dict)
    similarities: list[float | None] = field(default_factory=list)
    fallback_frames: list[int] = field(default_factory=list)
    refiner: bool = False  # whether the GAN refiner drew over the warp
    shading: bool = False  # whether the expression shading (reenact.render.shade) was applied
    timings_ms: dict[str, float] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    # a damaged or truncated driver, rendered as far as it decodes: {"message", "frames_expected", "frames_decoded"}
    damage: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


def side_by_side(driver: np.ndarray, output: np.ndarray) -> np.ndarray:
    """(H, W1 + W2, 3): the driver frame scaled to the output's height, left of the output frame."""
    h = output.shape[0]
    w = max(2, round(driver.shape[1] * h / driver.shape[0]) // 2 * 2)
    return np.hstack([cv2.resize(driver, (w, h), interpolation=cv2.INTER_AREA), output])


def library_picker(mouth: str, follow: float | None = None) -> "LibraryPicker | None":
    """The library's per-video chooser for `--mouth` (None for paint); `follow` 1: no smoothing over frames."""
    if mouth not in ("library", "driver"):  # with a driver's mouths, the library fills the frames without one
        return None
    from reenact.render.interior import LibraryPicker, load_library

    return LibraryPicker(load_library()) if follow is None else LibraryPicker(load_library(), follow=follow)


@dataclass
class Motion:
    """What a video shows: (T, 52) ARKit shapes, (T, 3) head rotation (None: the photo's pose), the frame rate, the
    driver's mouths carried into the opening mouth frame by frame (None: the library's or painted ones; their video
    is read again, streaming), (T, K) the driver's eye-area motion (reenact.rig.EyeArea; None: the rig's eyes) and
    (T,) how far speech shuts the lips (p, b, m: reenact.render.renderer.close_lips; None: as the shapes draw them)."""

    shapes: np.ndarray
    rotation: np.ndarray | None
    fps: Fraction
    mouths: "DriverMouths | None" = None
    area: np.ndarray | None = None
    shut: np.ndarray | None = None

    def frames(self, idx: np.ndarray, share: float = 1.0, rest: np.ndarray | None = None
               ) -> tuple[np.ndarray, dict[str, np.ndarray | None]]:
        """Frames `idx`: their (len(idx), 52) shapes and the other per-frame streams (PER_FRAME, as the keyword
        arguments of FaceRenderer.render_with_points; None where the motion has none). With a `share` of their motion
        (the identity fallback): the shapes toward the photo's own `rest` (52,), the streams toward none."""
        shapes = self.shapes[idx] if rest is None else rest + share * (self.shapes[idx] - rest)
        streams = {name: None if (v := getattr(self, name)) is None else (v[idx] if share == 1.0 else share * v[idx])
                   for name in PER_FRAME}
        return shapes, streams


PER_FRAME = ("rotation", "area", "shut")  # Motion's per-frame streams besides the shapes


@dataclass
class _Streams:
    """A render's open streams: the encoder (output and preview), the driver's frames for the preview and its
    mouths, the progress bar."""

    encoder: Any
    side: bool  # a preview is written beside the output
    driver_frames: Any
    mouth_frames: Any
    advance: Any


def render_video(source: Source, motion: Motion, output: Path, models: Models, opts: RenderOptions,
                 audio: Path | None = None, progress: ProgressFactory = no_progress,
                 report: RunReport | None = None, preview: tuple[Path, Path] | None = None,
                 outputs: OutputGroup | None = None) -> RunReport:
    """Render `motion` onto the source photo and encode it (with `audio` muxed in) to `output`.

    `preview=(path, driver_video)` also writes a side-by-side driver | output video for judging the transfer.
    `outputs`: the command's OutputGroup; the videos are staged there and appear when the caller commits it (with
    its report). Without one they are committed here, together, before an IdentityError is raised.
    """
    import contextlib

    from reenact.identity import IdentityChecker

    report = report or RunReport(str(output))
    timer = Timer()
    t = time.perf_counter()
    renderer = face_renderer(source, models, opts, report)
    checker = IdentityChecker(models.embedder, source.image, source.points, opts.threshold)
    t = timer("setup", t)
    n = len(motion.shapes)
    with contextlib.ExitStack() as stack:
        streams = open_streams(stack, output, motion, opts, audio, progress, preview, outputs)
        pool = stack.enter_context(ThreadPoolExecutor(max_workers=1))
        run = _BatchRun(source, motion, renderer, checker, opts, timer, report, streams)
        sims = run.render_all(pool)
    timer.total["encode"] = streams.encoder.busy_s  # the encode thread's own time, beside the stages above
    ident = checker.report([s for s in sims if s is not None])
    fill_report(report, ident, sims, n, motion.fps, source, timer, models)
    if opts.strict and not ident.ok:
        raise IdentityError(f"{ident.summary()['n_below']} frame(s) of {output} fall below the identity threshold "
                            f"{ident.threshold:.2f} (min similarity {ident.summary()['min']}); the video was kept for "
                            f"inspection; lower --strength or drop --strict.", report=report.to_dict())
    return report


def face_renderer(source: Source, models: Models, opts: RenderOptions, report: RunReport) -> "FaceRenderer":
    """The photo's renderer with the refiner, the shading and the mouth chooser that `opts` asks for; the report
    records which of them are used."""
    from reenact.render.renderer import FaceRenderer

    refiner = models.refiner if opts.refine else None
    renderer = FaceRenderer(source.image, source.points, source.shapes, models.rig, models.device, refiner,
                            models.shading if opts.refine else None, models.eye_area)
    renderer.picker = library_picker(opts.mouth)
    report.refiner = refiner is not None
    report.shading = renderer.shading is not None
    return renderer


def open_streams(stack: Any, output: Path, motion: Motion, opts: RenderOptions, audio: Path | None,
                 progress: ProgressFactory, preview: tuple[Path, Path] | None,
                 outputs: OutputGroup | None) -> _Streams:
    """Open (on `stack`) the output's writer, the preview's writer and the driver's frames, the encode thread, the
    driver's mouth frames and the progress bar."""
    from reenact.io.video import VideoWriter, read_frames
    from reenact.io.writer import EncodeThread

    fps, n = motion.fps, len(motion.shapes)
    group = outputs if outputs is not None else stack.enter_context(OutputGroup(opts.overwrite))
    writer = stack.enter_context(VideoWriter(output, fps, audio=audio, overwrite=opts.overwrite, crf=opts.crf,
                                             preset=opts.preset, expected_duration=Fraction(n) / fps, group=group))
    side = driver_frames = None
    if preview is not None:
        side = stack.enter_context(VideoWriter(preview[0], fps, audio=audio, overwrite=opts.overwrite,
                                               crf=opts.crf + 4, preset=opts.preset,
                                               expected_duration=Fraction(n) / fps, group=group))
        # "stop": a damaged driver was tracked as far as it decodes (see drive); its frames end there too
        driver_frames = stack.enter_context(read_frames(preview[1], fps=fps, on_damage="stop"))
    encoder = stack.enter_context(EncodeThread(writer) if side is None else EncodeThread(writer, side))
    mouths = motion.mouths
    mouth_frames = None if mouths is None else stack.enter_context(read_frames(mouths.path, fps=fps,
                                                                               on_damage="stop"))
    advance = stack.enter_context(progress("rendering", n))
    return _Streams(encoder, side is not None, driver_frames, mouth_frames, advance)


class _BatchRun:
    """Renders the frames in batches: batch k is rendered while batch k-1's identity check runs on a second thread
    (torch releases the GIL); failing frames are softened and rendered again, then the batch is encoded."""

    def __init__(self, source: Source, motion: Motion, renderer: Any, checker: Any, opts: RenderOptions,
                 timer: Timer, report: RunReport, streams: _Streams) -> None:
        self.source, self.motion, self.renderer, self.checker = source, motion, renderer, checker
        self.opts, self.timer, self.report, self.streams = opts, timer, report, streams
        self.sims: list[float | None] = [None] * len(motion.shapes)

    def render_all(self, pool: ThreadPoolExecutor) -> list[float | None]:
        """Every frame rendered, checked and encoded; their similarities (None: not checked)."""
        n, size = len(self.motion.shapes), self.opts.batch_size
        previous = None
        for start in range(0, n, size):
            idx = np.arange(start, min(start + size, n))
            t = time.perf_counter()
            inside = self.interior(idx)
            shapes, streams = self.motion.frames(idx)
            frames, points = self.renderer.render_with_points(shapes, interior=inside, **streams)
            self.timer("render", t)
            current = (start, idx, frames, pool.submit(self.check, start, idx, frames, points), inside)
            if previous is not None:
                self.finish(*previous)
            previous = current
        if previous is not None:
            self.finish(*previous)
        return self.sims

    def check(self, start: int, idx: np.ndarray, frames: np.ndarray,
              points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Identity similarity of the batch's checked frames (runs on the helper thread)."""
        checked = idx[(idx % self.opts.check_every) == 0]
        if not len(checked):
            return checked, np.zeros(0, np.float32)
        return checked, self.checker.check([frames[i - start] for i in checked],
                                           [points[i - start] for i in checked])

    def interior(self, idx: np.ndarray) -> list | None:
        """The batch's driver mouths, read in step with the rendered frames (None: no driver's mouths)."""
        mouths, mouth_frames = self.motion.mouths, self.streams.mouth_frames
        if mouths is None or mouth_frames is None:
            return None
        return [mouths.crop(int(i), getattr(next(mouth_frames, None), "rgb", None)) for i in idx]

    def finish(self, start: int, idx: np.ndarray, frames: np.ndarray, result: Future, inside: list | None) -> None:
        """Wait for the batch's identity check, soften and re-render failing frames, then encode the batch."""
        t = time.perf_counter()
        checked, s = result.result()
        bad = checked[self.checker.failing(s)]
        if len(bad):
            s = self.soften(start, bad, frames, inside, checked, s)
        for i, v in zip(checked, s):
            self.sims[i] = float(v)
        t = self.timer("identity", t)
        self.encode(frames)
        self.timer("encode_wait", t)
        self.streams.advance(len(idx))

    def soften(self, start: int, bad: np.ndarray, frames: np.ndarray, inside: list | None, checked: np.ndarray,
               s: np.ndarray) -> np.ndarray:
        """The fallback: halve the expression change on the failing frames, render them again (in `frames`) and
        check them again; returns the batch's similarities with theirs replaced."""
        soft, streams = self.motion.frames(bad, 0.5, self.source.shapes)
        soft_inside = None if inside is None else [inside[b - start] for b in bad]
        frames[bad - start], soft_points = self.renderer.render_with_points(soft, interior=soft_inside, again=True,
                                                                            **streams)
        self.report.fallback_frames.extend(int(b) for b in bad)
        s = s.copy()
        s[np.searchsorted(checked, bad)] = self.checker.check([frames[i - start] for i in bad], list(soft_points))
        return s

    def encode(self, frames: np.ndarray) -> None:
        """Hand the frames to the encode thread (beside the driver's, for a preview); this waits only when it is 32
        frames behind."""
        streams = self.streams
        for f in frames:
            if not streams.side:
                streams.encoder.write(f)
            else:
                drv = next(streams.driver_frames, None)
                streams.encoder.write(f, side_by_side(drv.rgb if drv is not None else np.zeros_like(f), f))


def fill_report(report: RunReport, ident: Any, sims: list[float | None], n: int, fps: Fraction, source: Source,
                timer: Timer, models: Models) -> None:
    """What the render did: identity, per-frame similarity, size, timings and versions."""
    report.identity = ident.summary()
    report.similarities = [None if s is None else round(s, 4) for s in sims]
    report.frames, report.fps, report.size = n, str(fps), (source.image.shape[1], source.image.shape[0])
    report.timings_ms = {k: round(v * 1000, 1) for k, v in timer.total.items()}
    report.timings_ms["per_frame"] = round(sum(timer.total.values()) * 1000 / max(n, 1), 2)
    report.versions = versions(models)


def versions(models: Models) -> dict[str, str]:
    import av

    import reenact
    from reenact.weights import shipped

    return {"reenact": reenact.__version__, "torch": torch.__version__, "av": av.__version__,
            "device": str(models.device), **{f"weights.{c.name}": c.sha256[:12] for c in shipped()}}


