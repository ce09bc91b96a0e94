"""`reenact extract`: a video or photo -> a per-frame parameter track (and optionally landmarks) on disk.

Landmark JSON (`--landmarks`), streamed so long videos need no memory:

    {"format": "reenact-landmarks", "version": 1, "source": "clip.mp4", "fps": "25", "width": 640, "height": 480,
     "channels": ["eyeBlinkLeft", ...],
     "frames": [{"index": 0, "time": 0.0, "face": {"score": .., "box": [x0, y0, x1, y1], "pose": {...},
                 "landmarks": [[x, y, z] x 478]} | null, "params": [values in `channels` order]}, ...]}

Landmarks are pixels of the original (upright) frame; `params` are the smoothed track values of that frame.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from reenact.analysis import Models, ProgressFactory, no_progress, video_track
from reenact.errors import InputError, OutputError
from reenact.io.atomic import OutputGroup, check_output_path
from reenact.params import Track
from reenact.specs import FORMATS, IMAGE_SUFFIXES, SUFFIX_FORMATS, ExtractSpec, track_format  # noqa: F401



@dataclass
class ExtractResult:
    output: str
    frames: int
    missing_frames: int
    fps: str
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def extract(spec: ExtractSpec, models: Models, progress: ProgressFactory = no_progress) -> tuple[ExtractResult, Track]:
    """Video or photo -> parameter track (or landmarks); speech audio -> viseme + mouth track at `spec.fps` (25).

    `spec.plot`: also an image of the main channels (reenact.plot), written before the track is committed, so a plot
    that fails leaves no track behind. Every path and option is checked before the media is opened.
    """
    import time

    check_output_path(spec.output, spec.overwrite)
    if spec.plot is not None:
        check_image_path(spec.plot, spec.overwrite, "--plot")
    start = time.perf_counter()
    track, records = media_track(spec, models, progress)
    write_outputs(spec, track, records)
    result = ExtractResult(str(spec.output), len(track), int(track.meta.get("missing_frames", 0)),
                           str(track.meta.get("fps", "")), round(time.perf_counter() - start, 2))
    return result, track


def media_track(spec: ExtractSpec, models: Models, progress: ProgressFactory) -> tuple[Track, Any]:
    """The media's track, and its landmark records (a photo's list, a video's spooled file, None for speech)."""
    media = spec.media
    if media.suffix.lower() in IMAGE_SUFFIXES:
        return image_track(media, models, spec.face)
    if is_audio_only(media):
        if spec.landmarks:
            raise InputError(f"{media} is audio: it has no face to take landmarks from; drop --landmarks.")
        from reenact.speech import speech_to_track_file

        idle = None if spec.still else spec.seed
        return speech_to_track_file(media, float(spec.fps or 25), models.device, spec.text, idle), None
    return video_track_with_landmarks(media, models, "none" if spec.raw else spec.smooth, not spec.raw,
                                      spec.landmarks, progress)


def write_outputs(spec: ExtractSpec, track: Track, records: Any) -> None:
    """The track (or landmarks) and its plot: both or neither."""
    from reenact.plot import save_plot

    try:
        with OutputGroup(spec.overwrite) as outputs:
            tmp = outputs.stage(spec.output)
            if spec.kind == "landmarks":
                write_landmarks(tmp, spec.media, track, records)
            else:
                track.write(tmp, spec.kind)
            if spec.plot is not None:
                save_plot(track, spec.plot, spec.overwrite, missing=track.meta.get("missing"), group=outputs)
    except OSError as err:  # disk full, a folder made read-only meanwhile: nothing is left behind
        raise OutputError(f"Cannot write {spec.output} ({err.strerror or err}); free some space or choose another "
                          f"folder with -o.") from err


def check_image_path(path: Path, overwrite: bool, option: str) -> None:
    """OutputError unless `path` names an image format that can be written (by its suffix) where it may be written."""
    from PIL import Image

    if Image.registered_extensions().get(path.suffix.lower()) not in Image.SAVE:
        raise OutputError(f"{option} {path}: cannot tell an image format to write from its suffix; use .png, .jpg "
                          f"or .webp.")
    check_output_path(path, overwrite)


def is_audio_only(path: Path) -> bool:
    """True for a file with audio and no video stream (a speech recording); media errors surface later."""
    import av

    try:
        with av.open(str(path)) as container:
            return bool(container.streams.audio) and not container.streams.video
    except (av.error.FFmpegError, OSError, ValueError):
        return False


def image_track(path: Path, models: Models, face: int | None) -> tuple[Track, list[dict | None]]:
    from reenact.estimate import CHANNELS, photo_reading
    from reenact.io.image import read_image

    image = read_image(path)
    found = models.analyzer.analyze(image, face=face, name=str(path))
    values = photo_reading(models.estimator.estimate(found.points)[0])[None]  # what drive and edit read of a photo
    meta = {"source": path.name, "frames": 1, "missing_frames": 0, "width": image.shape[1], "height": image.shape[0]}
    return Track(np.zeros(1), values, list(CHANNELS), meta), [found.to_record()]


def video_track_with_landmarks(path: Path, models: Models, smooth: str, calibrate: bool, landmarks: bool,
                               progress: ProgressFactory) -> tuple[Track, Any]:
    """The track, plus (when `landmarks`) a spooled file of per-frame landmark records, one JSON line each."""
    if not landmarks:
        return video_track(path, models, smooth, progress, calibrate=calibrate), None
    spool = tempfile.TemporaryFile("w+")
    size: dict[str, int] = {}

    def on_frame(frame: Any, found: Any) -> None:
        size.setdefault("width", frame.rgb.shape[1])
        size.setdefault("height", frame.rgb.shape[0])
        spool.write(json.dumps(None if found is None else found.to_record()) + "\n")

    track = video_track(path, models, smooth, progress, on_frame=on_frame, calibrate=calibrate)
    track.meta.update(size)
    spool.seek(0)
    return track, spool


def write_landmarks(tmp: Path, media: Path, track: Track, records: Any) -> None:
    head = {"format": "reenact-landmarks", "version": 1, "source": media.name, "fps": str(track.meta.get("fps", "")),
            "width": track.meta.get("width"), "height": track.meta.get("height"), "channels": track.channels}
    with open(tmp, "w") as f:
        f.write(json.dumps(head)[:-1] + ', "frames": [\n')
        for i, (t, row, rec) in enumerate(zip(track.times, track.values, records)):
            face = json.loads(rec) if isinstance(rec, str) else rec
            entry = {"index": i, "time": round(float(t), 6), "face": face,
                     "params": [round(float(v), 5) for v in row]}
            f.write(("" if i == 0 else ",\n") + json.dumps(entry))
        f.write("\n]}\n")
