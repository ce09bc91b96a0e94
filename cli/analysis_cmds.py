"""The analysis commands: `extract` (tracks, landmarks), `train` and `identity`. Registered by app.py, which imports
this module; this module imports base.py and options.py, never app.py."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from reenact_cli.base import check_report_path, device_of, not_built, ui_of, write_report
from reenact_cli.options import (
    Face,
    Identity,
    OptionalFps,
    Output,
    Overwrite,
    Report,
    Seed,
    Smooth,
    SmoothOption,
    Still,
    Text,
    Threshold,
    parse_fps,
)

if TYPE_CHECKING:
    from reenact.specs import TrainSpec


# long: a Typer command takes one parameter per CLI option
def extract(
    ctx: typer.Context,
    media: Path = typer.Argument(..., help="Video or photo to analyse."),
    output: Output = None,
    overwrite: Overwrite = False,
    fmt: Optional[str] = typer.Option(None, "--format", help="csv | json | openface | livelink (default: from the suffix)."),
    landmarks: bool = typer.Option(False, "--landmarks", help="Write JSON with per-frame 478-point landmarks, box, pose, score and parameters."),
    raw: bool = typer.Option(False, "--raw", help="No smoothing and no neutral calibration."),
    smooth: SmoothOption = Smooth.offline,
    plot: Optional[Path] = typer.Option(None, "--plot", help="Also write a PNG plot of the main channels (with the track: both or neither)."),
    face: Face = None,
    fps: OptionalFps = None,
    text: Text = None,
    still: Still = False,
    seed: Seed = 0,
) -> None:
    """Write a per-frame track of expression parameters (AU / ARKit / pose / gaze), landmarks, or from speech audio
    the viseme and mouth track with `speak`'s idle life (`render --pose` of it draws what `speak` draws)."""
    from reenact.specs import ExtractSpec

    output = output or Path(f"{media.stem}.{'json' if landmarks else 'csv'}")
    spec = ExtractSpec(media, output, fmt=fmt, landmarks=landmarks, raw=raw, smooth=smooth.value, overwrite=overwrite,
                       face=face, fps=parse_fps(fps) if fps else None, text=text, plot=plot, still=still, seed=seed)
    from reenact.extract import extract as run_extract  # after the checks: torch loads here
    from reenact.pipeline import Models

    ui = ui_of(ctx)
    result, track = run_extract(spec, Models(device_of(ctx)), progress=ui.progress)
    info = result.as_dict()
    ui.event("done", **info)
    speed = f", {result.frames / result.seconds:.1f} frames/s" if result.seconds > 0 else ""
    ui.info(f"wrote {output}: {result.frames} frame(s), {result.missing_frames} without a face{speed}.")
    damage = track.meta.get("damage")
    if damage:  # the track holds the frames that decode (the same policy as drive's)
        ui.warn(f"{damage['message']}: the track has the {damage['frames_decoded']} of {damage['frames_expected']} "
                f"frames that decode.")


def train(
    ctx: typer.Context,
    what: str = typer.Argument(..., help="estimator | refiner (audio-head: see the README's Development section)"),
    data: list[Path] = typer.Option([], "--data", help="Your photos/videos or folders of them (repeatable)."),
    out: Path = typer.Option(Path("trained"), "--out", help="Folder for the new weights (+ contract)."),
    steps: Optional[int] = typer.Option(None, "--steps", min=1, help="Training steps (default: the model's own)."),
    workdir: Optional[Path] = typer.Option(None, "--workdir", help="Checkpoints, metrics, data (default .cache/WHAT); training resumes from it."),
    init: Optional[Path] = typer.Option(None, "--init", help="refiner: generator weights to start from (default: a fresh generator)."),
    check: list[Path] = typer.Option([], "--check", help="refiner: photos of people outside --data to check it on (default: the sample photo)."),
) -> None:
    """Train one of reenact's models; it resumes from the checkpoints in --workdir.

    `estimator`: the mesh -> expression head, on synthetic faces whose identities are learned from --data photos/videos.
    `refiner`: the GAN refiner on same-person frame pairs of your talking-face --data videos (or pair shards made
    before, *.npz); the last 15 % of every video is held out and scored. The weights go to --out: copy them into
    weights/ to use them (a refiner is used only when it beats the warp on the held-out frames and keeps the
    --check photos of other people sharp and their skin unchanged)."""
    if what not in ("estimator", "refiner"):
        not_built(f"train {what}",
                  "run `python -m reenact.train.audio_head` with the data of tools/make_speech_data.py")
    from reenact.specs import TrainSpec

    spec = TrainSpec(what, tuple(data), out, steps, workdir, init, tuple(check))
    if what == "estimator":
        _train_estimator(ctx, spec)
    else:
        _train_refiner(ctx, spec)


def _train_estimator(ctx: typer.Context, spec: "TrainSpec") -> None:
    from reenact.train.jobs import train_estimator_job

    ui = ui_of(ctx)
    path, metrics = train_estimator_job(spec, device_of(ctx) if spec.files() else None, log=ui.info)
    ui.event("done", output=str(path), heldout_mae=metrics)
    ui.info(f"wrote {path} (held-out synthetic MAE {metrics.get('ARKit52 all', float('nan')):.4f}); copy "
            f"{spec.out}/estimator.* into weights/ and run `python tools/hash_weights.py estimator` to use it.")


def _train_refiner(ctx: typer.Context, spec: "TrainSpec") -> None:
    from reenact.train.jobs import train_refiner_job

    ui = ui_of(ctx)
    if spec.videos():
        device_of(ctx)  # checks --device; pair building then runs with the command's thread policy
    result = train_refiner_job(spec, ctx.ensure_object(dict).get("device", "auto"), log=ui.info, debug=ui.debug)
    extra = result.extra
    ui.event("done", output=str(result.path), held_out=extra.get("held_out_l1", {}), unseen=extra.get("unseen", {}))
    ui.info(f"wrote {result.path}: " + ("it passes the renderer's checks; copy refiner.* into weights/ and run "
                                        "`python tools/hash_weights.py refiner` to use it." if result.reason is None
                                        else f"the renderer would not use it: {result.reason}. Train longer (it "
                                        "resumes)."))


def identity(
    ctx: typer.Context,
    a: Path = typer.Argument(..., help="Reference photo."),
    b: Path = typer.Argument(..., help="Photo or video to compare with A."),
    threshold: Threshold = None,
    identity_model: Identity = "default",
    report: Report = None,
    overwrite: Overwrite = False,
) -> None:
    """Say whether B shows the same person as A: prints the similarity, exits 0 when the same, 3 when not."""
    from reenact.errors import EXIT_IDENTITY
    from reenact.limits import check_distinct
    from reenact.specs import IdentitySpec

    spec = IdentitySpec(a, b, threshold)
    check_distinct({"A": a, "B": b}, {"--report": report})
    check_report_path(report, overwrite)
    from reenact.pipeline import Models  # after the checks: torch and the models load here
    from reenact.verify import verify

    ui = ui_of(ctx)
    result = verify(spec, Models(device_of(ctx), identity_model), progress=ui.progress)
    summary = result.summary()
    write_report(report, {"a": str(a), "b": str(b), **summary, "similarities": result.similarities}, overwrite)
    ui.event("done", **summary, same=result.ok)
    verdict = "same person" if result.ok else "NOT the same person"
    if summary["n"] == 1:
        ui.out.print(f"{verdict}: similarity {summary['mean']:.3f} (threshold {summary['threshold']:.3f})")
    else:
        ui.out.print(f"{verdict}: {summary['n']} frames, similarity mean {summary['mean']:.3f}, min {summary['min']:.3f}, "
                     f"{summary['n_below']} below the threshold {summary['threshold']:.3f}")
    if not result.ok:
        raise typer.Exit(EXIT_IDENTITY)
