"""Signals (GitHub issue 20): SIGTERM, SIGHUP and SIGINT while drive, speak, render or batch write their outputs
remove every hidden temporary and exit 143, 129 and 130; a batch rerun removes the temporaries a killed run left.

The signal tests start `reenact` as a real process (this checkout's CLI, tests/checkout.py), wait until its output's
hidden `.NAME.partial-*` file exists, that is mid-render, send the signal, and check the exit code, the one error
line and that the folder holds exactly what it held before.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.checkout import CLI_MAIN, ROOT
from tests.media_utils import make_audio

SOURCE = ROOT / "samples" / "source.jpg"
DRIVER = ROOT / "samples" / "driver.mp4"
SIGNALS = [(signal.SIGTERM, 143), (signal.SIGHUP, 129), (signal.SIGINT, 130)]
SIGNAL_IDS = ["SIGTERM", "SIGHUP", "SIGINT"]


def start(folder: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "REENACT_THREADS": "1"}
    # SIGINT as a terminal would deliver it: a test run started in the background (`make test &`) inherits SIGINT
    # ignored, and Python then leaves it ignored, so Ctrl-C would not reach the command at all
    return subprocess.Popen([sys.executable, "-c", CLI_MAIN, "--device", "cpu", *args], cwd=folder, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def partials(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if ".partial-" in p.name]


def files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def interrupt_mid_render(folder: Path, proc: subprocess.Popen[str], sig: int, timeout: float = 180) -> str:
    """Wait for a hidden temporary under `folder` (the render has started), send `sig`; return stderr."""
    deadline = time.monotonic() + timeout
    while not partials(folder):
        if proc.poll() is not None:
            pytest.fail(f"the command ended ({proc.returncode}) before it wrote anything:\n{proc.stderr.read()}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("no temporary output appeared")
        time.sleep(0.01)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    return err


def assert_clean_exit(err: str, code: int, returncode: int) -> None:
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert returncode == code, err
    assert len(lines) == 1 and "no partial output was kept" in lines[0], err
    assert "Traceback" not in err, err


@pytest.fixture()
def long_track(tmp_path: Path) -> Path:
    """A 60 s keyframe track: 1500 frames at 25 fps, long enough to be caught mid-render."""
    track = tmp_path / "track.csv"
    track.write_text("time,jawOpen,eyeBlinkLeft\n0,0,0\n30,0.6,0.2\n60,0,0\n")
    return track


@pytest.mark.parametrize("sig, code", SIGNALS, ids=SIGNAL_IDS)
def test_render_interrupted_leaves_nothing(tmp_path: Path, long_track: Path, sig: int, code: int) -> None:
    before = files(tmp_path)
    proc = start(tmp_path, "render", str(SOURCE), long_track.name, "-o", "out.mp4", "--report", "run.json")
    err = interrupt_mid_render(tmp_path, proc, sig)
    assert_clean_exit(err, code, proc.returncode)
    assert files(tmp_path) == before


def test_drive_with_preview_interrupted_leaves_nothing(tmp_path: Path) -> None:
    proc = start(tmp_path, "drive", str(SOURCE), str(DRIVER), "-o", "out.mp4", "--preview", "side.mp4",
                 "--mouth", "paint", "--no-refine")
    err = interrupt_mid_render(tmp_path, proc, signal.SIGHUP)  # the terminal closed
    assert_clean_exit(err, 129, proc.returncode)
    assert files(tmp_path) == set()


def test_speak_interrupted_leaves_nothing(tmp_path: Path) -> None:
    audio = make_audio(tmp_path / "speech.wav", seconds=40.0)
    proc = start(tmp_path, "speak", str(SOURCE), audio.name, "-o", "out.mp4", "--mouth", "paint")
    err = interrupt_mid_render(tmp_path, proc, signal.SIGTERM)
    assert_clean_exit(err, 143, proc.returncode)
    assert files(tmp_path) == {"speech.wav"}


def test_batch_interrupted_leaves_no_temporary(tmp_path: Path, long_track: Path) -> None:
    out = tmp_path / "out"
    proc = start(tmp_path, "batch", str(SOURCE), str(DRIVER), "-o", "out", "--workers", "1")
    err = interrupt_mid_render(out, proc, signal.SIGTERM)
    assert_clean_exit(err, 143, proc.returncode)
    assert partials(tmp_path) == [] and not (out / "source__driver.mp4").exists()


def test_batch_pool_interrupted_stops_its_workers(tmp_path: Path) -> None:
    """Two worker processes: SIGTERM to the batch stops them (they would go on writing) and removes what they wrote."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("anna.jpg", "bert.jpg"):
        shutil.copy(SOURCE, photos / name)
    proc = start(tmp_path, "batch", "photos", str(DRIVER), "-o", "out", "--workers", "2")
    err = interrupt_mid_render(tmp_path / "out", proc, signal.SIGTERM, timeout=300)
    assert_clean_exit(err, 143, proc.returncode)
    time.sleep(2)  # a worker left running would write on
    assert partials(tmp_path) == [] and not list((tmp_path / "out").glob("*.mp4"))


def test_signal_inside_a_command_unwinds_through_its_outputs(tmp_path: Path) -> None:
    """In-process: the handler raises inside the command, the OutputGroup removes what it staged, the exit is 143."""
    import typer

    from reenact.io.atomic import OutputGroup
    from reenact_cli.app import guarded

    @guarded
    def command(ctx: object) -> None:
        with OutputGroup() as outputs:
            outputs.write_text(tmp_path / "report.json", "{}")
            outputs.stage(tmp_path / "video.mp4").write_bytes(b"half a video")
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler raises here
            pytest.fail("SIGTERM did not interrupt the command")

    handler = signal.getsignal(signal.SIGTERM)
    with pytest.raises(typer.Exit) as exit_:
        command(ctx=typer.Context(typer.core.TyperCommand("command")))
    assert exit_.value.exit_code == 143 and list(tmp_path.iterdir()) == []
    assert signal.getsignal(signal.SIGTERM) == handler  # restored after the command


# ------------------------------------------------------------------------------------------------ stale temporaries
def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_batch_rerun_removes_stale_temporaries_of_its_jobs(tmp_path: Path) -> None:
    from reenact.batch import BatchConfig, plan_jobs, run_batch
    from reenact.io.atomic import temp_name

    photos, clips, out = tmp_path / "photos", tmp_path / "clips", tmp_path / "out"
    for folder in (photos, clips, out):
        folder.mkdir()
    (photos / "anna.jpg").write_bytes(SOURCE.read_bytes())
    (clips / "talk.mp4").write_bytes(DRIVER.read_bytes())
    (out / "anna__talk.mp4").write_bytes(b"done")  # every job done: the rerun renders nothing
    pid = dead_pid()
    stale = temp_name(out / "anna__talk.mp4", pid)
    older = out / ".anna__talk.partial-0123abcd.mp4"  # an earlier version's name, without a pid
    alive = temp_name(out / "anna__talk.mp4", os.getppid())  # a process that still runs: its work in progress
    other = temp_name(out / "bob__talk.mp4", pid)  # not one of this batch's jobs
    for p in (stale, older, alive, other):
        p.write_bytes(b"half")
    summary = run_batch(plan_jobs(photos, clips, out), out, BatchConfig(device="cpu"))
    assert summary.skipped == 1 and summary.backend == "none"
    assert not stale.exists() and not older.exists() and alive.exists() and other.exists()


@pytest.mark.parametrize("length", [249, 251])
def test_temporary_names_fit_the_name_limit(tmp_path: Path, length: int) -> None:
    from reenact.io.atomic import NAME_MAX, OutputGroup, remove_stale, temp_name

    final = tmp_path / ("é" * 20 + "a" * (length - 44) + ".mp4")  # multi-byte characters: the limit is bytes
    assert len(final.name.encode()) == length
    tmp = temp_name(final, dead_pid())
    assert len(tmp.name.encode()) <= NAME_MAX and tmp.suffix == ".mp4"
    tmp.write_bytes(b"x")
    assert remove_stale(final) == [tmp]
    with OutputGroup() as outputs:
        outputs.write_text(final, "done")
    assert final.read_text() == "done" and partials(tmp_path) == []
