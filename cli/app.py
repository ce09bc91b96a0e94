"""The `reenact` command line: parsing, progress, messages and exit codes over the `reenact` library.

Exit codes: 0 ok, 1 runtime failure, 2 bad input or usage, 3 identity check failed under --strict.
"""

from __future__ import annotations

import functools
import platform
from pathlib import Path
from typing import Any, Callable, Optional, TypeVar

import typer

import reenact
from reenact.errors import EXIT_RUNTIME, NotBuiltError, ReenactError
from reenact_cli.ui import UI

F = TypeVar("F", bound=Callable[..., Any])

app = typer.Typer(
    name="reenact",
    help="Animate one photo of a face from a driving video, speech audio, or expression controls.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,  # a bug shows a plain traceback; user mistakes never reach here
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode="rich",
)


def ui_of(ctx: typer.Context) -> UI:
    return ctx.ensure_object(dict).setdefault("ui", UI())


def guarded(fn: F) -> F:
    """Turn library errors into one clear line and the documented exit code (the command takes `ctx`)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ui = ui_of(kwargs["ctx"])
        try:
            return fn(*args, **kwargs)
        except ReenactError as err:
            ui.error(str(err), err.exit_code)
            raise typer.Exit(err.exit_code) from None
        except KeyboardInterrupt:
            ui.error("interrupted; no partial output was kept.", 130)
            raise typer.Exit(130) from None
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
    from reenact.device import resolve_device

    return resolve_device(ctx.ensure_object(dict).get("device", "auto"))


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


@app.command()
@guarded
def drive(
    ctx: typer.Context,
    source: Path = typer.Argument(..., help="Photo of the face to animate (JPEG/PNG/WebP)."),
    driver: Path = typer.Argument(..., help="Driving video whose expressions (and audio) are transferred."),
    output: Optional[Path] = OUT,
    overwrite: bool = OVERWRITE,
    report: Optional[Path] = REPORT,
) -> None:
    """Make the person in SOURCE perform the expressions of the person in DRIVER; the driver's audio is kept."""
    not_built("drive", "rendering lands with the renderer")


@app.command()
@guarded
def speak(
    ctx: typer.Context,
    source: Path = typer.Argument(..., help="Photo of the face to animate."),
    audio: Path = typer.Argument(..., help="Speech audio (WAV/MP3/M4A/...)."),
    output: Optional[Path] = OUT,
    overwrite: bool = OVERWRITE,
    text: Optional[str] = typer.Option(None, "--text", help="Transcript, for forced alignment (best lip timing)."),
) -> None:
    """Animate the lips of SOURCE from speech AUDIO, with natural blinks and head motion."""
    not_built("speak", "speech-driven animation")


@app.command()
@guarded
def render(
    ctx: typer.Context,
    source: Path = typer.Argument(..., help="Photo of the face to animate."),
    track: Path = typer.Argument(..., help="Parameter track (CSV/JSON) from `reenact extract` or edited by hand."),
    output: Optional[Path] = OUT,
    overwrite: bool = OVERWRITE,
    audio: Optional[Path] = typer.Option(None, "--audio", help="Audio file to mux into the video."),
) -> None:
    """Animate SOURCE from a parameter TRACK (AU / ARKit / viseme columns over time)."""
    not_built("render", "rendering lands with the renderer")


@app.command()
@guarded
def edit(
    ctx: typer.Context,
    source: Path = typer.Argument(..., help="Photo to edit."),
    output: Optional[Path] = OUT,
    overwrite: bool = OVERWRITE,
    au: list[str] = typer.Option([], "--au", help="Action Unit intensity, e.g. --au 12=0.8 (0..1)."),
    arkit: list[str] = typer.Option([], "--arkit", help="ARKit blendshape, e.g. --arkit jawOpen=0.5."),
    emotion: Optional[str] = typer.Option(None, "--emotion", help="happy|sad|surprise|fear|angry|disgust|contempt[:0..1]."),
    vad: Optional[str] = typer.Option(None, "--vad", help="Valence,arousal,dominance, e.g. 0.6,0.4,0.1."),
    grid: bool = typer.Option(False, "--grid", help="Write an intensity sweep image instead of one edit."),
) -> None:
    """Change the expression of SOURCE by Action Units, ARKit blendshapes, an emotion, or valence/arousal/dominance."""
    not_built("edit", "rendering lands with the renderer")


@app.command()
@guarded
def extract(
    ctx: typer.Context,
    media: Path = typer.Argument(..., help="Video, image or speech audio to analyse."),
    output: Optional[Path] = OUT,
    overwrite: bool = OVERWRITE,
    landmarks: bool = typer.Option(False, "--landmarks", help="Write per-frame 478-point landmarks, box and pose."),
    fmt: Optional[str] = typer.Option(None, "--format", help="csv|json|openface|livelink (default from the suffix)."),
) -> None:
    """Write a per-frame track of expression parameters (AU / ARKit / viseme / pose) or landmarks."""
    not_built("extract", "face analysis and expression parameters")


@app.command()
@guarded
def batch(
    ctx: typer.Context,
    sources: str = typer.Argument(..., help="Folder, glob or file of source photos."),
    drivers: str = typer.Argument(..., help="Folder, glob or file of driving videos or speech audio."),
    output: Path = typer.Option(..., "--output", "-o", help="Output folder."),
) -> None:
    """Render every source with every driver (or the jobs of a manifest), resumably."""
    not_built("batch", "batch rendering")


@app.command()
@guarded
def train(
    ctx: typer.Context,
    what: str = typer.Argument(..., help="estimator | refiner | audio-head"),
    data: Optional[Path] = typer.Option(None, "--data", help="Folder of videos/images (or audio) to train on."),
) -> None:
    """Train one of reenact's models on your own data (resumes from checkpoints)."""
    not_built("train", "training commands")


@app.command()
@guarded
def identity(
    ctx: typer.Context,
    a: Path = typer.Argument(..., help="Reference photo."),
    b: Path = typer.Argument(..., help="Photo or video to compare with A."),
    threshold: Optional[float] = typer.Option(None, "--threshold", help="Cosine similarity for 'same person'."),
) -> None:
    """Say whether B shows the same person as A (exit 0 same, 3 not)."""
    not_built("identity", "identity check")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
