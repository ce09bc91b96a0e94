"""What every command shares: one-line usage errors, the error -> message and exit code mapping (`guarded`), the
command's UI and device, and its JSON report. Below the command modules (app.py, analysis_cmds.py, batch_cmd.py),
which all import from here; it imports none of them.

Exit codes: 0 ok, 1 runtime failure, 2 bad input or usage, 3 identity check failed under --strict.
"""

from __future__ import annotations

import contextlib
import functools
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, NoReturn, Optional, TypeVar

import typer
from reenact_cli.ui import UI
from typer.core import TyperGroup

import reenact
from reenact.errors import EXIT_RUNTIME, IdentityError, Interrupted, NotBuiltError, ReenactError, from_os_error
from reenact.io.atomic import OutputGroup

if TYPE_CHECKING:
    import torch

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
    # recent Typer checks an Enum option through pydantic, whose message starts "Value error, ": not ours to show
    message = err.format_message().replace("Value error, ", "").rstrip(".")
    (ui or UI()).error(f"{message}; see `{command} --help`.", err.exit_code)
    raise typer.Exit(err.exit_code)


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


def device_of(ctx: typer.Context) -> torch.device:  # torch is imported lazily, so that `--help` stays fast
    """The device of `--device`, with torch's CPU threads set for it (reenact.device.configure_threads)."""
    from reenact.device import configure_threads, resolve_device

    device = resolve_device(ctx.ensure_object(dict).get("device", "auto"))
    configure_threads(device)
    return device


def check_device(ctx: typer.Context) -> str:
    """`--device` spelled right, without importing torch (whether it exists is device_of's question)."""
    from reenact.limits import check_device_spec

    return check_device_spec(ctx.ensure_object(dict).get("device", "auto"))


def not_built(command: str, issue: str) -> None:
    raise NotBuiltError(f"`reenact {command}` is not built in reenact {reenact.__version__} yet ({issue}); "
                        f"see CHANGELOG.md for what works today.")


def check_report_path(path: Optional[Path], overwrite: bool) -> None:
    """`--report` may be written (None: no report)."""
    from reenact.io.atomic import check_output_path

    if path is not None:
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


def run_video_job(ctx: typer.Context, job: Callable[..., Any], spec: Any, identity_model: str,
                  report: Optional[Path], overwrite: bool) -> None:
    """Run a video job (`pipeline.drive`, `pipeline.render`, `speak.speak`) with its outputs and `--report` in one
    OutputGroup: together or not at all. Under --strict an identity failure keeps the video and the report for
    inspection, as its message says, and exits 3. Then the one-line summary."""
    from reenact.pipeline import Models  # after the command's checks: torch and the models load here

    ui = ui_of(ctx)
    with OutputGroup(overwrite) as outputs:
        try:
            result = job(spec, Models(device_of(ctx), identity_model), progress=ui.progress, outputs=outputs)
        except IdentityError as err:
            stage_report(outputs, report, err.report)
            outputs.commit()
            raise
        stage_report(outputs, report, result.to_dict())
    summarize(ui, result.to_dict())


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


