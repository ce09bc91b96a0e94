"""The jobs: `drive` (video -> video), `render` (track -> video), `edit` (controls -> image), composed from the
stages (docs/architecture.md). Each takes its frozen spec (reenact.specs), checked when it was built, and is the one
place its job is assembled (the batch's workers call `drive` too). Streaming: frames are decoded, rendered and
encoded in batches; only per-frame parameter rows (a few hundred bytes each) are kept for the whole video, so memory
stays flat in video length.
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
from reenact.options import MOUTHS, PHOTO_MOUTHS, RenderOptions
from reenact.params import ARKIT52, EYE_AREA, SPEECH, Track, as_arkit
from reenact.rendering import Motion, RunReport, library_picker, render_video
from reenact.retarget import RetargetOptions, area_gain, driver_reference, lips_gain, retarget, retarget_pose
from reenact.specs import DriveSpec, EditSpec, RenderSpec
from reenact.speech import speech_columns, speech_track

if TYPE_CHECKING:
    from reenact.identity import IdentityReport
    from reenact.render.interior import DriverMouths

__all__ = ["MOUTHS", "PHOTO_MOUTHS", "DriveSpec", "EditSpec", "Models", "Motion", "RenderOptions", "RenderSpec",
           "RunReport", "Source", "drive", "edit", "library_picker", "load_source", "render", "render_edit", "render_video",
           "target_motion", "target_shapes", "video_track"]


def target_motion(track: Track, source: Source, opts: RetargetOptions, fps: Fraction,
                  mouths: "DriverMouths | None" = None) -> Motion:
    """What a track asks of the source: its shapes, head turn, eye area and (a speech track's) lips shut by p, b, m
    (the one assembly for drive and render)."""
    shapes, rotation = target_shapes(track, source, opts)
    shut = lips_gain(opts) * track.select(SPEECH)[:, 0] if set(SPEECH) <= set(track.channels) else None
    return Motion(shapes, rotation, fps, mouths, eye_area_motion(track, opts), shut)


def eye_area_motion(track: Track, opts: RetargetOptions) -> np.ndarray | None:
    """(T, K) the track's eye-area motion at the lids' and brows' gain; None (the rig draws the eyes alone) when the
    track has none (a photo, a short clip, a hand-written track) or the transfer leaves the eyes or brows out."""
    gain = area_gain(opts)
    if gain == 0.0 or not all(c in track.channels for c in EYE_AREA):
        return None
    area = track.select(EYE_AREA)  # (T, K) about the clip's median
    return gain * (area - area[:1] if opts.rest == "first" else area)


def target_shapes(track: Track, source: Source, opts: RetargetOptions) -> tuple[np.ndarray, np.ndarray | None]:
    """(T, 52) target ARKit shapes for the source, and (T, 3) head rotation when pose transfer is on."""
    from reenact.clip_geometry import lip_gap_per_unit

    driver = as_arkit(track)
    reference = driver_reference(driver, source.lip_gap, lip_gap_per_unit(), opts.rest,
                                 float(source.shapes[ARKIT52.index("jawOpen")]))
    shapes = retarget(driver, reference, source.shapes, opts)
    rotation = None
    if opts.pose and all(c in track.channels for c in ("yaw", "pitch", "roll")):
        pose = track.values[:, [track.channels.index(c) for c in ("yaw", "pitch", "roll")]]
        rotation = retarget_pose(pose, np.median(pose, axis=0))
    return shapes, rotation


def drive(spec: DriveSpec, models: Models, progress: ProgressFactory = no_progress,
          outputs: OutputGroup | None = None, source: Source | None = None, track: Track | None = None,
          mouths: "DriverMouths | None" = None) -> RunReport:
    """The main job: the person in the source photo performs the driver's expressions; the driver's audio is kept.

    With `spec.speech_audio` the lips come from that recording instead (trained audio head), everything else from
    the driver, and the recording becomes the output's audio. A damaged or truncated driver is rendered as far as
    it decodes and `RunReport.damage` says so; with `spec.render.strict` it is a MediaError before anything is
    rendered. `outputs`: see render_video.

    `source`, `track` and `mouths` are for a caller that has them already (a batch worker keeps its photos and reads
    the driver's track and mouth points from its cache): the job then neither analyses the photo nor tracks the
    driver again. `mouths` is used only with `track`.
    """
    from reenact.io.video import probe

    check_outputs(spec.render.overwrite, spec.output, spec.preview)  # fail before minutes of work
    info = probe(spec.driver)
    if source is None:
        source = load_source(spec.source, models, spec.max_size, spec.face)
    t = time.perf_counter()
    if track is None:
        mouths = driver_mouths(spec)
        track = video_track(spec.driver, models, spec.smooth, progress,
                            on_frame=None if mouths is None else mouths.on_frame)
    track_ms = (time.perf_counter() - t) * 1000
    check_damage(track, spec.render.strict)
    motion = target_motion(track, source, spec.render.retarget, Fraction(str(track.meta["fps"])), mouths)
    audio = spec.driver if info.has_audio else None
    if spec.speech_audio is not None:
        motion.shut = speech_lips(motion.shapes, source, spec.speech_audio, motion.fps, models)
        audio = spec.speech_audio
    report = RunReport(str(spec.output), missing_driver_frames=list(track.meta.get("missing", [])),
                       damage=track.meta.get("damage"))
    report = render_video(source, motion, spec.output, models, spec.render, audio=audio, progress=progress,
                          report=report, preview=None if spec.preview is None else (spec.preview, spec.driver),
                          outputs=outputs)
    report.timings_ms = drive_timings(track, report, track_ms)
    return report


def check_outputs(overwrite: bool, *paths: Path | None) -> None:
    """Each output may be written now (reenact.io.atomic.check_output_path); None is skipped."""
    from reenact.io.atomic import check_output_path

    for path in paths:
        if path is not None:
            check_output_path(path, overwrite)


def driver_mouths(spec: DriveSpec) -> "DriverMouths | None":
    """The driver's mouths to keep while tracking, with `--mouth driver`; not with `--audio` (its lips are not the
    driver's: the library's mouths are used instead)."""
    if spec.render.mouth != "driver" or spec.speech_audio is not None:
        return None
    from reenact.render.interior import DriverMouths

    return DriverMouths(spec.driver, creases=spec.creases)


def speech_lips(shapes: np.ndarray, source: Source, speech_audio: Path, fps: Fraction, models: Models
                ) -> np.ndarray | None:
    """`drive --audio`: the mouth channels of `shapes` (in place) from the speech; past its end the mouth rests.
    Returns (T,) how far the speech shuts the lips (p, b, m; `Motion.shut`)."""
    lips = speech_track(speech_audio, float(fps), models.device)
    cols, m = speech_columns(lips), min(len(lips), len(shapes))
    shapes[:, cols] = source.shapes[cols]
    shapes[:m, cols] = np.clip(source.shapes[cols] + lips.weights[:m], 0.0, 1.0)
    if lips.shut is None:
        return None
    shut = np.zeros(len(shapes), np.float32)
    shut[:m] = lips.shut[:m]
    return shut


def drive_timings(track: Track, report: RunReport, track_ms: float) -> dict[str, float]:
    """The report's timings: tracking's stages beside rendering's, the tracking's total and the time per frame."""
    stages = {**track.meta.get("timings_ms", {}), **report.timings_ms}
    stages.pop("per_frame", None)
    return {**stages, "track_total": round(track_ms, 1),
            "per_frame": round(sum(stages.values()) / max(report.frames, 1), 2)}


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


def render(spec: RenderSpec, models: Models, progress: ProgressFactory = no_progress,
           outputs: OutputGroup | None = None) -> RunReport:
    """Animate the source from a track file (from `extract`, or written by hand): CSV/JSON/OpenFace/Live Link, with
    `spec.mux_audio` muxed in as it is. `outputs`: see render_video."""
    check_outputs(spec.render.overwrite, spec.output)
    track = Track.read(spec.track)
    if len(track) == 0:
        raise InputError(f"{spec.track} has no rows; it needs one row per frame.")
    check_track_gaps(track, spec.track.name)
    fps = spec.fps or track_fps(track)
    times = frame_times(track, fps)
    uniform = Track(times, track.at(times), track.channels, track.meta)
    source = load_source(spec.source, models, spec.max_size, spec.face)
    motion = target_motion(uniform, source, spec.render.retarget, fps)
    return render_video(source, motion, spec.output, models, spec.render, audio=spec.mux_audio, progress=progress,
                        outputs=outputs)


def render_edit(source: Source, spec: EditSpec, models: Models) -> tuple[np.ndarray, "IdentityReport"]:
    """The edited photo (H, W, 3) uint8 RGB, or with `spec.grid` one row per control sweeping `spec.steps`, and the
    identity check of every rendered image against the photo."""
    from reenact.edit import crop_box, label
    from reenact.identity import IdentityChecker
    from reenact.render.renderer import FaceRenderer

    renderer = FaceRenderer(source.image, source.points, source.shapes, models.rig, models.device,
                            models.refiner if spec.refine else None, models.shading if spec.refine else None)
    renderer.picker = library_picker(spec.mouth, follow=1.0)  # each edited image is its own: no smoothing across cells
    checker = IdentityChecker(models.embedder, source.image, source.points)
    controls, steps = spec.controls, spec.steps
    if not spec.grid:
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


def edit(spec: EditSpec, models: Models) -> dict[str, Any]:
    """Write the edited photo (or, with `spec.grid`, one row per control sweeping its intensity) to `spec.output`."""
    from reenact.io.image import write_image

    check_outputs(spec.overwrite, spec.output)
    source = load_source(spec.source, models, spec.max_size, spec.face)
    image, report = render_edit(source, spec, models)
    write_image(spec.output, image, overwrite=spec.overwrite)
    return {"output": str(spec.output), "edits": spec.controls.labels(), "identity": report.summary()}
