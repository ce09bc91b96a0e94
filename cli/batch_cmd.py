"""`reenact batch`: every source x every driver (or a manifest's jobs), resumable, on a process pool or Ray.

Registered in app.py as `app.command("batch")(guarded(batch))`; this module imports base.py and options.py, never
app.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from reenact_cli.base import check_report_path, ui_of, write_report
from reenact_cli.options import (
    Absolute,
    BatchSize,
    CheckEvery,
    Crf,
    Face,
    Fps,
    Gaze,
    Identity,
    MaxSize,
    Mute,
    Pose,
    Preset,
    Refine,
    Region,
    RegionOption,
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
    retarget_options,
)

from reenact.limits import check_distinct

TABLE_ROWS = 50  # larger batches list only their failures


# long: a Typer command takes one parameter per CLI option
def batch(
    ctx: typer.Context,
    sources: Optional[str] = typer.Argument(None, metavar="SOURCES", help="Folder, glob or file of source photos."),
    drivers: Optional[str] = typer.Argument(None, metavar="DRIVERS",
                                            help="Folder, glob or file of driving videos or speech audio."),
    output: Path = typer.Option(..., "--output", "-o", help="Output folder (created if missing)."),
    pairs: Optional[Path] = typer.Option(None, "--pairs", help="CSV manifest: source,driver[,output][,options] per "
                                         "row, options as key=value;key=value. Replaces SOURCES and DRIVERS."),
    force: bool = typer.Option(False, "--force", help="Render again jobs whose output already exists."),
    report: Optional[Path] = typer.Option(None, "--report", help="Write a JSON report of every job (replaced)."),
    workers: Optional[int] = typer.Option(None, "--workers", min=1, help="Worker processes (default: cores/2 on "
                                          "CPU, 1 on a GPU)."),
    ray: Optional[str] = typer.Option(None, "--ray", help="Run the jobs as Ray tasks: auto (running cluster), "
                                      "local (start one here) or an address such as ray://host:10001."),
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
    threshold: Threshold = None,
    check_every: CheckEvery = 1,
    batch_size: BatchSize = 16,
    crf: Crf = 18,
    preset: Preset = "veryfast",
    refine: Refine = True,
    text: Text = None,
    fps: Fps = "25",
    still: Still = False,
    seed: Seed = 0,
) -> None:
    """Render every source with every driver (or the jobs of a --pairs manifest), resumably.

    Outputs are OUTPUT/{source}__{driver}.mp4; existing ones are skipped (--force renders them again).
    Each driver is tracked once, and the track cached in OUTPUT/.reenact-cache/.
    A failing job is recorded and the others go on: exit 0 when all succeed or are skipped, 1 when some fail.
    """
    from reenact.batch import BatchConfig, BatchSpec, JobOptions, plan
    from reenact.limits import check_device_spec
    from reenact.options import RenderOptions

    ui = ui_of(ctx)
    # The spelling now; whether the device exists once there is work (run_batch): a rerun with every output done
    # imports no torch and loads no model.
    device = check_device_spec(ctx.ensure_object(dict).get("device", "auto"))
    render = RenderOptions(retarget=retarget_options(strength, absolute, region, scale, mute, pose, gaze, rest),
                           strict=strict, threshold=threshold, check_every=check_every, batch_size=batch_size, crf=crf,
                           preset=preset, refine=refine)
    options = JobOptions(render=render, smooth=smooth.value, max_size=max_size, face=face, text=text, fps=fps,
                         still=still, seed=seed)
    config = BatchConfig(device=device, identity=identity_model, force=force, workers=workers, ray_address=ray)
    spec = BatchSpec(output, sources, drivers, pairs, options, config)
    if report is not None:
        check_distinct({"--pairs": pairs}, {"--report": report})
        check_report_path(report, overwrite=True)
    summary = run(ui, plan(spec), output, config)
    data = summary.to_dict()
    write_report(report, data, True)
    ui.event("done", **data["summary"])
    print_summary(ui, summary)
    if summary.exit_code:
        raise typer.Exit(summary.exit_code)


def run(ui: Any, jobs: list, output: Path, config: Any) -> Any:
    """Run the batch with a progress bar, each event on the UI and each failed driver as a warning."""
    from reenact.batch import run_batch

    ui.debug(f"{len(jobs)} job(s) into {output}")
    with ui.progress("batch", len(jobs)) as advance:
        def on_event(event: dict[str, Any]) -> None:
            kind = event.pop("event")
            ui.event(kind, **event)
            if kind == "job":
                advance(1)
            elif kind == "track" and event.get("message"):  # a failed or a damaged driver
                ui.warn(event["message"])

        return run_batch(jobs, output, config, on_event)


def print_summary(ui: Any, summary: Any) -> None:
    """A table of the jobs (only the failed ones past TABLE_ROWS jobs) and one line of counts, on stdout."""
    from rich.table import Table

    rows = summary.jobs if len(summary.jobs) <= TABLE_ROWS else [j for j in summary.jobs if j.status == "failed"]
    if rows:
        style = {"ok": "green", "skipped": "dim", "failed": "red"}
        table = Table(title_justify="left", show_lines=False)
        for column in ("status", "source", "driver", "output", "s", "note"):
            table.add_column(column, overflow="fold")
        for j in rows:
            note = "" if j.status == "skipped" else j.message  # a failure, or a damaged driver's note
            if j.status == "ok" and j.identity and not note:
                note = f"identity min {j.identity.get('min')}"
            table.add_row(f"[{style[j.status]}]{j.status}[/]", Path(j.source).name, Path(j.driver).name,
                          Path(j.output).name, f"{j.seconds:.1f}", note)
        ui.out.print(table)
    ui.out.print(f"{summary.ok} ok, {summary.skipped} skipped, {summary.failed} failed in {summary.seconds:.1f} s "
                 f"({summary.backend}, {summary.workers} worker(s); driver tracks: {summary.tracks_extracted} "
                 f"extracted, {summary.tracks_cached} from the cache).", highlight=False)
