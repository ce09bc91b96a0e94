"""Options shared by several commands are declared once (cli/options.py): same flag, same help, same choices."""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

import typer
from reenact_cli.app import app
from reenact_cli.options import Region, Rest, Smooth

from reenact.options import SMOOTHING
from reenact.retarget import REGIONS, RESTS


def commands() -> dict[str, Any]:
    """The Click commands (Typer may bundle its own copy of Click, so no isinstance checks against `click`)."""
    return dict(typer.main.get_command(app).commands)  # type: ignore[attr-defined]


def options(command: Any) -> list[Any]:
    return [p for p in command.params if p.param_type_name == "option"]


def test_a_shared_option_has_one_help_text_everywhere() -> None:
    helps: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for name, command in commands().items():
        for param in options(command):
            helps[param.opts[0]][param.help or ""].add(name)
    # --audio means "the speech for the lips" in drive and "the audio to mux" in render; --output is a folder in
    # batch; --mouth has a `driver` choice only in drive; --report is the batch's own report. Each is said so.
    own = {"--audio", "--output", "--mouth", "--report"}
    drift = {flag: dict(texts) for flag, texts in helps.items() if len(texts) > 1 and flag not in own}
    assert drift == {}


def test_the_shared_options_reach_every_command_that_renders() -> None:
    have = {name: {p.opts[0] for p in options(c)} for name, c in commands().items()}
    for flag in ("--refine", "--face", "--max-size", "--strict", "--identity", "--crf", "--preset"):
        assert {"drive", "speak", "render", "batch"} <= {n for n, flags in have.items() if flag in flags}, flag
    for flag in ("--smooth", "--region", "--scale", "--mute", "--pose", "--strength", "--absolute"):
        assert {"drive", "batch"} <= {n for n, flags in have.items() if flag in flags}, flag


def test_choices_are_the_library_s() -> None:
    assert tuple(s.value for s in Smooth) == SMOOTHING
    assert {r.value for r in Region} == set(REGIONS)
    assert tuple(r.value for r in Rest) == RESTS


def test_choices_are_listed_in_help() -> None:
    from tests.cli_utils import run

    code, text = run("drive", "--help")
    flat = re.sub(r"[\s│]", "", text)  # the help is wrapped in a box, its columns side by side
    assert code == 0 and "--smooth<" + "|".join(SMOOTHING) in flat and "--region<all|mouth|eyes|brow" in flat


def test_batch_passes_no_refine_to_its_jobs(tmp_path, monkeypatch) -> None:
    import reenact.batch

    seen = {}

    def plan_jobs(sources, drivers, outdir, options):
        seen["refine"] = options.render.refine
        return []

    monkeypatch.setattr(reenact.batch, "plan_jobs", plan_jobs)
    from tests.cli_utils import run

    run("batch", "samples/source.jpg", "samples/driver.mp4", "-o", str(tmp_path / "out"), "--no-refine")
    assert seen == {"refine": False}


def test_a_manifest_row_may_turn_the_refiner_off() -> None:
    from reenact.batch import JobOptions

    assert JobOptions().override("refine=false", "row 1").render.refine is False


def test_manifest_keys_are_the_options_fields() -> None:
    """A row may set every field of RetargetOptions, RenderOptions and JobOptions by its name (a new field is a new
    key, with nothing else to write), except what the batch decides for all (--force); docs/batch.md lists them."""
    from dataclasses import fields
    from pathlib import Path

    import pytest

    from reenact.batch_jobs import OVERRIDES, JobOptions
    from reenact.errors import InputError
    from reenact.options import RenderOptions
    from reenact.retarget import RetargetOptions

    names = {f.name for cls in (RetargetOptions, RenderOptions, JobOptions) for f in fields(cls)}
    assert set(OVERRIDES) == names - {"retarget", "render", "overwrite"}
    row = JobOptions().override("mouth=paint;face=auto;threshold=0.6;mute=AU45+AU12;scale=AU12:1.4;still=yes", "r")
    assert (row.render.mouth, row.face, row.render.threshold, row.still) == ("paint", None, 0.6, True)
    assert row.render.retarget.mute == ["AU45", "AU12"] and row.render.retarget.scale == {"AU12": 1.4}
    for bad in ("overwrite=true", "mouth=teeth", "seed=x"):
        with pytest.raises(InputError, match="row 7"):
            JobOptions().override(bad, "row 7")
    docs = (Path(__file__).resolve().parent.parent / "docs" / "batch.md").read_text()
    keys = docs[docs.index("\nKeys: "):].split("\n\n")[0]  # its paragraph
    listed = {word for span in re.findall(r"`([^`]*)`", keys) for word in span.split()}
    assert set(OVERRIDES) <= listed, f"docs/batch.md does not list {sorted(set(OVERRIDES) - listed)}"
