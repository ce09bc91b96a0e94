"""Bad input through the CLI: one clear line on stderr, exit code 2, and no output file left behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli_utils import run
from tests.media_utils import make_audio

SOURCE = Path("samples/source.jpg")
DRIVER = Path("samples/driver.mp4")


def bad_drivers(tmp: Path) -> dict[str, Path]:
    empty = tmp / "empty.mp4"
    empty.write_bytes(b"")
    text = tmp / "notes.mp4"
    text.write_text("this is not a video\n" * 50)
    truncated = tmp / "truncated.mp4"
    data = DRIVER.read_bytes()
    truncated.write_bytes(data[: len(data) // 3])
    corrupt = tmp / "corrupt.mp4"
    corrupt.write_bytes(data[:4096] + bytes(len(data) - 4096))
    audio_only = make_audio(tmp / "speech.m4a", seconds=1.0)
    return {"missing": tmp / "nope.mp4", "empty": empty, "text": text, "truncated": truncated, "corrupt": corrupt,
            "audio-only": audio_only}


@pytest.mark.parametrize("kind", ["missing", "empty", "text", "truncated", "corrupt", "audio-only"])
def test_bad_driver_is_exit_2_with_one_clear_line(tmp_path: Path, kind: str) -> None:
    driver = bad_drivers(tmp_path)[kind]
    out = tmp_path / "out.mp4"
    code, err = run("drive", str(SOURCE), str(driver), "-o", str(out))
    assert code == 2, err
    assert "error:" in err and "Traceback" not in err
    assert driver.name in err
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if "partial" in p.name]


def test_missing_source_is_exit_2(tmp_path: Path) -> None:
    code, err = run("drive", str(tmp_path / "missing.jpg"), str(DRIVER), "-o", str(tmp_path / "o.mp4"))
    assert code == 2 and "missing.jpg" in err


def test_existing_output_needs_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    out.write_bytes(b"keep me")
    code, err = run("drive", str(SOURCE), str(DRIVER), "-o", str(out))
    assert code == 2 and "--overwrite" in err
    assert out.read_bytes() == b"keep me"


def test_unwritable_output_folder_is_exit_2(tmp_path: Path) -> None:
    code, err = run("drive", str(SOURCE), str(DRIVER), "-o", str(tmp_path / "no" / "such" / "dir" / "o.mp4"))
    assert code == 2 and "error:" in err


def test_bad_option_values_are_exit_2(tmp_path: Path) -> None:
    out = str(tmp_path / "o.mp4")
    assert run("drive", str(SOURCE), str(DRIVER), "-o", out, "--region", "nose")[0] == 2
    assert run("drive", str(SOURCE), str(DRIVER), "-o", out, "--scale", "AU99=2")[0] == 2
    assert run("drive", str(SOURCE), str(DRIVER), "-o", out, "--mute", "smile")[0] == 2
    for command in (["drive", str(SOURCE), str(DRIVER)], ["speak", str(SOURCE), "samples/speech.wav"]):
        code, err = run(*command, "-o", out, "--preset", "fastest")
        assert code == 2 and "--preset 'fastest'" in err and "veryslow" in err
        code, err = run(*command, "-o", out, "--crf", "70")
        assert code == 2 and "--crf 70" in err
    assert not (tmp_path / "o.mp4").exists()
