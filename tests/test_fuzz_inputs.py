"""Fuzz-style cases from GitHub issue 20 kept in CI: bad numbers, outputs that would leave OUTDIR or replace an input,
track formats that cannot be told from a name.

Every refused case must give exactly one line on stderr (`error: ...`), exit code 2, no traceback, open no media
(a fixture makes opening media fail the test), and leave the working folder exactly as it was: no file added, none
changed, no hidden temporary.
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
from pathlib import Path

import pytest

from tests.cli_utils import run

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


@pytest.fixture()
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder with copies of the sample photo, driver, speech and a track; the commands run inside it."""
    for name in ("source.jpg", "driver.mp4", "speech.wav"):
        shutil.copy(SAMPLES / name, tmp_path / name)
    (tmp_path / "track.csv").write_text("time,jawOpen\n0,0\n0.04,0.5\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture()
def no_media(monkeypatch: pytest.MonkeyPatch) -> None:
    """Opening any photo, video or audio fails the test: refusals must come before the media is read."""
    import av

    import reenact.io.image

    def opened(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"media opened before the options were checked: {args[:1]}")

    monkeypatch.setattr(av, "open", opened)
    monkeypatch.setattr(reenact.io.image, "read_image", opened)


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under `folder` (hidden ones too) -> sha256 of its content."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def refused(folder: Path, *args: str) -> str:
    """Run the command; assert one `error:` line, exit 2, nothing written or changed in `folder`; return the line."""
    before = snapshot(folder)
    code, err = run(*args)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err and "╭" not in err, err
    assert snapshot(folder) == before, "the refused command changed the folder"
    return lines[0]


DRIVE = ("drive", "source.jpg", "driver.mp4", "-o", "out.mp4")
RENDER = ("render", "source.jpg", "track.csv", "-o", "out.mp4")
SPEAK = ("speak", "source.jpg", "speech.wav", "-o", "out.mp4")
EDIT = ("edit", "source.jpg", "-o", "edited.png", "--au", "12=0.5")
EXTRACT = ("extract", "driver.mp4", "-o", "track2.csv")
IDENTITY = ("identity", "source.jpg", "source.jpg")
BATCH = ("batch", "source.jpg", "driver.mp4", "-o", "batch_out")


# ------------------------------------------------------------------------------------------------ bad numbers
@pytest.mark.parametrize("command", [DRIVE, RENDER, SPEAK, BATCH], ids=["drive", "render", "speak", "batch"])
@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "-5", "5", "2.01"])
def test_strength_outside_0_to_2_is_refused(work: Path, no_media: None, command: tuple[str, ...], value: str) -> None:
    line = refused(work, *command, "--strength", value)
    assert "--strength" in line and "0 to 2" in line


@pytest.mark.parametrize("command", [DRIVE, RENDER, BATCH], ids=["drive", "render", "batch"])
@pytest.mark.parametrize("value", ["nan", "inf", "-1", "4.5"])
def test_scale_gain_outside_its_range_is_refused(work: Path, no_media: None, command: tuple[str, ...],
                                                 value: str) -> None:
    line = refused(work, *command, "--scale", f"AU12={value}")
    assert "--scale AU12=" in line and "0 to 4" in line


@pytest.mark.parametrize("command", [DRIVE, BATCH, IDENTITY], ids=["drive", "batch", "identity"])
@pytest.mark.parametrize("value", ["nan", "inf", "2", "-1", "0", "1"])
def test_threshold_outside_0_to_1_is_refused(work: Path, no_media: None, command: tuple[str, ...], value: str) -> None:
    line = refused(work, *command, "--threshold", value)
    assert "--threshold" in line and "strictly between 0 and 1" in line


@pytest.mark.parametrize("command", [DRIVE, BATCH], ids=["drive", "batch"])
@pytest.mark.parametrize("option, value", [("--check-every", "0"), ("--check-every", "-3"), ("--batch-size", "0"),
                                           ("--batch-size", "5000")])
def test_counts_out_of_range_are_one_line(work: Path, no_media: None, command: tuple[str, ...], option: str,
                                          value: str) -> None:
    assert option in refused(work, *command, option, value)


@pytest.mark.parametrize("command", [DRIVE, RENDER, SPEAK, EDIT, BATCH],
                         ids=["drive", "render", "speak", "edit", "batch"])
@pytest.mark.parametrize("value", ["3", "0", "-1", "63"])
def test_tiny_max_size_blames_the_option_not_the_photo(work: Path, no_media: None, command: tuple[str, ...],
                                                       value: str) -> None:
    line = refused(work, *command, "--max-size", value)
    assert "--max-size" in line and "at least 64" in line and "face" not in line.lower()


@pytest.mark.parametrize("command", [DRIVE, RENDER, SPEAK, EDIT, EXTRACT, BATCH],
                         ids=["drive", "render", "speak", "edit", "extract", "batch"])
@pytest.mark.parametrize("value", ["abc", "-1", "1.5"])
def test_bad_face_index_is_one_line(work: Path, no_media: None, command: tuple[str, ...], value: str) -> None:
    assert "--face" in refused(work, *command, "--face", value)


@pytest.mark.parametrize("command", [RENDER, SPEAK, EXTRACT], ids=["render", "speak", "extract"])
@pytest.mark.parametrize("value", ["0", "nan", "inf", "abc", "1000", "1/0"])
def test_bad_fps_is_one_line(work: Path, no_media: None, command: tuple[str, ...], value: str) -> None:
    assert "--fps" in refused(work, *command, "--fps", value)


@pytest.mark.parametrize("controls", [("--au", "12=nan"), ("--arkit", "jawOpen=inf"), ("--vad", "nan,0"),
                                      ("--emotion", "happy:nan"), ("--au", "12=-0.5")])
def test_edit_controls_outside_0_to_1_are_refused(work: Path, no_media: None, controls: tuple[str, ...]) -> None:
    refused(work, "edit", "source.jpg", "-o", "edited.png", *controls)


@pytest.mark.parametrize("args", [("--crf", "nan"), ("--crf", "99"), ("--bogus",), ("--check-every",)],
                         ids=["crf-nan", "crf-99", "unknown-option", "missing-value"])
def test_click_usage_errors_are_one_line_not_a_panel(work: Path, no_media: None, args: tuple[str, ...]) -> None:
    line = refused(work, *DRIVE, *args)
    assert "reenact drive --help" in line or "--crf" in line


def test_missing_argument_and_unknown_command_are_one_line(work: Path) -> None:
    assert "reenact drive --help" in refused(work, "drive", "source.jpg")
    assert "nosuch" in refused(work, "nosuch")


# ------------------------------------------------------------------------------------------------ batch manifest
@pytest.mark.parametrize("options, named", [
    ("strength=nan", "--strength"), ("strength=5", "--strength"), ("threshold=nan", "--threshold"),
    ("threshold=2", "--threshold"), ("check_every=0", "--check-every"), ("batch_size=0", "--batch-size"),
    ("max_size=3", "--max-size"), ("face=-1", "--face"), ("face=abc", "face"), ("fps=0", "--fps"),
    ("fps=nan", "fps"), ("scale=AU12:nan", "--scale AU12"), ("crf=nan", "crf"),
])
def test_manifest_row_with_a_bad_number_stops_the_batch(work: Path, no_media: None, options: str, named: str) -> None:
    (work / "jobs.csv").write_text(f'source.jpg,driver.mp4,,"{options}"\n')
    line = refused(work, "batch", "--pairs", "jobs.csv", "-o", "batch_out")
    assert "jobs.csv job 1" in line and named in line


@pytest.mark.parametrize("output", ["../escaped.mp4", "sub/../../escaped.mp4", "ABSOLUTE", ".reenact-cache/x.mp4",
                                    "link/escaped.mp4"])
def test_manifest_output_may_not_leave_outdir(work: Path, no_media: None, output: str) -> None:
    outside = work.parent / f"{work.name}-outside"
    outside.mkdir()
    (work / "batch_out").mkdir()
    os.symlink(outside, work / "batch_out" / "link")
    output = str(outside / "abs.mp4") if output == "ABSOLUTE" else output
    (work / "jobs.csv").write_text(f"source.jpg,driver.mp4,{output}\n")
    line = refused(work, "batch", "--pairs", "jobs.csv", "-o", "batch_out")
    assert "jobs.csv job 1" in line and "inside OUTDIR" in line
    assert not list(outside.iterdir()) and not (work / "escaped.mp4").exists()


def test_manifest_output_may_not_be_its_driver(work: Path, no_media: None) -> None:
    (work / "jobs.csv").write_text("source.jpg,driver.mp4,driver.mp4\n")
    line = refused(work, "batch", "--pairs", "jobs.csv", "-o", ".", "--force")
    assert "same file as driver" in line


def test_manifest_outputs_inside_outdir_are_accepted(work: Path) -> None:
    from reenact.batch import read_manifest

    (work / "jobs.csv").write_text("source.jpg,driver.mp4,a/b/c.mp4\nsource.jpg,driver.mp4,./d.mov\n")
    jobs = read_manifest(work / "jobs.csv", work / "out")
    assert [j.output for j in jobs] == [work / "out" / "a" / "b" / "c.mp4", work / "out" / "d.mov"]


# ------------------------------------------------------------------------------------------------ outputs vs inputs
def test_extract_never_replaces_its_input(work: Path, no_media: None) -> None:
    line = refused(work, "extract", "driver.mp4", "-o", "driver.mp4", "--overwrite", "--format", "csv")
    assert "same file as MEDIA" in line
    os.link(work / "driver.mp4", work / "hardlink.mp4")
    refused(work, "extract", "driver.mp4", "-o", "hardlink.mp4", "--overwrite", "--format", "csv")


@pytest.mark.parametrize("args", [
    (*DRIVE, "--preview", "out.mp4"), (*DRIVE, "--report", "out.mp4"), (*DRIVE, "--report", "source.jpg", "-y"),
    ("drive", "source.jpg", "driver.mp4", "-o", "driver.mp4", "-y"), (*RENDER, "--report", "out.mp4"),
    ("render", "source.jpg", "track.csv", "-o", "track.csv", "-y"), (*SPEAK, "--report", "./out.mp4"),
    ("speak", "source.jpg", "speech.wav", "-o", "speech.wav", "-y"),
    ("edit", "source.jpg", "-o", "source.jpg", "-y", "--au", "12=0.5"),
    (*EXTRACT, "--plot", "track2.csv"), (*EXTRACT, "--plot", "driver.mp4", "-y"),
    (*IDENTITY, "--report", "source.jpg", "-y"),
], ids=["drive-preview", "drive-report", "drive-report-source", "drive-o-driver", "render-report", "render-o-track",
        "speak-report", "speak-o-audio", "edit-o-source", "extract-plot-o", "extract-plot-input", "identity-report"])
def test_no_output_is_an_input_or_another_output(work: Path, no_media: None, args: tuple[str, ...]) -> None:
    assert "same file as" in refused(work, *args)


@pytest.mark.parametrize("name", ["out.xyz", "out", "out.mp4", "out.txt"])
def test_extract_refuses_a_format_it_cannot_tell(work: Path, no_media: None, name: str) -> None:
    assert "--format" in refused(work, "extract", "driver.mp4", "-o", name)


def test_extract_takes_any_name_with_format() -> None:
    from reenact.extract import track_format

    assert track_format(Path("out.xyz"), "openface", False) == "openface"
    assert track_format(Path("out.JSON"), None, False) == "json"
    assert track_format(Path("out.csv"), None, False) == "csv"


@pytest.mark.parametrize("plot", ["bad.xyz", "plot", "plot.mp4"])
def test_extract_bad_plot_name_fails_before_the_track(work: Path, no_media: None, plot: str) -> None:
    assert "--plot" in refused(work, *EXTRACT, "--plot", plot)


def test_extract_plot_and_track_are_written_together_or_not_at_all(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import reenact.plot
    from reenact.errors import OutputError

    def full_disk(*args: object, **kwargs: object) -> None:
        raise OutputError("Cannot write plot.png (No space left on device); check free space and permissions.")

    monkeypatch.setattr(reenact.plot, "save_plot", full_disk)
    line = refused(work, "extract", "source.jpg", "-o", "photo.csv", "--plot", "plot.png")
    assert "No space left" in line
    monkeypatch.undo()
    monkeypatch.chdir(work)
    code, err = run("extract", "source.jpg", "-o", "photo.csv", "--plot", "plot.png")
    assert code == 0, err
    assert (work / "photo.csv").read_text().startswith("time") and (work / "plot.png").stat().st_size > 0


# ------------------------------------------------------------------------------------------------ the library alike
def test_library_options_objects_check_their_ranges() -> None:
    from reenact.batch import JobOptions
    from reenact.errors import InputError
    from reenact.pipeline import RenderOptions
    from reenact.retarget import RetargetOptions

    bad = [lambda: RetargetOptions(strength=math.nan), lambda: RetargetOptions(strength=-0.1),
           lambda: RetargetOptions(scale={"AU12": math.inf}), lambda: RenderOptions(threshold=math.nan),
           lambda: RenderOptions(threshold=1.5), lambda: RenderOptions(check_every=0),
           lambda: RenderOptions(check_every=1.5),  # type: ignore[arg-type]
           lambda: RenderOptions(batch_size=0), lambda: JobOptions(max_size=3), lambda: JobOptions(face=-1),
           lambda: JobOptions(fps="0"), lambda: RetargetOptions(strength="1")]  # type: ignore[arg-type]
    for make in bad:
        with pytest.raises(InputError):
            make()
    RetargetOptions(strength=0, scale={"AU12": 4}), RenderOptions(threshold=0.5, check_every=3)
    JobOptions(max_size=64, face=0, fps="30000/1001")


def test_library_drive_refuses_before_any_media(work: Path, no_media: None) -> None:
    from reenact.errors import InputError, OutputError
    from reenact.specs import DriveSpec, EditSpec, RenderSpec

    # a spec checks itself when it is built: no job function, no model, no media is reached
    with pytest.raises(InputError, match="--max-size 3"):
        DriveSpec(work / "source.jpg", work / "driver.mp4", work / "o.mp4", max_size=3)
    with pytest.raises(OutputError, match="same file as the driver"):
        DriveSpec(work / "source.jpg", work / "driver.mp4", work / "driver.mp4")
    with pytest.raises(OutputError, match="same file as the track"):
        RenderSpec(work / "source.jpg", work / "track.csv", work / "track.csv")
    with pytest.raises(InputError, match="--face -1"):
        EditSpec(work / "source.jpg", work / "e.png", None, face=-1)  # type: ignore[arg-type]


def test_readme_quotes_every_range() -> None:
    from reenact.limits import RANGES

    readme = (SAMPLES.parent / "README.md").read_text()
    for limit in RANGES.values():
        assert f"| `{limit.option}` | {limit.span()}" in readme, limit.option


# ------------------------------------------------------------------------------------------------ choices, up front
@pytest.mark.parametrize("command, option, value", [
    (DRIVE, "--smooth", "bogus"), (EXTRACT, "--smooth", "bogus"), (BATCH, "--smooth", "bogus"),
    (DRIVE, "--region", "nose"), (RENDER, "--region", "nose"), (BATCH, "--region", "nose"),
], ids=["drive-smooth", "extract-smooth", "batch-smooth", "drive-region", "render-region", "batch-region"])
def test_a_value_outside_the_choices_is_refused_by_click(work: Path, no_media: None, command: tuple[str, ...],
                                                         option: str, value: str) -> None:
    line = refused(work, *command, option, value)
    assert option in line and repr(value) in line and f"reenact {command[0]} --help" in line
    assert "Value error" not in line  # the message is ours, not the validation library's


@pytest.mark.parametrize("args", [(*DRIVE, "--smooth", "bogus"), (*RENDER, "--fps", "0"), (*SPEAK, "--fps", "0"),
                                  (*DRIVE, "--max-size", "10"), (*BATCH, "--max-size", "10")],
                         ids=["drive-smooth", "render-fps", "speak-fps", "drive-max-size", "batch-max-size"])
def test_bad_options_are_refused_within_a_second(work: Path, no_media: None, args: tuple[str, ...]) -> None:
    import time

    start = time.perf_counter()
    refused(work, *args)
    assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize("args", [(*DRIVE, "--smooth", "bogus"), (*SPEAK, "--fps", "0"), (*DRIVE, "--max-size", "10"),
                                  (*RENDER, "--region", "nose"), (*DRIVE, "--identity", "bogus"),
                                  ("--device", "tpu", *EDIT)],
                         ids=["drive-smooth", "speak-fps", "drive-max-size", "render-region", "drive-identity",
                              "edit-device"])
def test_bad_options_are_refused_before_torch_loads(work: Path, args: tuple[str, ...]) -> None:
    """As a real process: the refusal comes before torch, PyAV or OpenCV is imported (a second or more each)."""
    import subprocess
    import sys

    from tests.checkout import CLI_MAIN, ROOT

    probe = CLI_MAIN.replace("main()", "\ntry:\n    main()\nfinally:\n    print(sorted({'torch', 'av', 'cv2'} & "
                                       "set(sys.modules)), file=sys.stderr)")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", probe, *args], cwd=work, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == "[]", proc.stderr


@pytest.mark.parametrize("command", [DRIVE, SPEAK, RENDER, IDENTITY, BATCH],
                         ids=["drive", "speak", "render", "identity", "batch"])
def test_unknown_identity_embedder_is_refused_up_front(work: Path, no_media: None, command: tuple[str, ...]) -> None:
    line = refused(work, *command, "--identity", "bogus")
    assert "--identity" in line and "mobilefacenet" in line


def test_the_identity_spellings_are_the_embedders() -> None:
    from reenact.identity import EMBEDDERS
    from reenact.limits import check_identity_spec

    for name in [e.replace("[:PATH]", "") for e in EMBEDDERS] + ["default", "arcface:/some/pack"]:
        assert check_identity_spec(name) == name

