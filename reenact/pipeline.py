"""The jobs: `drive` (video -> video), `render` (track -> video), `edit` (controls -> image), composed from the
stages (DESIGN §3). Streaming: frames are decoded, rendered and encoded in batches; only per-frame parameter rows
(a few hundred bytes each) are kept for the whole video, so memory stays flat in video length.
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

from reenact.analysis import (
    Models,
    ProgressFactory,
    Source,
    Timer,
    load_source,
    no_progress,
    video_track,
)
from reenact.errors import IdentityError, InputError, MediaError, TrackError
from reenact.io.atomic import OutputGroup
from reenact.limits import check_distinct, check_photo_options
from reenact.options import MOUTHS, PHOTO_MOUTHS, RenderOptions
from reenact.params import ARKIT52, Track, as_arkit
from reenact.retarget import RetargetOptions, retarget, retarget_pose

if TYPE_CHECKING:
    from reenact.edit import Controls
    from reenact.identity import IdentityReport
    from reenact.render.interior import DriverMouths, LibraryPicker

__all__ = ["MOUTHS", "PHOTO_MOUTHS", "Models", "RenderOptions", "RunReport", "Source", "drive", "edit", "load_source",
           "render", "render_edit", "render_video", "target_shapes", "video_track"]


def library_picker(mouth: str, follow: float | None = None) -> "LibraryPicker | None":
    """The library's per-video chooser for `--mouth` (None for paint); `follow` 1: no smoothing over frames."""
    if mouth not in ("library", "driver"):  # with a driver's mouths, the library fills the frames without one
        return None
    from reenact.render.interior import LibraryPicker, load_library

    return LibraryPicker(load_library()) if follow is None else LibraryPicker(load_library(), follow=follow)


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


def target_shapes(track: Track, source: Source, opts: RetargetOptions) -> tuple[np.ndarray, np.ndarray | None]:
    """(T, 52) target ARKit shapes for the source, and (T, 3) head rotation when pose transfer is on."""
    shapes = retarget(as_arkit(track), np.zeros(len(ARKIT52), np.float32), source.shapes, opts)
    rotation = None
    if opts.pose and all(c in track.channels for c in ("yaw", "pitch", "roll")):
        pose = track.values[:, [track.channels.index(c) for c in ("yaw", "pitch", "roll")]]
        rotation = retarget_pose(pose, np.median(pose, axis=0))
    return shapes, rotation


def side_by_side(driver: np.ndarray, output: np.ndarray) -> np.ndarray:
    """(H, W1 + W2, 3): the driver frame scaled to the output's height, left of the output frame."""
    h = output.shape[0]
    w = max(2, round(driver.shape[1] * h / driver.shape[0]) // 2 * 2)
    return np.hstack([cv2.resize(driver, (w, h), interpolation=cv2.INTER_AREA), output])


def render_video(source: Source, shapes: np.ndarray, rotation: np.ndarray | None, fps: Fraction, output: Path,
                 models: Models, opts: RenderOptions, audio: Path | None = None,
                 progress: ProgressFactory = no_progress, report: RunReport | None = None,
                 preview: tuple[Path, Path] | None = None, mouths: "DriverMouths | None" = None,
                 outputs: OutputGroup | None = None) -> RunReport:
    """Render (T, 52) shapes onto the source photo and encode them (with `audio` muxed in) to `output`.

    `preview=(path, driver_video)` also writes a side-by-side driver | output video for judging the transfer.
    `mouths`: the driver's mouths, carried into the opening mouth frame by frame (its video is read again, streaming).
    `outputs`: the command's OutputGroup; the videos are staged there and appear when the caller commits it (with
    its report). Without one they are committed here, together, before an IdentityError is raised.
    """
    import contextlib

    from reenact.identity import IdentityChecker
    from reenact.io.video import VideoWriter, read_frames
    from reenact.io.writer import EncodeThread
    from reenact.render.renderer import FaceRenderer

    report = report or RunReport(str(output))
    timer = Timer()
    t = time.perf_counter()
    refiner = models.refiner if opts.refine else None
    renderer = FaceRenderer(source.image, source.points, source.shapes, models.rig, models.device, refiner,
                            models.shading if opts.refine else None)
    checker = IdentityChecker(models.embedder, source.image, source.points, opts.threshold)
    renderer.picker = library_picker(opts.mouth)
    report.refiner = refiner is not None
    report.shading = renderer.shading is not None
    t = timer("setup", t)
    n = len(shapes)
    sims: list[float | None] = [None] * n
    with contextlib.ExitStack() as stack:
        group = outputs if outputs is not None else stack.enter_context(OutputGroup(opts.overwrite))
        writer = stack.enter_context(VideoWriter(output, fps, audio=audio, overwrite=opts.overwrite, crf=opts.crf,
                                                 preset=opts.preset, expected_duration=Fraction(n) / fps,
                                                 group=group))
        side = driver_frames = None
        if preview is not None:
            side = stack.enter_context(VideoWriter(preview[0], fps, audio=audio, overwrite=opts.overwrite,
                                                   crf=opts.crf + 4, preset=opts.preset,
                                                   expected_duration=Fraction(n) / fps, group=group))
            # "stop": a damaged driver was tracked as far as it decodes (see drive); its frames end there too
            driver_frames = stack.enter_context(read_frames(preview[1], fps=fps, on_damage="stop"))
        encoder = stack.enter_context(EncodeThread(writer) if side is None else EncodeThread(writer, side))
        mouth_frames = None if mouths is None else stack.enter_context(read_frames(mouths.path, fps=fps,
                                                                                   on_damage="stop"))
        advance = stack.enter_context(progress("rendering", n))
        pool = stack.enter_context(ThreadPoolExecutor(max_workers=1))

        def rot_of(i: np.ndarray) -> np.ndarray | None:
            return None if rotation is None else rotation[i]

        def check(start: int, idx: np.ndarray, frames: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            """Identity similarity of the batch's checked frames (runs on the helper thread)."""
            checked = idx[(idx % opts.check_every) == 0]
            if not len(checked):
                return checked, np.zeros(0, np.float32)
            return checked, checker.check([frames[i - start] for i in checked], [points[i - start] for i in checked])

        def interior(idx: np.ndarray) -> list | None:
            """The batch's driver mouths, read in step with the rendered frames (None: paint)."""
            if mouths is None or mouth_frames is None:
                return None
            return [mouths.crop(int(i), getattr(next(mouth_frames, None), "rgb", None)) for i in idx]

        def finish(start: int, idx: np.ndarray, frames: np.ndarray, result: Future, inside: list | None) -> None:
            """Wait for the batch's identity check, soften and re-render failing frames, then encode the batch."""
            t = time.perf_counter()
            checked, s = result.result()
            bad = checked[checker.failing(s)]
            if len(bad):  # fallback: halve the expression change on failing frames and re-render them
                soft = source.shapes + 0.5 * (shapes[bad] - source.shapes)
                soft_rot = None if rotation is None else 0.5 * rotation[bad]
                soft_inside = None if inside is None else [inside[b - start] for b in bad]
                frames[bad - start], soft_points = renderer.render_with_points(soft, soft_rot, soft_inside, again=True)
                report.fallback_frames.extend(int(b) for b in bad)
                s = s.copy()
                s[np.searchsorted(checked, bad)] = checker.check([frames[i - start] for i in bad], list(soft_points))
            for i, v in zip(checked, s):
                sims[i] = float(v)
            t = timer("identity", t)
            for f in frames:  # encoded on the encode thread; this waits only when it is 32 frames behind
                if side is None:
                    encoder.write(f)
                else:
                    drv = next(driver_frames, None)
                    encoder.write(f, side_by_side(drv.rgb if drv is not None else np.zeros_like(f), f))
            timer("encode_wait", t)
            advance(len(idx))

        # Batch k is rendered here while batch k-1's identity check runs on a second thread (torch releases the GIL).
        previous = None
        for start in range(0, n, opts.batch_size):
            idx = np.arange(start, min(start + opts.batch_size, n))
            t = time.perf_counter()
            inside = interior(idx)
            frames, points = renderer.render_with_points(shapes[idx], rot_of(idx), inside)
            timer("render", t)
            current = (start, idx, frames, pool.submit(check, start, idx, frames, points), inside)
            if previous is not None:
                finish(*previous)
            previous = current
        if previous is not None:
            finish(*previous)
    timer.total["encode"] = encoder.busy_s  # the encode thread's own time, beside the stages above
    scored = [s for s in sims if s is not None]
    ident = checker.report(scored)
    report.identity = ident.summary()
    report.similarities = [None if s is None else round(s, 4) for s in sims]
    report.frames, report.fps, report.size = n, str(fps), (source.image.shape[1], source.image.shape[0])
    report.timings_ms = {k: round(v * 1000, 1) for k, v in timer.total.items()}
    report.timings_ms["per_frame"] = round(sum(timer.total.values()) * 1000 / max(n, 1), 2)
    report.versions = versions(models)
    if opts.strict and not ident.ok:
        err = IdentityError(f"{ident.summary()['n_below']} frame(s) of {output} fall below the identity threshold "
                            f"{ident.threshold:.2f} (min similarity {ident.summary()['min']}); the video was kept for "
                            f"inspection; lower --strength or drop --strict.")
        err.report = report.to_dict()  # type: ignore[attr-defined]  # the CLI still writes --report
        raise err
    return report


def versions(models: Models) -> dict[str, str]:
    import av

    import reenact
    from reenact.weights import shipped

    return {"reenact": reenact.__version__, "torch": torch.__version__, "av": av.__version__,
            "device": str(models.device), **{f"weights.{c.name}": c.sha256[:12] for c in shipped()}}


def drive(source_path: Path, driver_path: Path, output: Path, models: Models, opts: RenderOptions,
          max_size: int = 1280, face: int | None = None, smooth: str = "offline",
          progress: ProgressFactory = no_progress, preview: Path | None = None,
          speech_audio: Path | None = None, outputs: OutputGroup | None = None, creases: bool = False) -> RunReport:
    """The main job: the person in the source photo performs the driver's expressions; the driver's audio is kept.

    `speech_audio`: the lips come from this recording instead (trained audio head), everything else from the
    driver, and this recording becomes the output's audio. A damaged or truncated driver is rendered as far as it
    decodes and `RunReport.damage` says so; with `opts.strict` it is a MediaError before anything is rendered.
    `outputs`: see render_video. `creases`: with `--mouth driver`, also carry the driver's fine creases onto the photo
    (off by default: they help self-reenactment but muddy another person's skin; docs/mouth.md).
    """
    from reenact.io.atomic import check_output_path
    from reenact.io.video import probe

    check_photo_options(max_size, face)
    check_distinct({"the photo": source_path, "the driver": driver_path, "the speech audio": speech_audio},
                   {"the output": output, "the preview": preview})
    check_output_path(output, opts.overwrite)  # fail before minutes of work
    if preview is not None:
        check_output_path(preview, opts.overwrite)
    info = probe(driver_path)
    source = load_source(source_path, models, max_size, face)
    t = time.perf_counter()
    from reenact.render.interior import DriverMouths

    # --mouth driver: keep the driver's mouth points while tracking; not with --audio (its lips are not the driver's:
    # the library's mouths are used instead)
    mouths = DriverMouths(driver_path, creases=creases) if opts.mouth == "driver" and speech_audio is None else None
    track = video_track(driver_path, models, smooth, progress, on_frame=None if mouths is None else mouths.on_frame)
    track_ms = (time.perf_counter() - t) * 1000
    check_damage(track, opts.strict)
    shapes, rotation = target_shapes(track, source, opts.retarget)
    audio = driver_path if info.has_audio else None
    if speech_audio is not None:
        from reenact.speak import speech_columns, speech_track

        lips = speech_track(speech_audio, float(Fraction(track.meta["fps"])), models)
        cols, m = speech_columns(lips), min(len(lips), len(shapes))
        shapes[:, cols] = source.shapes[cols]  # past the end of the speech the mouth rests
        shapes[:m, cols] = np.clip(source.shapes[cols] + lips.weights[:m], 0.0, 1.0)
        audio = speech_audio
    report = RunReport(str(output), missing_driver_frames=track.meta["missing"], damage=track.meta.get("damage"))
    report = render_video(source, shapes, rotation, Fraction(track.meta["fps"]), output, models, opts,
                          audio=audio, progress=progress, report=report,
                          preview=None if preview is None else (preview, driver_path), mouths=mouths,
                          outputs=outputs)
    stages = {**track.meta["timings_ms"], **report.timings_ms}
    stages.pop("per_frame", None)
    report.timings_ms = {**stages, "track_total": round(track_ms, 1),
                         "per_frame": round(sum(stages.values()) / max(report.frames, 1), 2)}
    return report


def check_damage(track: Track, strict: bool) -> None:
    """Under --strict a driver that decoded short of what it declares is refused (MediaError, exit 2) before any
    rendering; otherwise it is rendered as far as it decodes and the report and summary say so."""
    damage = track.meta.get("damage")
    if strict and damage:
        raise MediaError(f"{damage['message']} ({damage['frames_decoded']} of {damage['frames_expected']} frames "
                         f"decode); --strict refuses a damaged driver, drop it to render the frames that decode.")


MAX_TRACK_GAP_S = 600.0  # a longer gap between two rows of a track is a mistake in its times (ms for s, a typo)


def track_fps(track: Track) -> Fraction:
    """The track's frame rate (its metadata, else that of its evenly spaced times); 25 for keyframes (rows further
    apart than 1/8 s, or unevenly spaced), which are interpolated."""
    return track.frame_rate() or Fraction(25)


def frame_times(track: Track, fps: Fraction) -> np.ndarray:
    """The times of the rendered frames: from 0 to the track's last row at `fps` (a track of n rows at its own rate
    renders as n frames); the track is interpolated at these."""
    return np.arange(round(float(track.times[-1]) * fps) + 1) / float(fps)


def check_track_gaps(track: Track, source: str) -> None:
    """TrackError when two rows are more than MAX_TRACK_GAP_S apart (it would render hours of a held face), or when
    the track ends before 0 s (rendering starts at 0 s)."""
    if float(track.times[-1]) < 0:
        raise TrackError(f"{source}: the last row is at {float(track.times[-1]):g} s; render draws from 0 s, so the "
                         "times must reach 0 or later.")
    gaps = np.diff(track.times)
    if len(gaps) and float(gaps.max()) > MAX_TRACK_GAP_S:
        row = int(np.argmax(gaps)) + 1
        raise TrackError(f"{source}: rows {row} and {row + 1} are {float(gaps[row - 1]):g} s apart "
                         f"({float(track.times[row - 1]):g} s -> {float(track.times[row]):g} s); render fills gaps of "
                         f"at most {MAX_TRACK_GAP_S:g} s. Check the time column is in seconds.")


def render(source_path: Path, track_path: Path, output: Path, models: Models, opts: RenderOptions,
           audio: Path | None = None, fps: Fraction | None = None, max_size: int = 1280, face: int | None = None,
           progress: ProgressFactory = no_progress, outputs: OutputGroup | None = None) -> RunReport:
    """Animate the source from a track file (from `extract`, or written by hand): CSV/JSON/OpenFace/Live Link.
    `outputs`: see render_video."""
    from reenact.io.atomic import check_output_path

    check_photo_options(max_size, face)
    check_distinct({"the photo": source_path, "the track": track_path, "the audio": audio}, {"the output": output})
    check_output_path(output, opts.overwrite)
    track = Track.read(track_path)
    if len(track) == 0:
        raise InputError(f"{track_path} has no rows; it needs one row per frame.")
    check_track_gaps(track, track_path.name)
    fps = fps or track_fps(track)
    times = frame_times(track, fps)
    uniform = Track(times, track.at(times), track.channels, track.meta)
    source = load_source(source_path, models, max_size, face)
    shapes, rotation = target_shapes(uniform, source, opts.retarget)
    return render_video(source, shapes, rotation, fps, output, models, opts, audio=audio, progress=progress,
                        outputs=outputs)


def render_edit(source: Source, controls: "Controls", models: Models, grid: bool = False,
                steps: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0), refine: bool = True,
                mouth: str = "library") -> tuple[np.ndarray, "IdentityReport"]:
    """The edited photo (H, W, 3) uint8 RGB, or with `grid` one row per control sweeping `steps`, and the identity
    check of every rendered image against the photo."""
    from reenact.edit import crop_box, label
    from reenact.identity import IdentityChecker
    from reenact.render.renderer import FaceRenderer

    renderer = FaceRenderer(source.image, source.points, source.shapes, models.rig, models.device,
                            models.refiner if refine else None, models.shading if refine else None)
    if mouth not in PHOTO_MOUTHS:
        raise InputError(f"Unknown --mouth {mouth!r} for an edit; use {' or '.join(PHOTO_MOUTHS)}.")
    renderer.picker = library_picker(mouth, follow=1.0)  # each edited image is its own: no smoothing across cells
    checker = IdentityChecker(models.embedder, source.image, source.points)
    if not grid:
        frames, points = renderer.render_with_points(controls.apply(source.shapes)[None])
        return frames[0], checker.report(list(checker.check([frames[0]], list(points))))
    x0, y0, x1, y1 = crop_box(source.points, source.image.shape)
    rows, sims = [], []
    for row in controls.each():
        frames, points = renderer.render_with_points(np.stack([row.apply(source.shapes, k) for k in steps]))
        sims += list(checker.check(list(frames), list(points)))
        cells = [label(cv2.resize(f[y0:y1, x0:x1], (256, 256), interpolation=cv2.INTER_AREA),
                       f"{row.labels()[0]} x{k:g}") for f, k in zip(frames, steps)]
        rows.append(np.hstack(cells))
    return np.vstack(rows), checker.report(sims)


def edit(source_path: Path, output: Path, controls: "Controls", models: Models, grid: bool = False,
         overwrite: bool = False, max_size: int = 1280, face: int | None = None,
         steps: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0), refine: bool = True,
         mouth: str = "library") -> dict[str, Any]:
    """Write the edited photo (or, with `grid`, one row per control sweeping its intensity) to `output`."""
    from reenact.io.atomic import check_output_path
    from reenact.io.image import write_image

    check_photo_options(max_size, face)
    check_distinct({"the photo": source_path}, {"the output": output})
    check_output_path(output, overwrite)
    source = load_source(source_path, models, max_size, face)
    image, report = render_edit(source, controls, models, grid, steps, refine, mouth)
    write_image(output, image, overwrite=overwrite)
    return {"output": str(output), "edits": controls.labels(), "identity": report.summary()}
