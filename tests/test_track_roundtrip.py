"""Track files round-trip (issue 20): hand-made CSVs, and every export format read back at its own frame rate."""

from __future__ import annotations

from pathlib import Path

import pytest

from reenact.errors import TrackError
from reenact.params import Track
from tests.cli_utils import run

SOURCE = Path("samples/source.jpg")


def test_csv_with_utf8_bom_is_read(tmp_path: Path) -> None:
    path = tmp_path / "sheet.csv"
    path.write_bytes("\ufefftime,AU12\r\n0,0.1\r\n0.04,0.5\r\n".encode("utf-8"))
    track = Track.read(path)
    assert track.channels == ["AU12"] and len(track) == 2
    assert track.column("AU12")[1] == pytest.approx(0.5)


def test_csv_with_only_a_time_column_is_one_message(tmp_path: Path) -> None:
    path = tmp_path / "times.csv"
    path.write_text("time\n0\n0.04\n0.08\n")
    with pytest.raises(TrackError, match="only a `time` column"):
        Track.read(path)
    code, out = run("render", str(SOURCE), str(path), "-o", str(tmp_path / "out.mp4"))
    assert code == 2 and "only a `time` column" in out and "Traceback" not in out
    assert not (tmp_path / "out.mp4").exists()
