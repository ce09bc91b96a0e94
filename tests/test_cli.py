"""The CLI shell: version, info, help texts, exit codes for usage and device errors."""

from __future__ import annotations

import io

import pytest
from rich.console import Console
from typer.testing import CliRunner

import reenact
from reenact_cli.app import app
from reenact_cli.ui import UI

runner = CliRunner()
COMMANDS = ["info", "drive", "speak", "render", "edit", "extract", "batch", "train", "identity"]


def invoke(*args: str):
    err = io.StringIO()
    ui = UI(err=Console(file=err, width=200), out=Console(file=io.StringIO(), width=200))
    result = runner.invoke(app, list(args), obj={"ui": ui})
    return result, err.getvalue(), ui.out.file.getvalue()


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"reenact {reenact.__version__}"


def test_info_without_gpu() -> None:
    result, _, out = invoke("--device", "cpu", "info")
    assert result.exit_code == 0, result.output
    assert "device: cpu" in out
    assert reenact.__version__ in out


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str) -> None:
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0
    assert "Usage" in result.stdout
    assert len(result.stdout) > 200


def test_unknown_device_is_usage_error() -> None:
    result, err, _ = invoke("--device", "tpu", "info")
    assert result.exit_code == 2
    assert "Unknown device" in err


def test_cuda_on_cpu_machine_is_clear(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    result, err, _ = invoke("--device", "cuda:0", "info")
    assert result.exit_code == 2
    assert "no CUDA GPU" in err
    assert "Traceback" not in err


def test_missing_argument_is_usage_error() -> None:
    result = runner.invoke(app, ["drive"])
    assert result.exit_code == 2


def test_json_progress_emits_json_lines(capsys: pytest.CaptureFixture[str]) -> None:
    ui = UI(json_progress=True)
    with ui.progress("decode", total=3) as advance:
        for _ in range(3):
            advance(1)
    lines = [line for line in capsys.readouterr().err.splitlines() if line]
    import json

    events = [json.loads(line) for line in lines]
    assert events[-1] == {"event": "progress", "stage": "decode", "done": 3, "total": 3, "finished": True}
