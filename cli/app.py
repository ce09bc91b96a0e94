"""The `reenact` command line: parsing, progress, messages and exit codes over the `reenact` library.

Exit codes: 0 ok, 1 runtime failure, 2 bad input or usage, 3 identity check failed under --strict.
"""

from __future__ import annotations

import contextlib
import functools
import platform
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable, NoReturn, Optional, TypeVar

import typer
from reenact_cli.ui import UI
from typer.core import TyperGroup

import reenact
from reenact.errors import EXIT_RUNTIME, IdentityError, Interrupted, NotBuiltError, ReenactError, from_os_error
from reenact.io.atomic import OutputGroup
from reenact.limits import check, check_distinct, check_photo_options, span

F = TypeVar("F", bound=Callable[..., Any])


# Click's UsageError, the base of typer.BadParameter (recent Typer versions bundle their own copy of Click).
UsageError: type[Exception] = typer.BadParameter.__mro__[1]


class OneLineUsageErrors(TyperGroup):
    """Click's own usage errors (`--face abc`, a missing argument, an unknown option or command) as one line on
    stderr and exit code 2, like every other bad input, instead of Click's usage panel."""

    def make_context(self, info_name: Optional[str], args: list[str], parent: Any = None, **extra: Any) -> Any:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except UsageError as err:
            usage_error(err, extra.get("obj"), info_name or "reenact")

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except UsageError as err:
            sub = ctx.invoked_subcommand
            usage_error(err, ctx.obj, f"{ctx.command_path} {sub}" if sub else ctx.command_path)


def usage_error(err: Any, obj: Any, command: str) -> NoReturn:
    """Print `err` as one line through the command's UI (`obj["ui"]`), naming `command`'s help; exit 2."""
    if type(err).__name__ == "NoArgsIsHelpError":  # bare `reenact`: Click prints the help
        raise err
    ui = obj.get("ui") if isinstance(obj, dict) else None
    command = err.ctx.command_path if err.ctx is not None else command
    (ui or UI()).error(f"{err.format_message().rstrip('.')}; see `{command} --help`.", err.exit_code)
    raise typer.Exit(err.exit_code)


app = typer.Typer(
    cls=OneLineUsageErrors,
    name="reenact",
    help="Animate one photo of a face from a driving video, speech audio, or expression controls.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,  # a bug shows a plain traceback; user mistakes never reach here
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode="rich",
)


def ui_of(ctx: typer.Context) -> UI:
    return ctx.ensure_object(dict).setdefault("ui", UI())


@contextlib.contextmanager
def signals_interrupt() -> Iterator[None]:
    """SIGTERM and SIGHUP raise `Interrupted` (a KeyboardInterrupt) in the main thread, as Ctrl-C raises
    KeyboardInterrupt: their default action kills the process on the spot and leaves the hidden temporaries of
    every output behind, while an exception unwinds through the `with` blocks that remove them. A second signal
    during that cleanup is ignored, so the cleanup finishes. The handlers are restored afterwards."""
    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        yield
        return
    wanted = [getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)]

    def handler(signum: int, frame: Any) -> None:
        for sig in wanted:
            signal.signal(sig, signal.SIG_IGN)
        raise Interrupted(signum, signal.Signals(signum).name)

    before = {sig: signal.signal(sig, handler) for sig in wanted}
    try:
        yield
    finally:
        for sig, old in before.items():
            signal.signal(sig, old)


def guarded(fn: F) -> F:
    """Turn library errors into one clear line and the documented exit code (the command takes `ctx`). This is the
    one place where errors become messages: typed library errors, OS errors that reach here (a full disk, a missing
    permission, a name too long: reenact.errors.from_os_error), interruptions (Ctrl-C 130, SIGTERM 143, SIGHUP 129)
    and running out of memory."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ui = ui_of(kwargs["ctx"])
        try:
            with signals_interrupt():
                return fn(*args, **kwargs)
        except ReenactError as err:
            ui.error(str(err), err.exit_code)
            raise typer.Exit(err.exit_code) from None
        except OSError as err:
            failure = from_os_error(err)
            ui.error(str(failure), failure.exit_code)
            raise typer.Exit(failure.exit_code) from None
        except KeyboardInterrupt as err:
            code, what = (err.exit_code, err.name) if isinstance(err, Interrupted) else (130, "interrupted")
            ui.error(f"{what}; no partial output was kept.", code)
            raise typer.Exit(code) from None
        except MemoryError:
            ui.error("out of memory; try --max-size 720 or --batch-size 4.", EXIT_RUNTIME)
            raise typer.Exit(EXIT_RUNTIME) from None

    return wrapper  # type: ignore[return-value]


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


def device_of(ctx: typer.Context):  # -> torch.device; imported lazily so `--help` stays fast
    """The device of `--device`, with torch's CPU threads set for it (reenact.device.configure_threads)."""
    from reenact.device import configure_threads, resolve_device

    device = resolve_device(ctx.ensure_object(dict).get("device", "auto"))
    configure_threads(device)
    return device


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


def not_built(command: str, issue: str) -> None:
    raise NotBuiltError(f"`reenact {command}` is not built in reenact {reenact.__version__} yet ({issue}); "
                        f"see CHANGELOG.md for what works today.")


OUT = typer.Option(None, "--output", "-o", help="Output file (default: beside the input, with a suffix).")
OVERWRITE = typer.Option(False, "--overwrite", "-y", help="Replace an existing output file.")
REPORT = typer.Option(None, "--report", help="Write a JSON report (identity per frame, missing faces, timings).")
STRENGTH = typer.Option(1.0, "--strength", help=f"Multiply the transferred expression change ({span('strength')}).")
SCALE = typer.Option([], "--scale", help=f"Per-channel gain ({span('scale')}), e.g. --scale AU12=1.4 (repeatable).")
MUTE = typer.Option([], "--mute", help="Channels not to transfer, e.g. --mute AU45 (repeatable).")
REGION = typer.Option("all", "--region", help="all | mouth | eyes | brows.")
FACE = typer.Option(None, "--face", help="Which face of the photo, 0-based left to right (default: the largest).")
MAX_SIZE = typer.Option(1280, "--max-size", help=f"Scale the photo down to this long side (px, {span('max_size')}).")
STRICT = typer.Option(False, "--strict", help="Exit 3 when any frame fails the identity check; a damaged or truncated driver is exit 2 instead of rendering the frames that decode.")
IDENTITY = typer.Option("default", "--identity", help="mobilefacenet (= default: ArcFace-trained, shipped) | dlib (shipped, CC0) | arcface[:PATH] (an insightface pack you have); docs/identity.md.")
CRF = typer.Option(18, "--crf", help="H.264 quality: 0 lossless .. 51 worst; 18 looks lossless, 23 is x264's default.")
PRESET = typer.Option("veryfast", "--preset", help="x264 speed: ultrafast .. veryslow (slower = smaller file at the same quality).")
THRESHOLD_HELP = (f"Identity similarity threshold (cosine, {span('threshold')}; default: the embedder's own, "
                  f"docs/identity.md).")
MOUTH = typer.Option("library", "--mouth", help="An opening mouth's inside: library (real teeth, tongue and shadow from talking-face footage, chosen by mouth shape, docs/mouth.md) | paint (drawn teeth and a dark cavity).")
REFINE = typer.Option(True, "--refine/--no-refine", help="Draw over the warp with the GAN refiner and the expression shading when the shipped ones pass their checks (docs/refiner.md, docs/shading.md); --no-refine: warp only.")


def retarget_options(strength: float, absolute: bool, region: str, scale: list[str], mute: list[str],
                     pose: bool, gaze: bool = True):  # -> reenact.retarget.RetargetOptions
    """Build the transfer options and validate every channel name before any work starts."""
    from reenact.retarget import RetargetOptions, parse_assignments

    opts = RetargetOptions(strength=strength, absolute=absolute, region=region,
                           scale=parse_assignments(scale, "--scale"), mute=list(mute), gaze=gaze, pose=pose)
    opts.gains()
    return opts


@app.command()
@guarded
def drive(
    ctx: typer.Context,
    source: Path = typer.Argument(..., help="Photo of the face to animate (JPEG/PNG/WebP)."),
    driver: Path = typer.Argument(..., help="Driving video whose expressions (and audio) are transferred."),
    output: Optional[Path] = OUT,
    overwrite: bool = OVERWRITE,
    report: Optional[Path] = REPORT,
    preview: Optional[Path] = typer.Option(None, "--preview", help="Also write a side-by-side driver | output video."),
    speech: Optional[Path] = typer.Option(None, "--audio", help="Take the lips from this speech recording (and use it as the audio)."),
    strength: float = STRENGTH,
    absolute: bool = typer.Option(False, "--absolute", help="Copy the driver's values instead of its changes."),
    scale: list[str] = SCALE,
    mute: list[str] = MUTE,
    region: str = REGION,
    pose: bool = typer.Option(False, "--pose", help="Also transfer small head rotations (off by default)."),
    gaze: bool = typer.Option(True, "--gaze/--no-gaze", help="Transfer eye gaze."),
    face: Optional[int] = FACE,
    max_size: int = MAX_SIZE,
    smooth: str = typer.Option("offline", "--smooth", help="offline (zero-phase) | online (One Euro) | none."),
    strict: bool = STRICT,
    identity_model: str = IDENTITY,
    refine: bool = REFINE,
    mouth: str = typer.Option("driver", "--mouth", help="An opening mouth's inside: driver (the driving video's own teeth, tongue and shadow, docs/mouth.md) | library (real mouths chosen by shape) | paint (drawn teeth and a dark cavity). With --audio, driver means library."),
    threshold: Optional[float] = typer.Option(None, "--threshold", help=THRESHOLD_HELP),
    check_every: int = typer.Option(1, "--check-every", help=f"Identity-check every N-th frame ({span('check_every')})."),
    batch_size: int = typer.Option(16, "--batch-size", help=f"Frames rendered per batch ({span('batch_size')})."),
    crf: int = CRF,
    preset: str = PRESET,
) -> None:
    """Make the person in SOURCE perform the expressions of the person in DRIVER; the driver's audio is kept."""
    from reenact.pipeline import Models, RenderOptions
    from reenact.pipeline import drive as run_drive

    ui = ui_of(ctx)
    output = output or Path(f"{source.stem}_{driver.stem}.mp4")
    opts = RenderOptions(retarget=retarget_options(strength, absolute, region, scale, mute, pose, gaze),
                         batch_size=batch_size, check_every=check_every, strict=strict, overwrite=overwrite, crf=crf,
                         preset=preset, threshold=threshold, refine=refine, mouth=mouth)
    check_photo_options(max_size, face)
    check_distinct({"SOURCE": source, "DRIVER": driver, "--audio": speech},
                {"-o": output, "--preview": preview, "--report": report})
    if report is not None:
        check_report_path(report, overwrite)
    models = Models(device_of(ctx), identity_model)
    with OutputGroup(overwrite) as outputs:  # the video, its preview and the report: together or not at all
        try:
            result = run_drive(source, driver, output, models, opts, max_size=max_size, face=face, smooth=smooth,
                               progress=ui.progress, preview=preview, speech_audio=speech, outputs=outputs)
        except IdentityError as err:  # --strict: the video is kept for inspection, with its report
            stage_report(outputs, report, getattr(err, "report", None))
            outputs.commit()
            raise
        stage_report(outputs, report, result.to_dict())
    summarize(ui, result.to_dict())


def check_report_path(path: Path, overwrite: bool) -> None:
    from reenact.io.atomic import check_output_path

    check_output_path(path, overwrite)


def write_report(path: Optional[Path], data: Optional[dict], overwrite: bool) -> None:
    """A command's only output, or one written after its others are committed (batch's own report)."""
    with OutputGroup(overwrite) as outputs:
        stage_report(outputs, path, data)


def stage_report(outputs: OutputGroup, path: Optional[Path], data: Optional[dict]) -> None:
    """Stage the JSON report in the command's OutputGroup (a full disk here leaves none of its outputs)."""
    if path is None or data is None:
        return
    import json

    outputs.write_text(path, json.dumps(data, indent=2) + "\n")


def summarize(ui: UI, result: dict) -> None:
    ident = result.get("identity", {})
    missing = result.get("missing_driver_frames")
    ui.event("done", **{k: result[k] for k in ("output", "frames", "fps")}, identity=ident)
    driver = "" if missing is None else f"; {len(missing)} driver frame(s) without a face"
    ui.info(f"wrote {result['output']}: {result['frames']} frames at {result['fps']} fps; identity mean "
            f"{ident.get('mean')} (min {ident.get('min')}, threshold {ident.get('threshold')}); "
            f"{len(result.get('fallback_frames', []))} softened{driver}.")
    damage = result.get("damage")
    if damage:  # rendered as far as the driver decodes; --strict refuses instead
        ui.warn(f"{damage['message']}: rendered the {damage['frames_decoded']} of {damage['frames_expected']} "
                f"frames that decode (--strict refuses a damaged driver).")


@app.command()
@guarded
def speak(
    ctx: typer.Context,
    source: Path = typer.Argument(..., help="Photo of the face to animate."),
    audio: Path = typer.Argument(..., help="Speech audio (WAV/MP3/M4A/... any sample rate, mono or stereo)."),
    output: Optional[Path] = OUT,
    overwrite: bool = OVERWRITE,
    report: Optional[Path] = REPORT,
    fps: str = typer.Option("25", "--fps", help="Output frame rate."),
    text: Optional[str] = typer.Option(None, "--text", help="Transcript, for forced alignment (best lip timing; needs the \\[speech] extra)."),
    transcript: Optional[Path] = typer.Option(None, "--transcript", help="File holding the transcript (UTF-8 text)."),
    still: bool = typer.Option(False, "--still", help="No blinks, brow or head motion: only the lips move."),
    seed: int = typer.Option(0, "--seed", help="Seed of the idle motion (blinks, head)."),
    strength: float = typer.Option(1.0, "--strength", help=f"Scale the mouth motion ({span('strength')})."),
    face: Optional[int] = FACE,
    max_size: int = MAX_SIZE,
    strict: bool = STRICT,
    identity_model: str = IDENTITY,
    refine: bool = REFINE,
    mouth: str = MOUTH,
    crf: int = CRF,
    preset: str = PRESET,
) -> None:
    """Animate the lips of SOURCE from speech AUDIO, with natural blinks and head motion; the audio is muxed in."""
    from reenact.errors import InputError
    from reenact.pipeline import Models, RenderOptions
    from reenact.speak import SpeakOptions
    from reenact.speak import speak as run_speak

    ui = ui_of(ctx)
    if text is not None and transcript is not None:
        raise InputError("Give either --text or --transcript, not both.")
    if transcript is not None:
        try:
            text = transcript.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise InputError(f"Cannot read the transcript {transcript}: {err}; give a UTF-8 text file.") from None
    output = output or Path(f"{source.stem}_{audio.stem}.mp4")
    check("strength", strength)
    check_photo_options(max_size, face)
    check_distinct({"SOURCE": source, "AUDIO": audio, "--transcript": transcript}, {"-o": output, "--report": report})
    if report is not None:
        check_report_path(report, overwrite)
    opts = RenderOptions(strict=strict, overwrite=overwrite, refine=refine, crf=crf, preset=preset,
                         mouth=check_mouth(mouth))
    sopts = SpeakOptions(fps=parse_fps(fps), text=text, still=still, seed=seed, strength=strength)
    with OutputGroup(overwrite) as outputs:  # the video and the report: together or not at all
        result = run_speak(source, audio, output, Models(device_of(ctx), identity_model), opts, sopts,
                           max_size=max_size, face=face, progress=ui.progress, outputs=outputs)
        stage_report(outputs, report, result.to_dict())
    summarize(ui, result.to_dict())


@app.command()
@guarded
def render(
    ctx: typer.Context,
    source: Path = typer.Argument(..., help="Photo of the face to animate."),
    track: Path = typer.Argument(..., help="Parameter track (CSV/JSON/OpenFace/Live Link) from `reenact extract` or by hand."),
    output: Optional[Path] = OUT,
    overwrite: bool = OVERWRITE,
    report: Optional[Path] = REPORT,
    audio: Optional[Path] = typer.Option(None, "--audio", help="Audio file to mux into the video."),
    fps: Optional[str] = typer.Option(None, "--fps", help="Output frame rate (default: the track's; 25 for keyframes)."),
    strength: float = STRENGTH,
    absolute: bool = typer.Option(False, "--absolute", help="Track values are absolute, not changes from neutral."),
    scale: list[str] = SCALE,
    mute: list[str] = MUTE,
    region: str = REGION,
    pose: bool = typer.Option(False, "--pose", help="Apply the track's head rotation (small angles)."),
    face: Optional[int] = FACE,
    max_size: int = MAX_SIZE,
    strict: bool = STRICT,
    identity_model: str = IDENTITY,
    refine: bool = REFINE,
    mouth: str = MOUTH,
    crf: int = CRF,
    preset: str = PRESET,
) -> None:
    """Animate SOURCE from a parameter TRACK (AU / ARKit / viseme columns over time)."""
    from reenact.pipeline import Models, RenderOptions
    from reenact.pipeline import render as run_render

    ui = ui_of(ctx)
    output = output or Path(f"{source.stem}_{track.stem}.mp4")
    opts = RenderOptions(retarget=retarget_options(strength, absolute, region, scale, mute, pose),
                         strict=strict, overwrite=overwrite, refine=refine, crf=crf, preset=preset,
                         mouth=check_mouth(mouth))
    rate = parse_fps(fps) if fps else None
    check_photo_options(max_size, face)
    check_distinct({"SOURCE": source, "TRACK": track, "--audio": audio}, {"-o": output, "--report": report})
    if report is not None:
        check_report_path(report, overwrite)
    with OutputGroup(overwrite) as outputs:  # the video and the report: together or not at all
        result = run_render(source, track, output, Models(device_of(ctx), identity_model), opts, audio=audio,
                            fps=rate, max_size=max_size, face=face, progress=ui.progress, outputs=outputs)
        stage_report(outputs, report, result.to_dict())
    summarize(ui, result.to_dict())


def check_mouth(mouth: str) -> str:
    """--mouth of a command without a driving video: library or paint."""
    from reenact.errors import InputError

    if mouth not in ("library", "paint"):
        raise InputError(f"Unknown --mouth {mouth!r}; use library or paint (driver needs `drive`).")
    return mouth


def parse_fps(text: str):  # -> Fraction
    from fractions import Fraction

    from reenact.errors import InputError

    try:
        rate = Fraction(text)
    except (ValueError, ZeroDivisionError):
        raise InputError(f"--fps {text!r}: give a number or a ratio such as 25 or 30000/1001.") from None
    return check("fps", rate, f"--fps {text}")


@app.command()
@guarded
def edit(
    ctx: typer.Context,
    source: Path = typer.Argument(..., help="Photo to edit."),
    output: Optional[Path] = OUT,
    overwrite: bool = OVERWRITE,
    au: list[str] = typer.Option([], "--au", help="Action Unit intensity 0..1, e.g. --au 12=0.8 (repeatable)."),
    arkit: list[str] = typer.Option([], "--arkit", help="ARKit blendshape 0..1, e.g. --arkit jawOpen=0.5."),
    emotion: Optional[str] = typer.Option(None, "--emotion", help="happy|sad|surprise|fear|angry|disgust|contempt|neutral[:0..1]."),
    vad: Optional[str] = typer.Option(None, "--vad", help="Valence,arousal[,dominance] in -1..1, e.g. 0.6,0.4,0.1."),
    grid: bool = typer.Option(False, "--grid", help="Write an intensity sweep (one row per control, 0 to 1)."),
    face: Optional[int] = FACE,
    max_size: int = MAX_SIZE,
    refine: bool = REFINE,
    mouth: str = MOUTH,
) -> None:
    """Change the expression of SOURCE by Action Units, ARKit blendshapes, an emotion, or valence/arousal/dominance."""
    from reenact.edit import Controls
    from reenact.pipeline import Models
    from reenact.pipeline import edit as run_edit

    ui = ui_of(ctx)
    controls = Controls.parse(au, arkit, emotion, vad)
    check_mouth(mouth)
    check_photo_options(max_size, face)
    output = output or source.with_name(f"{source.stem}_{'grid' if grid else 'edit'}.png")
    check_distinct({"SOURCE": source}, {"-o": output})
    result = run_edit(source, output, controls, Models(device_of(ctx)), grid=grid, overwrite=overwrite,
                      max_size=max_size, face=face, refine=refine, mouth=mouth)
    ident = result["identity"]
    ui.event("done", **result)
    ui.info(f"wrote {output} ({', '.join(result['edits'])}); identity similarity {ident['min']} "
            f"(threshold {ident['threshold']}).")


# Registered last so their modules can import the shared options and helpers above; `--help` lists commands in
# this order.
from reenact_cli.analysis_cmds import extract, identity, train  # noqa: E402
from reenact_cli.batch_cmd import batch as batch_command  # noqa: E402

for _name, _command in (("extract", extract), ("batch", batch_command), ("train", train), ("identity", identity)):
    app.command(_name)(guarded(_command))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
