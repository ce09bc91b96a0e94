"""Speech-driven animation: the `speak` job (photo + audio -> video). The speech track it animates from
(`reenact.speech.speech_track`, also behind `drive --audio` and `extract speech.wav`) is in the speech layer.

Lips come from the trained audio head (or pocketsphinx forced alignment of a transcript, `text=`), as ARKit mouth
weights added to the photo's own expression; idle life (blinks 15-20 a minute, brows and small head motion that
follow loudness, seeded) keeps the face from freezing unless `still`. The audio is streamed in blocks, so an hour of
speech needs no more memory than a minute; only the per-frame parameter rows are kept.
"""

from __future__ import annotations


import numpy as np

from reenact.analysis import Models, ProgressFactory, load_source, no_progress
from reenact.idle import idle_track
from reenact.io.atomic import OutputGroup
from reenact.options import RenderOptions, SpeakOptions  # noqa: F401  (reenact.speak.SpeakOptions)
from reenact.params import ARKIT52
from reenact.rendering import Motion, RunReport, render_video
from reenact.retarget import RetargetOptions, retarget, retarget_pose
from reenact.specs import SpeakSpec
from reenact.speech import SpeechTrack, speech_columns, speech_track

_INDEX = {n: i for i, n in enumerate(ARKIT52)}


def speak(spec: SpeakSpec, models: Models, progress: ProgressFactory = no_progress,
          outputs: OutputGroup | None = None) -> RunReport:
    """Write a video of the audio's duration in which the photo says the audio (with the audio muxed in).
    `outputs`: the command's OutputGroup (see reenact.rendering.render_video)."""
    from reenact.io.atomic import check_output_path

    sopts = spec.speech
    check_output_path(spec.output, spec.render.overwrite)
    track = speech_track(spec.audio, float(sopts.fps), models.device, sopts.text)
    source = load_source(spec.source, models, spec.max_size, spec.face)
    return render_video(source, speak_motion(track, source.shapes, sopts), spec.output, models, spec.render,
                        audio=spec.audio, progress=progress, outputs=outputs)


def speak_motion(track: SpeechTrack, photo_shapes: np.ndarray, sopts: SpeakOptions) -> Motion:
    """What a speech track asks of a photo whose own shapes are `photo_shapes` (52,): the speech's mouth and the idle
    life as changes on top of the photo's own expression (a smiling photo keeps its smile in pauses), composed as
    `render` composes a track's (a blink closes a share of the photo's opening)."""
    change = np.zeros((len(track), len(ARKIT52)), np.float32)  # (T, 52)
    change[:, speech_columns(track)] = sopts.strength * track.weights
    rotation = None if sopts.still else add_idle(change, track.loudness, sopts)
    shapes = retarget(change, np.zeros(len(ARKIT52), np.float32), photo_shapes, RetargetOptions())
    shut = None if track.shut is None else sopts.strength * track.shut  # p/b/m shut even a photo's parted lips
    return Motion(shapes, rotation, sopts.fps, shut=shut)


def add_idle(change: np.ndarray, loudness: np.ndarray, sopts: SpeakOptions) -> np.ndarray:
    """Add the idle motion (blinks, brows) to the (T, 52) shape changes in place; returns its (T, 3) head rotation,
    about its median as `render --pose` takes a track's (so a rendered `extract speech.wav` track turns alike)."""
    idle, names = idle_track(len(change), float(sopts.fps), loudness, seed=sopts.seed)
    for j, name in enumerate(names):
        if name in _INDEX:
            change[:, _INDEX[name]] += idle[:, j]
    pose = idle[:, [names.index("yaw"), names.index("pitch"), names.index("roll")]]
    return retarget_pose(pose, np.median(pose, axis=0))
