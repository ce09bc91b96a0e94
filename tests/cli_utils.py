"""Run the CLI in-process with Typer's runner and an injected console, for tests."""

from __future__ import annotations

import io

from reenact_cli.app import app
from reenact_cli.ui import UI
from rich.console import Console
from typer.testing import CliRunner

runner = CliRunner()


def run(*args: str) -> tuple[int, str]:
    """`reenact --device cpu ARGS...` -> (exit code, everything it wrote: stderr, its result lines, plain stdout).

    A Python exception that is not an exit (a bug) is re-raised, so tests show its traceback.
    """
    err, out = io.StringIO(), io.StringIO()
    ui = UI(err=Console(file=err, width=300), out=Console(file=out, width=300))
    result = runner.invoke(app, ["--device", "cpu", *args], obj={"ui": ui})
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, err.getvalue() + out.getvalue() + result.output
