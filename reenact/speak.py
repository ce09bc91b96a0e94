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
from reenact.specs import SpeakSpec
from reenact.speech import speech_columns, speech_track

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
    shapes = np.repeat(source.shapes[None], len(track), 0)
    cols = speech_columns(track)
    # The mouth follows the speech on top of the photo's own mouth (a smiling photo keeps its smile in pauses).
    shapes[:, cols] = np.clip(source.shapes[cols] + sopts.strength * track.weights, 0.0, 1.0)
    rotation = None if sopts.still else add_idle(shapes, track.loudness, sopts)
    shut = None if track.shut is None else sopts.strength * track.shut  # p/b/m shut even a photo's parted lips
    return render_video(source, Motion(shapes, rotation, sopts.fps, shut=shut), spec.output, models, spec.render,
                        audio=spec.audio, progress=progress, outputs=outputs)


def add_idle(shapes: np.ndarray, loudness: np.ndarray, sopts: SpeakOptions) -> np.ndarray:
    """Add the idle motion (blinks, brows) to `shapes` in place; returns its (T, 3) head rotation."""
    idle, names = idle_track(len(shapes), float(sopts.fps), loudness, seed=sopts.seed)
    for j, name in enumerate(names):
        if name in _INDEX:
            shapes[:, _INDEX[name]] = np.clip(shapes[:, _INDEX[name]] + idle[:, j], 0.0, 1.0)
    return idle[:, [names.index("yaw"), names.index("pitch"), names.index("roll")]]
