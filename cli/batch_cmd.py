"""`reenact batch`: every source x every driver (or a manifest's jobs), resumable, on a process pool or Ray.

Registered in app.py as `app.command("batch")(guarded(batch))`. The helpers of app.py are imported inside the
function, so importing this module never imports app.py (no import cycle either way).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from reenact_cli.app import CRF, IDENTITY, PRESET, THRESHOLD_HELP, span

TABLE_ROWS = 50  # larger batches list only their failures


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
    strength: float = typer.Option(1.0, "--strength", help=f"Multiply the driver's expression change ({span('strength')})."),
    absolute: bool = typer.Option(False, "--absolute", help="Copy the driver's values instead of its changes."),
    scale: list[str] = typer.Option([], "--scale", help=f"Per-channel gain ({span('scale')}), e.g. --scale AU12=1.4 (repeatable)."),
    mute: list[str] = typer.Option([], "--mute", help="Channels not to transfer, e.g. --mute AU45 (repeatable)."),
    region: str = typer.Option("all", "--region", help="all | mouth | eyes | brows."),
    pose: bool = typer.Option(False, "--pose", help="Also transfer small head rotations."),
    gaze: bool = typer.Option(True, "--gaze/--no-gaze", help="Transfer eye gaze."),
    face: Optional[int] = typer.Option(None, "--face", help="Which face of each photo, 0-based left to right."),
    max_size: int = typer.Option(1280, "--max-size", help=f"Scale photos down to this long side (px, {span('max_size')})."),
    smooth: str = typer.Option("offline", "--smooth", help="offline | online | none."),
    strict: bool = typer.Option(False, "--strict", help="Count a job as failed (exit code 3 in the report) when a "
                                "frame fails the identity check."),
    identity_model: str = IDENTITY,
    threshold: Optional[float] = typer.Option(None, "--threshold", help=THRESHOLD_HELP),
    check_every: int = typer.Option(1, "--check-every", help=f"Identity-check every N-th frame ({span('check_every')})."),
    batch_size: int = typer.Option(16, "--batch-size", help=f"Frames rendered per batch ({span('batch_size')})."),
    crf: int = CRF,
    preset: str = PRESET,
    text: Optional[str] = typer.Option(None, "--text", help="Audio drivers: transcript for forced alignment (one "
                                       "for all; per job: text= in --pairs)."),
    fps: str = typer.Option("25", "--fps", help="Audio drivers: output frame rate."),
    still: bool = typer.Option(False, "--still", help="Audio drivers: only the lips move."),
    seed: int = typer.Option(0, "--seed", help="Audio drivers: seed of the idle motion (blinks, head)."),
) -> None:
    """Render every source with every driver (or the jobs of a --pairs manifest), resumably.

    Outputs are OUTPUT/{source}__{driver}.mp4; existing ones are skipped (--force renders them again).
    Each driver is tracked once, and the track cached in OUTPUT/.reenact-cache/.
    A failing job is recorded and the others go on: exit 0 when all succeed or are skipped, 1 when some fail.
    """
    from reenact.batch import BatchConfig, JobOptions, plan_jobs, read_manifest, run_batch
    from reenact.errors import InputError
    from reenact.limits import check_device_spec, check_distinct
    from reenact.options import RenderOptions
    from reenact_cli.app import check_report_path, retarget_options, ui_of, write_report

    ui = ui_of(ctx)
    # The spelling now; whether the device exists once there is work (run_batch): a rerun with every output done
    # imports no torch and loads no model.
    check_device_spec(ctx.ensure_object(dict).get("device", "auto"))
    if output.exists() and not output.is_dir():
        raise InputError(f"--output {output} is a file; give a folder for the batch's videos.")
    if report is not None:
        check_distinct({"--pairs": pairs}, {"--report": report})
        check_report_path(report, overwrite=True)
    render = RenderOptions(retarget=retarget_options(strength, absolute, region, scale, mute, pose, gaze),
                           strict=strict, threshold=threshold, check_every=check_every, batch_size=batch_size, crf=crf,
                           preset=preset)
    options = JobOptions(render=render, smooth=smooth, max_size=max_size, face=face, text=text, fps=fps, still=still,
                         seed=seed)
    if pairs is not None:
        if sources or drivers:
            raise InputError("Give either SOURCES and DRIVERS or --pairs, not both.")
        jobs = read_manifest(pairs, output, options)
    elif sources and drivers:
        jobs = plan_jobs(sources, drivers, output, options)
    else:
        raise InputError("Give SOURCES and DRIVERS (folders, globs or files), or --pairs manifest.csv.")
    config = BatchConfig(device=ctx.ensure_object(dict).get("device", "auto"), identity=identity_model, force=force,
                         workers=workers, ray_address=ray)
    ui.debug(f"{len(jobs)} job(s) into {output}")
    with ui.progress("batch", len(jobs)) as advance:
        def on_event(event: dict[str, Any]) -> None:
            kind = event.pop("event")
            ui.event(kind, **event)
            if kind == "job":
                advance(1)
            elif kind == "track" and event.get("message"):  # a failed or a damaged driver
                ui.warn(event["message"])

        summary = run_batch(jobs, output, config, on_event)
    data = summary.to_dict()
    write_report(report, data, True)
    ui.event("done", **data["summary"])
    print_summary(ui, summary)
    if summary.exit_code:
        raise typer.Exit(summary.exit_code)


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
