"""The `reenact` command line: the Typer app, its global options and the photo commands (`drive`, `speak`,
`render`, `edit`, `info`); `extract`, `train`, `identity` (analysis_cmds.py) and `batch` (batch_cmd.py) are
registered here too. Shared options are in options.py, error handling and reports in base.py.

Exit codes: 0 ok, 1 runtime failure, 2 bad input or usage, 3 identity check failed under --strict.
"""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Optional

import typer
from reenact_cli.analysis_cmds import extract, identity, train
from reenact_cli.base import (  # noqa: F401  (guarded, ui_of: the names tests and plugins use from here)
    OneLineUsageErrors,
    check_device,
    check_report_path,
    device_of,
    guarded,
    run_video_job,
    ui_of,
)
from reenact_cli.batch_cmd import batch as batch_command
from reenact_cli.options import (
    Absolute,
    BatchSize,
    CheckEvery,
    Creases,
    Crf,
    DriverMouth,
    Face,
    Fps,
    Gaze,
    Identity,
    MaxSize,
    Mouth,
    Mute,
    OptionalFps,
    Output,
    Overwrite,
    Pose,
    Preset,
    Refine,
    RegionOption,
    Region,
    Report,
    Rest,
    RestOption,
    Scale,
    Seed,
    Smooth,
    SmoothOption,
    Still,
    Strength,
    Strict,
    Text,
    Threshold,
    parse_fps,
    retarget_options,
)
from reenact_cli.ui import UI

import reenact
from reenact.errors import InputError
from reenact.limits import check_distinct, check_photo_options
from reenact.options import RenderOptions, SpeakOptions  # torch-free: options are checked before anything loads
from reenact.specs import DriveSpec, EditSpec, RenderSpec, SpeakSpec, check_photo_mouth


app = typer.Typer(
    cls=OneLineUsageErrors,
    name="reenact",
    help="Animate one photo of a face from a driving video, speech audio, or expression controls.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,  # a bug shows a plain traceback; user mistakes never reach here
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode="rich",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"reenact {reenact.__version__}")
        raise typer.Exit(0)


@app.callback()
def main_options(
    ctx: typer.Context,
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N.", envvar="REENACT_DEVICE"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only errors on stderr."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="More detail (timings, chosen models)."),
    json_progress: bool = typer.Option(False, "--json-progress", help="JSON lines on stderr instead of bars."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    obj = ctx.ensure_object(dict)
    ui = obj.get("ui") or UI()
    ui.quiet, ui.verbose, ui.json_progress = quiet, verbose, json_progress
    obj["ui"] = ui
    obj["device"] = device


@app.command()
@guarded
def info(ctx: typer.Context) -> None:
    """Versions, the device that would be used, and the shipped weights with their licences."""
    import av
    import torch
    from rich.table import Table

    from reenact.device import describe
    from reenact.weights import shipped, weights_dir

    ui = ui_of(ctx)
    out = ui.out
    out.print(f"reenact {reenact.__version__}  (Python {platform.python_version()}, torch {torch.__version__}, "
              f"PyAV {av.__version__}, {platform.system()} {platform.machine()})", highlight=False)
    out.print(f"device: {describe(device_of(ctx))}   CUDA available: {torch.cuda.is_available()}", highlight=False)
    contracts = shipped()
    table = Table(title=f"weights ({weights_dir()})" if ui.verbose else "weights", title_justify="left")
    for column in ("name", "what", "licence", "source", "MB"):
        table.add_column(column)
    for c in contracts:
        size = (weights_dir() / f"{c.name}.safetensors").stat().st_size / 1e6 if (weights_dir() / f"{c.name}.safetensors").exists() else 0.0
        table.add_row(c.name, c.outputs.get("what", c.arch.rsplit(":", 1)[-1]) if isinstance(c.outputs, dict) else "",
                      c.licence, c.source, f"{size:.1f}")
    if contracts:
        out.print(table)
    else:
        out.print("weights: none shipped in this build")


# long: a Typer command takes one parameter per CLI option
@app.command()
@guarded
def drive(
    ctx: typer.Context,
    source: Path = typer.Argument(..., help="Photo of the face to animate (JPEG/PNG/WebP)."),
    driver: Path = typer.Argument(..., help="Driving video whose expressions (and audio) are transferred."),
    output: Output = None,
    overwrite: Overwrite = False,
    report: Report = None,
    preview: Optional[Path] = typer.Option(None, "--preview", help="Also write a side-by-side driver | output video."),
    speech: Optional[Path] = typer.Option(
        None, "--audio", help="Speech that moves the lips: the mouth follows this recording (audio head) instead of "
        "DRIVER's, the rest of the face still follows DRIVER, and the recording replaces DRIVER's audio."),
    strength: Strength = 1.0,
    absolute: Absolute = False,
    scale: Scale = [],
    mute: Mute = [],
    region: RegionOption = Region.all,
    pose: Pose = False,
    gaze: Gaze = True,
    rest: RestOption = Rest.clip,
    face: Face = None,
    max_size: MaxSize = 1280,
    smooth: SmoothOption = Smooth.offline,
    strict: Strict = False,
    identity_model: Identity = "default",
    refine: Refine = True,
    mouth: DriverMouth = "driver",
    creases: Creases = False,
    threshold: Threshold = None,
    check_every: CheckEvery = 1,
    batch_size: BatchSize = 16,
    crf: Crf = 18,
    preset: Preset = "veryfast",
) -> None:
    """Make the person in SOURCE perform the expressions of the person in DRIVER; the driver's audio is kept."""
    output = output or Path(f"{source.stem}_{driver.stem}.mp4")
    opts = RenderOptions(retarget=retarget_options(strength, absolute, region, scale, mute, pose, gaze, rest),
                         batch_size=batch_size, check_every=check_every, strict=strict, overwrite=overwrite, crf=crf,
                         preset=preset, threshold=threshold, refine=refine, mouth=mouth)
    check_distinct({"SOURCE": source, "DRIVER": driver, "--audio": speech},
                   {"-o": output, "--preview": preview, "--report": report})
    spec = DriveSpec(source, driver, output, opts, max_size=max_size, face=face, smooth=smooth.value,
                     preview=preview, speech_audio=speech, creases=creases)
    check_report_path(report, overwrite)
    check_device(ctx)
    from reenact.pipeline import drive as run_drive

    run_video_job(ctx, run_drive, spec, identity_model, report, overwrite)


# long: a Typer command takes one parameter per CLI option
@app.command()
@guarded
def speak(
    ctx: typer.Context,
    source: Path = typer.Argument(..., help="Photo of the face to animate."),
    audio: Path = typer.Argument(..., help="Speech audio (WAV/MP3/M4A/... any sample rate, mono or stereo)."),
    output: Output = None,
    overwrite: Overwrite = False,
    report: Report = None,
    fps: Fps = "25",
    text: Text = None,
    transcript: Optional[Path] = typer.Option(None, "--transcript", help="File holding the transcript (UTF-8 text)."),
    still: Still = False,
    seed: Seed = 0,
    strength: Strength = 1.0,
    face: Face = None,
    max_size: MaxSize = 1280,
    strict: Strict = False,
    identity_model: Identity = "default",
    refine: Refine = True,
    mouth: Mouth = "library",
    crf: Crf = 18,
    preset: Preset = "veryfast",
) -> None:
    """Animate the lips of SOURCE from speech AUDIO, with natural blinks and head motion; the audio is muxed in."""
    if text is not None and transcript is not None:
        raise InputError("Give either --text or --transcript, not both.")
    output = output or Path(f"{source.stem}_{audio.stem}.mp4")
    check_distinct({"SOURCE": source, "AUDIO": audio, "--transcript": transcript}, {"-o": output, "--report": report})
    opts = RenderOptions(strict=strict, overwrite=overwrite, refine=refine, crf=crf, preset=preset,
                         mouth=check_photo_mouth(mouth))
    speech = SpeakOptions(fps=parse_fps(fps), text=text if transcript is None else read_transcript(transcript),
                          still=still, seed=seed, strength=strength)
    spec = SpeakSpec(source, audio, output, opts, speech, max_size=max_size, face=face)
    check_report_path(report, overwrite)
    check_device(ctx)
    from reenact.speak import speak as run_speak

    run_video_job(ctx, run_speak, spec, identity_model, report, overwrite)


def read_transcript(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"Cannot read the transcript {path}: {err}; give a UTF-8 text file.") from None


# long: a Typer command takes one parameter per CLI option
@app.command()
@guarded
def render(
    ctx: typer.Context,
    source: Path = typer.Argument(..., help="Photo of the face to animate."),
    track: Path = typer.Argument(..., help="Parameter track (CSV/JSON/OpenFace/Live Link) from `reenact extract` or by hand."),
    output: Output = None,
    overwrite: Overwrite = False,
    report: Report = None,
    mux_audio: Optional[Path] = typer.Option(
        None, "--audio", help="Audio put into the video as it is (muxed); it does not move the face, TRACK does. For "
        "lips from speech use `speak` or `drive --audio`."),
    fps: OptionalFps = None,
    strength: Strength = 1.0,
    absolute: Absolute = False,
    scale: Scale = [],
    mute: Mute = [],
    region: RegionOption = Region.all,
    pose: Pose = False,
    rest: RestOption = Rest.clip,
    face: Face = None,
    max_size: MaxSize = 1280,
    strict: Strict = False,
    identity_model: Identity = "default",
    refine: Refine = True,
    mouth: Mouth = "library",
    crf: Crf = 18,
    preset: Preset = "veryfast",
) -> None:
    """Animate SOURCE from a parameter TRACK (AU / ARKit / viseme columns over time)."""
    output = output or Path(f"{source.stem}_{track.stem}.mp4")
    opts = RenderOptions(retarget=retarget_options(strength, absolute, region, scale, mute, pose, rest=rest),
                         strict=strict, overwrite=overwrite, refine=refine, crf=crf, preset=preset,
                         mouth=check_photo_mouth(mouth))
    rate = parse_fps(fps) if fps else None
    check_distinct({"SOURCE": source, "TRACK": track, "--audio": mux_audio}, {"-o": output, "--report": report})
    spec = RenderSpec(source, track, output, opts, mux_audio=mux_audio, fps=rate, max_size=max_size, face=face)
    check_report_path(report, overwrite)
    check_device(ctx)
    from reenact.pipeline import render as run_render

    run_video_job(ctx, run_render, spec, identity_model, report, overwrite)


# long: a Typer command takes one parameter per CLI option
@app.command()
@guarded
def edit(
    ctx: typer.Context,
    source: Path = typer.Argument(..., help="Photo to edit."),
    output: Output = None,
    overwrite: Overwrite = False,
    au: list[str] = typer.Option([], "--au", help="Action Unit intensity 0..1, e.g. --au 12=0.8 (repeatable)."),
    arkit: list[str] = typer.Option([], "--arkit", help="ARKit blendshape 0..1, e.g. --arkit jawOpen=0.5."),
    emotion: Optional[str] = typer.Option(None, "--emotion", help="happy|sad|surprise|fear|angry|disgust|contempt|neutral[:0..1]."),
    vad: Optional[str] = typer.Option(None, "--vad", help="Valence,arousal[,dominance] in -1..1, e.g. 0.6,0.4,0.1."),
    grid: bool = typer.Option(False, "--grid", help="Write an intensity sweep (one row per control, 0 to 1)."),
    face: Face = None,
    max_size: MaxSize = 1280,
    refine: Refine = True,
    mouth: Mouth = "library",
) -> None:
    """Change the expression of SOURCE by Action Units, ARKit blendshapes, an emotion, or valence/arousal/dominance."""
    check_device(ctx)
    check_photo_mouth(mouth)
    check_photo_options(max_size, face)
    from reenact.edit import Controls  # OpenCV

    controls = Controls.parse(au, arkit, emotion, vad)
    output = output or source.with_name(f"{source.stem}_{'grid' if grid else 'edit'}.png")
    check_distinct({"SOURCE": source}, {"-o": output})
    spec = EditSpec(source, output, controls, grid=grid, overwrite=overwrite, max_size=max_size, face=face,
                    refine=refine, mouth=mouth)
    from reenact.pipeline import Models  # after the checks: torch and the models load here
    from reenact.pipeline import edit as run_edit

    result = run_edit(spec, Models(device_of(ctx)))
    ident = result["identity"]
    ui = ui_of(ctx)
    ui.event("done", **result)
    ui.info(f"wrote {output} ({', '.join(result['edits'])}); identity similarity {ident['min']} "
            f"(threshold {ident['threshold']}).")


# Registered after the photo commands: `--help` lists commands in this order.
for _name, _command in (("extract", extract), ("batch", batch_command), ("train", train), ("identity", identity)):
    app.command(_name)(guarded(_command))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
