"""The jobs: `drive` (video -> video), `render` (track -> video), `edit` (controls -> image), composed from the
stages (docs/architecture.md). Streaming: frames are decoded, rendered and encoded in batches; only per-frame parameter rows
(a few hundred bytes each) are kept for the whole video, so memory stays flat in video length.
"""

from __future__ import annotations

import time
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from reenact.analysis import Models, ProgressFactory, Source, load_source, no_progress, video_track
from reenact.errors import InputError, MediaError, TrackError
from reenact.io.atomic import OutputGroup
from reenact.limits import check_distinct, check_photo_options
from reenact.options import MOUTHS, PHOTO_MOUTHS, RenderOptions, check_smoothing
from reenact.params import ARKIT52, Track, as_arkit
from reenact.rendering import RunReport, library_picker, render_video
from reenact.retarget import RetargetOptions, retarget, retarget_pose
from reenact.speech import speech_columns, speech_track

if TYPE_CHECKING:
    from reenact.edit import Controls
    from reenact.identity import IdentityReport

__all__ = ["MOUTHS", "PHOTO_MOUTHS", "Models", "RenderOptions", "RunReport", "Source", "drive", "edit", "library_picker",
           "load_source", "render", "render_edit", "render_video", "target_shapes", "video_track"]


def target_shapes(track: Track, source: Source, opts: RetargetOptions) -> tuple[np.ndarray, np.ndarray | None]:
    """(T, 52) target ARKit shapes for the source, and (T, 3) head rotation when pose transfer is on."""
    shapes = retarget(as_arkit(track), np.zeros(len(ARKIT52), np.float32), source.shapes, opts)
    rotation = None
    if opts.pose and all(c in track.channels for c in ("yaw", "pitch", "roll")):
        pose = track.values[:, [track.channels.index(c) for c in ("yaw", "pitch", "roll")]]
        rotation = retarget_pose(pose, np.median(pose, axis=0))
    return shapes, rotation


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

    check_smoothing(smooth)
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
        lips = speech_track(speech_audio, float(Fraction(track.meta["fps"])), models.device)
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
