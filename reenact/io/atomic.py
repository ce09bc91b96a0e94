"""Atomic output files: write under a temporary name in the same folder, rename when complete.

An interrupted or failed run therefore never leaves a half-written file under the final name, and an existing file is
only replaced when `overwrite=True`. Used by the video writer, `write_image`, and any other file the tool produces.

    with atomic_output("out/report.json", overwrite=False) as tmp:
        tmp.write_text(text)          # renamed to out/report.json on success, removed on exception
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from reenact.errors import OutputError

PathLike = str | Path


def check_output_path(path: PathLike, overwrite: bool) -> Path:
    """Validate an output path before any work is done; returns it as an absolute Path.

    Raises OutputError when the file exists (and `overwrite` is False), when the path is a folder, or when its folder
    is missing or not writable. The folder is not created: callers decide that.
    """
    p = Path(path).expanduser().absolute()
    if p.is_dir():
        raise OutputError(f"Output {p} is a folder; give a file name such as {p / 'out.mp4'}.")
    if p.exists() and not overwrite:
        raise OutputError(f"Output {p} already exists; pass --overwrite to replace it or choose another name.")
    parent = p.parent
    if not parent.exists():
        raise OutputError(f"Output folder {parent} does not exist; create it first or choose another output path.")
    if not parent.is_dir():
        raise OutputError(f"Output folder {parent} is not a folder; choose another output path.")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"Output folder {parent} is not writable; choose a folder you can write to.")
    return p


def temp_name(final: Path) -> Path:
    """A hidden, unique sibling of `final` that keeps its suffix (so format detection by extension still works)."""
    return final.with_name(f".{final.stem}.partial-{secrets.token_hex(4)}{final.suffix}")


def commit(tmp: Path, final: Path, overwrite: bool) -> None:
    """Rename the finished temporary file onto its final name (atomic on one file system)."""
    if final.exists() and not overwrite:
        discard(tmp)
        raise OutputError(
            f"Output {final} appeared while writing; pass --overwrite to replace it or choose another name."
        )
    try:
        os.replace(tmp, final)
    except OSError as err:
        discard(tmp)
        raise OutputError(f"Cannot move the finished output to {final} ({err.strerror}); check the folder.") from err


def discard(tmp: Path) -> None:
    """Remove a temporary file if it is there (used on every failure path)."""
    try:
        tmp.unlink(missing_ok=True)
    except OSError:
        pass  # nothing more we can do; the hidden name makes a leftover obvious and harmless


@contextmanager
def atomic_output(path: PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path to write; rename it to `path` on success, remove it on any exception."""
    final = check_output_path(path, overwrite)
    tmp = temp_name(final)
    try:
        yield tmp
    except BaseException:
        discard(tmp)
        raise
    if not tmp.exists():
        raise OutputError(f"Nothing was written for {final}; this is a bug, please report it.")
    commit(tmp, final, overwrite)
