"""Batch rendering: 3 sources (one corrupt) x 2 tiny drivers through the CLI, resume, manifest, force, Ray, pool.

The inputs are made here: two photos from samples/source.jpg (a copy and a mirrored crop), a corrupt "photo", and
two 6-frame cuts of samples/driver.mp4. One module-scoped first run is shared by the tests that build on it.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import typer
from PIL import Image, ImageOps
from rich.console import Console
from typer.testing import CliRunner

from reenact.batch import BatchConfig, JobOptions, expand, plan_jobs, plan_workers, read_manifest, run_batch
from reenact.errors import InputError
from reenact.pipeline import RenderOptions
from reenact.retarget import RetargetOptions
from reenact.io.video import probe, read_frames
from reenact.io.writer import VideoWriter
from reenact_cli.ui import UI
from tests.media_utils import make_audio

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
FRAMES = 6
runner = CliRunner()


def batch_app() -> typer.Typer:
    """The real app once `batch` is registered there; until then the same callback plus this command."""
    from reenact_cli import app as app_module
    from reenact_cli.batch_cmd import batch

    for command in app_module.app.registered_commands:
        if getattr(command.callback, "__wrapped__", None) is batch:
            return app_module.app
    app = typer.Typer()
    app.callback()(app_module.main_options)
    app.command("batch")(app_module.guarded(batch))
    return app


def cli(*args: str) -> tuple[int, str, str]:
    """(exit code, stdout table, stderr text incl. JSON lines)."""
    err, out = io.StringIO(), io.StringIO()
    ui = UI(err=Console(file=err, width=300), out=Console(file=out, width=300))
    result = runner.invoke(batch_app(), ["--device", "cpu", *args], obj={"ui": ui})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, out.getvalue() + result.stdout, err.getvalue() + result.stderr


def cut(src: Path, dst: Path, start: int, n: int) -> Path:
    with read_frames(src) as frames, VideoWriter(dst, frames.fps, crf=23, preset="ultrafast") as writer:
        for f in frames:
            if start <= f.index < start + n:
                writer.write(f.rgb)
            elif f.index >= start + n:
                break
    return dst


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("batch")
    (root / "sources").mkdir()
    (root / "drivers").mkdir()
    photo = Image.open(SAMPLES / "source.jpg").convert("RGB")
    photo.save(root / "sources" / "anna.jpg", quality=92)
    ImageOps.mirror(photo).crop((16, 8, 496, 500)).save(root / "sources" / "bert.png")
    (root / "sources" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8)  # JPEG magic, no image
    cut(SAMPLES / "driver.mp4", root / "drivers" / "talk.mp4", 0, FRAMES)
    cut(SAMPLES / "driver.mp4", root / "drivers" / "smile.mp4", 60, FRAMES)
    return root


@pytest.fixture(scope="module")
def first_run(inputs: Path) -> dict:
    out = inputs / "out"
    code, table, err = cli("--json-progress", "batch", str(inputs / "sources"), str(inputs / "drivers"), "-o", str(out),
                           "--report", str(inputs / "first.json"))
    mtimes = {p.name: p.stat().st_mtime_ns for p in out.glob("*.mp4")}
    return {"code": code, "table": table, "err": err, "out": out, "mtimes": mtimes,
            "report": json.loads((inputs / "first.json").read_text())}


def test_first_run_renders_four_and_records_two_failures(first_run: dict) -> None:
    assert first_run["code"] == 1, first_run["err"]
    names = sorted(first_run["mtimes"])
    assert names == ["anna__smile.mp4", "anna__talk.mp4", "bert__smile.mp4", "bert__talk.mp4"]
    for name in names:
        assert probe(first_run["out"] / name).n_frames == FRAMES
    summary = first_run["report"]["summary"]
    assert (summary["ok"], summary["skipped"], summary["failed"], summary["exit_code"]) == (4, 0, 2, 1)
    assert summary["tracks_extracted"] == 2  # one per driver, shared by all three sources
    failed = [j for j in first_run["report"]["jobs"] if j["status"] == "failed"]
    assert {Path(j["source"]).name for j in failed} == {"broken.jpg"}
    assert all(j["exit_code"] == 2 and "broken.jpg" in j["message"] for j in failed)
    ok = [j for j in first_run["report"]["jobs"] if j["status"] == "ok"]
    assert all(j["frames"] == FRAMES and j["seconds"] > 0 and j["identity"]["n"] == FRAMES for j in ok)
    assert sum(j["source_cached"] for j in ok) == 2  # each photo analysed once, reused for its second driver
    events = [json.loads(line) for line in first_run["err"].splitlines() if line.startswith("{")]
    jobs = [e for e in events if e["event"] == "job"]
    assert len(jobs) == 6 and jobs[-1]["done"] == 6 and jobs[-1]["total"] == 6
    assert sum(e["event"] == "track" for e in events) == 2
    assert "broken.jpg" in first_run["table"] and "4 ok, 0 skipped, 2 failed" in first_run["table"]
    assert not list(first_run["out"].glob(".*partial*"))
    assert len(list((first_run["out"] / ".reenact-cache" / "tracks").glob("*.json"))) == 2


def test_second_run_does_no_rendering_work(inputs: Path, first_run: dict) -> None:
    code, table, _ = cli("batch", str(inputs / "sources"), str(inputs / "drivers"), "-o", str(first_run["out"]),
                         "--report", str(inputs / "second.json"))
    assert code == 1  # the corrupt photo still fails; nothing else is attempted
    summary = json.loads((inputs / "second.json").read_text())["summary"]
    assert (summary["ok"], summary["skipped"], summary["failed"]) == (0, 4, 2)
    assert summary["tracks_extracted"] == 0 and summary["tracks_cached"] == 2
    assert {p.name: p.stat().st_mtime_ns for p in first_run["out"].glob("*.mp4")} == first_run["mtimes"]
    assert "0 ok, 4 skipped, 2 failed" in table


def test_manifest_with_options_and_force(inputs: Path, first_run: dict) -> None:
    manifest = inputs / "pairs.csv"
    manifest.write_text("source,driver,output,options\n"
                        "sources/anna.jpg,drivers/talk.mp4,mouth/anna_talk.mp4,strength=0.5;region=mouth;crf=28\n")
    out = first_run["out"]
    code, table, err = cli("batch", "--pairs", str(manifest), "-o", str(out), "--report", str(inputs / "m.json"))
    assert code == 0, err + table
    summary = json.loads((inputs / "m.json").read_text())["summary"]
    assert (summary["ok"], summary["tracks_extracted"], summary["tracks_cached"]) == (1, 0, 1)  # cached track reused
    video = out / "mouth" / "anna_talk.mp4"
    assert probe(video).n_frames == FRAMES
    before = video.stat().st_mtime_ns
    code, _, _ = cli("batch", "--pairs", str(manifest), "-o", str(out))
    assert code == 0 and video.stat().st_mtime_ns == before  # resumed: skipped
    code, _, _ = cli("batch", "--pairs", str(manifest), "-o", str(out), "--force")
    assert code == 0 and video.stat().st_mtime_ns != before  # --force renders it again


def test_interrupted_batch_leaves_no_partial_file(inputs: Path, first_run: dict,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from reenact.io import writer

    out = first_run["out"]
    jobs = plan_jobs(str(inputs / "sources" / "anna.jpg"), str(inputs / "drivers" / "talk.mp4"), out)
    before = jobs[0].output.stat().st_mtime_ns
    real_write = writer.VideoWriter.write

    def write_then_stop(self, rgb):  # Ctrl-C halfway through the video
        if self.frames_written == FRAMES // 2:
            raise KeyboardInterrupt
        real_write(self, rgb)

    monkeypatch.setattr(writer.VideoWriter, "write", write_then_stop)
    with pytest.raises(KeyboardInterrupt):
        run_batch(jobs, out, BatchConfig(device="cpu", force=True))
    assert not [p for p in out.rglob("*") if "partial" in p.name]
    assert jobs[0].output.stat().st_mtime_ns == before  # the finished video of the first run is untouched


def test_ray_gives_the_same_outputs(inputs: Path, first_run: dict) -> None:
    pytest.importorskip("ray")
    out = inputs / "ray"
    # one driver's track comes from the cache, the other is extracted by a Ray task
    cache = out / ".reenact-cache" / "tracks"
    cache.mkdir(parents=True)
    for p in (first_run["out"] / ".reenact-cache" / "tracks").glob("talk.*"):  # the track and its mouth points
        shutil.copy(p, cache / p.name)
    code, table, err = cli("batch", str(inputs / "sources"), str(inputs / "drivers"), "-o", str(out), "--ray", "local",
                           "--report", str(inputs / "ray.json"))
    assert code == 1, err + table
    summary = json.loads((inputs / "ray.json").read_text())["summary"]
    assert (summary["ok"], summary["failed"], summary["backend"]) == (4, 2, "ray")
    assert (summary["tracks_extracted"], summary["tracks_cached"]) == (1, 1)
    failed = [j for j in json.loads((inputs / "ray.json").read_text())["jobs"] if j["status"] == "failed"]
    assert all(str(inputs / "sources" / "broken.jpg") in j["message"] for j in failed)  # names the user's file
    assert sorted(p.name for p in out.glob("*.mp4")) == sorted(first_run["mtimes"])
    for name in first_run["mtimes"]:
        a = [f.rgb.astype(np.int16) for f in read_frames(first_run["out"] / name)]
        b = [f.rgb.astype(np.int16) for f in read_frames(out / name)]
        assert len(a) == len(b) == FRAMES
        assert max(float(np.abs(x - y).mean()) for x, y in zip(a, b)) < 1.0  # thread counts differ: ~0.1 levels


def test_audio_driver_goes_to_speak(inputs: Path) -> None:
    audio = make_audio(inputs / "hello.wav", seconds=0.5)
    jobs = plan_jobs(str(inputs / "sources" / "anna.jpg"), str(audio), inputs / "speech",
                     JobOptions(fps="20", still=True))
    assert [j.kind for j in jobs] == ["audio"]
    summary = run_batch(jobs, inputs / "speech", BatchConfig(device="cpu"))
    assert summary.ok == 1, summary.jobs[0].message
    assert summary.tracks_extracted == summary.tracks_cached == 0  # speech needs no driver track
    info = probe(jobs[0].output)
    assert info.fps == 20 and info.n_frames == 10 and info.has_audio


def test_process_pool_records_failures(tmp_path: Path) -> None:
    """Two spawn workers. The driver's track is already cached and the photos are corrupt, so each job fails in a
    worker before any model loads: quick, yet it goes through pickling, the worker and the cache lookup."""
    from reenact.batch import mouths_path, track_key, track_path
    from reenact.params import Track

    for name in ("x.jpg", "y.jpg"):
        (tmp_path / name).write_bytes(b"not an image at all" * 20)
    driver = tmp_path / "v.mp4"
    driver.write_bytes(b"never decoded")
    out = tmp_path / "out"
    cache = track_path(out, driver, track_key(driver, "offline"))
    cache.parent.mkdir(parents=True)
    Track(np.zeros(1), np.zeros((1, 1)), ["jawOpen"], {"fps": "25"}).write(cache)
    np.save(mouths_path(cache), np.zeros((1, 40, 2), np.float32))  # its driver's mouth points
    jobs = plan_jobs(str(tmp_path / "*.jpg"), str(driver), out)
    summary = run_batch(jobs, out, BatchConfig(device="cpu", workers=2))
    assert (summary.backend, summary.workers, summary.failed, summary.exit_code) == ("pool", 2, 2, 1)
    assert (summary.tracks_cached, summary.tracks_extracted) == (1, 0)
    assert [Path(j.source).name in j.message for j in summary.jobs] == [True, True]
    assert all(j.exit_code == 2 for j in summary.jobs)


def test_a_track_cached_by_other_code_is_not_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """How a driver is read changes between commits of one version (the mouth's rest, the blink reading): the cache
    key covers reenact's source, not only its version."""
    import reenact.batch as batch

    driver = tmp_path / "v.mp4"
    driver.write_bytes(b"a driver")
    key = batch.track_key(driver, "offline")
    assert batch.track_key(driver, "offline") == key
    monkeypatch.setattr(batch, "code_sha256", lambda: "0" * 64)
    assert batch.track_key(driver, "offline") != key


# ---------------------------------------------------------------- planning (no models)
def test_colliding_stems_get_a_short_hash(tmp_path: Path) -> None:
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "face.jpg").write_bytes(b"x")
    (tmp_path / "clip.mp4").write_bytes(b"x")
    jobs = plan_jobs(str(tmp_path / "*" / "face.jpg"), str(tmp_path / "clip.mp4"), tmp_path / "out")
    names = [j.output.name for j in jobs]
    assert len(set(names)) == 2 and all(n.startswith("face-") and n.endswith("__clip.mp4") for n in names)
    assert names == [j.output.name for j in plan_jobs(str(tmp_path / "*" / "face.jpg"), str(tmp_path / "clip.mp4"),
                                                     tmp_path / "out")]  # predictable


def test_joined_names_that_collide_are_told_apart(tmp_path: Path) -> None:
    for name in ("a__b.jpg", "a.jpg"):
        (tmp_path / name).write_bytes(b"x")
    for name in ("c.mp4", "b__c.mp4"):
        (tmp_path / name).write_bytes(b"x")
    jobs = plan_jobs(str(tmp_path / "*.jpg"), str(tmp_path / "*.mp4"), tmp_path / "out")
    assert len({j.output.name for j in jobs}) == 4


def test_manifest_parsing_and_errors(tmp_path: Path) -> None:
    for name in ("p.jpg", "v.mp4"):
        (tmp_path / name).write_bytes(b"x")
    good = tmp_path / "m.csv"
    good.write_text("# comment\np.jpg,v.mp4\n"
                    "p.jpg,v.mp4,second.mov,\"scale=AU12=1.4,jawOpen:0.5;mute=AU45;pose=yes;rest=first\"\n")
    jobs = read_manifest(good, tmp_path / "out", JobOptions(RenderOptions(RetargetOptions(strength=0.7))))
    assert jobs[0].source == tmp_path / "p.jpg" and jobs[0].output == tmp_path / "out" / "p__v.mp4"
    assert jobs[1].output.name == "second.mov"
    r = jobs[1].options.render.retarget
    assert r.scale == {"AU12": 1.4, "jawOpen": 0.5} and r.mute == ["AU45"] and r.pose and r.strength == 0.7
    assert r.rest == "first" and jobs[0].options.render.retarget.rest == "clip"
    for text, words in [("p.jpg,v.mp4,,colour=red\n", "colour"), ("p.jpg,v.mp4,,region=nose\n", "region"),
                        ("p.jpg,v.mp4,,rest=last\n", "rest"),
                        ("p.jpg,v.wav,,fps=0\n", "fps"),
                        ("p.jpg,v.mp4,o.mp4\np.jpg,v.mp4,o.mp4\n", "Two jobs"), ("p.jpg\n", "needs a source"),
                        ("p.jpg,v.mp4,o.gif\n", ".mp4"), ("source,driver\n", "no jobs")]:
        bad = tmp_path / "bad.csv"
        bad.write_text(text)
        with pytest.raises(InputError, match=words):
            read_manifest(bad, tmp_path / "out")


def test_expand_and_worker_policy(tmp_path: Path) -> None:
    (tmp_path / "a.jpg").write_bytes(b"x")
    (tmp_path / ".a.partial-1.jpg").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("x")
    assert expand(tmp_path, {".jpg"}, "photos") == [tmp_path / "a.jpg"]
    with pytest.raises(InputError, match="No file matches"):
        expand(str(tmp_path / "*.png"), {".png"}, "photos")
    with pytest.raises(InputError, match="not found"):
        expand(tmp_path / "missing", {".jpg"}, "photos")
    workers, threads = plan_workers(10, "cpu")
    assert workers >= 1 and threads >= 1 and plan_workers(1, "cpu")[0] == 1
    assert plan_workers(10, "cpu", requested=3)[0] == 3


def test_cli_usage_errors(tmp_path: Path) -> None:
    code, _, err = cli("batch", "-o", str(tmp_path / "out"))
    assert code == 2 and "SOURCES and DRIVERS" in err
    (tmp_path / "file").write_text("x")
    code, _, err = cli("batch", str(tmp_path), str(tmp_path), "-o", str(tmp_path / "file"))
    assert code == 2 and "is a file" in err


def test_ray_not_installed_is_a_clear_input_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    (tmp_path / "p.jpg").write_bytes(b"x")
    audio = make_audio(tmp_path / "v.wav", seconds=0.1)
    jobs = plan_jobs(str(tmp_path / "p.jpg"), str(audio), tmp_path / "out")
    with pytest.raises(InputError, match=r"reenact\[ray\]"):
        run_batch(jobs, tmp_path / "out", BatchConfig(device="cpu", ray_address="local"))


def test_manifest_render_options_are_checked_per_row(tmp_path: Path) -> None:
    manifest = tmp_path / "jobs.csv"
    manifest.write_text("source,driver,output,options\nsamples/source.jpg,samples/driver.mp4,a.mp4,preset=slow;crf=20\n"
                        "samples/source.jpg,samples/driver.mp4,b.mp4,preset=fastest\n")
    with pytest.raises(InputError, match=r"job 2: --preset 'fastest'"):
        read_manifest(manifest, tmp_path / "out")
    manifest.write_text("source,driver,output,options\nsamples/source.jpg,samples/driver.mp4,a.mp4,preset=slow;crf=20\n")
    job = read_manifest(manifest, tmp_path / "out")[0]
    assert (job.options.render.preset, job.options.render.crf) == ("slow", 20)


def test_a_batch_drive_job_renders_what_drive_renders(inputs: Path, first_run: dict, tmp_path: Path) -> None:
    """The batch's cached track carries its driver's mouth points, so its jobs show the driver's own mouth interior
    (--mouth driver, the default) as `reenact drive` does, not the library's."""
    from tests.cli_utils import run

    out = tmp_path / "drive.mp4"
    code, err = run("drive", str(inputs / "sources" / "anna.jpg"), str(inputs / "drivers" / "smile.mp4"), "-o", str(out))
    assert code == 0, err
    a = [f.rgb.astype(np.int16) for f in read_frames(out)]
    b = [f.rgb.astype(np.int16) for f in read_frames(first_run["out"] / "anna__smile.mp4")]
    assert len(a) == len(b) == FRAMES
    # the mouth is a small part of the frame: compare its worst pixels, where another interior differs by tens of levels
    assert max(float(np.percentile(np.abs(x - y), 99.9)) for x, y in zip(a, b)) < 12
    assert list((first_run["out"] / ".reenact-cache" / "tracks").glob("smile.*.mouths.npy"))


def test_drive_jobs_get_the_cached_driver_mouths(inputs: Path, first_run: dict) -> None:
    from reenact.batch_exec import driver_mouths

    track = next((first_run["out"] / ".reenact-cache" / "tracks").glob("talk.*.json"))
    job = plan_jobs(str(inputs / "sources" / "anna.jpg"), str(inputs / "drivers" / "talk.mp4"), inputs / "x")[0]
    mouths = driver_mouths(job, track, "driver")
    assert mouths is not None and len(mouths.points) == FRAMES and mouths.points[0].shape == (40, 2)
    assert np.isfinite(np.stack(mouths.points)).all()  # every frame of the sample driver has a face
    assert driver_mouths(job, track, "library") is None and driver_mouths(job, None, "driver") is None
