"""Atomic output files: write under a temporary name in the same folder, rename when complete.

An interrupted or failed run therefore never leaves a half-written file under the final name, and an existing file is
only replaced when `overwrite=True`. Used by the video writer, `write_image`, and any other file the tool produces.

    with atomic_output("out/report.json", overwrite=False) as tmp:
        tmp.write_text(text)          # renamed to out/report.json on success, removed on exception

A command with several outputs (video, preview, report, plot) stages them all in one `OutputGroup` and commits them
together: nothing is renamed until every one is written, and a failure (disk full on the report, a signal) removes
every staged temporary, so the outputs appear together or not at all.

    with OutputGroup(overwrite) as outputs:
        VideoWriter(video, fps, group=outputs) ...   # staged, not renamed on close
        outputs.write_text(report, text)             # staged
    # both renamed here; on an exception inside the block neither is

Temporary names are `.NAME.partial-PID-XXXXXX.SUFFIX`: the writing process's id lets a later run tell a temporary
left by a killed process (`remove_stale`) from one another process is still writing.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

from reenact.errors import OutputError, from_os_error

PathLike = str | Path
NAME_MAX = 255  # bytes in one file name on every common file system (ext4, APFS, NTFS in UTF-16 units, tmpfs)
_TEMP = re.compile(r"^\.(?P<stem>.*)\.partial-(?:(?P<pid>\d+)-)?(?P<token>[0-9a-f]+)(?P<suffix>.*)$")


def check_output_path(path: PathLike, overwrite: bool) -> Path:
    """Validate an output path before any work is done; returns it as an absolute Path.

    Raises OutputError when the file exists (and `overwrite` is False), when the path is a folder, or when its folder
    is missing or not writable. The folder is not created: callers decide that.
    """
    p = Path(path).expanduser().absolute()
    if len(p.name.encode()) > NAME_MAX:  # the OS would say ENAMETOOLONG only once the work is done
        raise OutputError(f"Output name {p.name[:40]}... is {len(p.name.encode())} bytes long; a file name may have at "
                          f"most {NAME_MAX}: choose a shorter one.")
    try:
        return _check_output_path(p, overwrite)
    except OSError as err:  # a folder in the path that is too long or cannot be searched
        raise from_os_error(err, p) from None


def _check_output_path(p: Path, overwrite: bool) -> Path:
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


def temp_name(final: Path, pid: int | None = None, token: str | None = None) -> Path:
    """A hidden, unique sibling of `final` that keeps its suffix (so format detection by extension still works).

    The stem is shortened (by UTF-8 bytes, never inside a character) so the name stays within NAME_MAX: a valid
    249-byte output name must not fail because its temporary is 20 bytes longer.
    """
    tail = f".partial-{os.getpid() if pid is None else pid}-{token or secrets.token_hex(3)}{final.suffix}"
    room = NAME_MAX - 1 - len(tail.encode())
    stem = final.stem.encode()[:max(room, 1)].decode("utf-8", "ignore")
    return final.with_name(f".{stem}{tail}")


def remove_stale(*finals: Path) -> list[Path]:
    """Remove the temporaries of the outputs `finals` left by processes that no longer run (killed, the machine
    restarted); returns them. A temporary whose process still runs is another run's work in progress and is kept.
    Each folder is listed once, however many of its outputs are asked about (a batch asks about all its jobs)."""
    folders: dict[Path, list[Path]] = {}
    for final in finals:
        folders.setdefault(final.parent, []).append(final)
    removed = []
    for folder, outputs in folders.items():
        try:
            names = os.listdir(folder)
        except OSError:
            continue  # no folder: nothing left behind
        mine = {(f.stem, f.suffix): f for f in outputs}
        for name in names:
            m = _TEMP.match(name)
            if m is None or not _owned(name, m, mine):
                continue
            if m["pid"] and _running(int(m["pid"])):
                continue
            discard(folder / name)
            removed.append(folder / name)
    return removed


def _owned(name: str, m: re.Match[str], mine: dict[tuple[str, str], Path]) -> bool:
    """Whether the temporary `name` belongs to one of the outputs in `mine`: it is exactly what temp_name gives
    for that output (its stem may be shortened), or an older version's `.STEM.partial-XXXXXXXX.SUFFIX`."""
    if not m["pid"]:
        return (m["stem"], m["suffix"]) in mine
    return any(f.suffix == m["suffix"] and f.stem.startswith(m["stem"])
               and temp_name(f, int(m["pid"]), m["token"]).name == name for f in mine.values())


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    except OSError:
        return False
    return True


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


class OutputGroup:
    """The outputs of one command, committed together or not at all (see the module docstring).

    `stage(path)` checks `path` and returns its temporary name; `commit()` renames every staged temporary onto its
    final name once all are written; `discard()` (or an exception in its `with` block) removes them all.
    """

    def __init__(self, overwrite: bool = False) -> None:
        self.overwrite = overwrite
        self.staged: list[tuple[Path, Path]] = []  # (temporary, final)

    def stage(self, path: PathLike) -> Path:
        final = check_output_path(path, self.overwrite)
        tmp = temp_name(final)
        self.staged.append((tmp, final))
        return tmp

    def write_text(self, path: PathLike, text: str) -> None:
        """Stage `path` with `text` (an OS error, a full disk, is an OutputError naming it)."""
        tmp = self.stage(path)
        try:
            tmp.write_text(text, encoding="utf-8")
        except OSError as err:
            raise from_os_error(err, Path(path)) from None

    def commit(self) -> None:
        staged, self.staged = self.staged, []
        done: list[Path] = []
        try:
            for tmp, final in staged:  # every check first: a refusal must rename nothing
                if not tmp.exists():
                    raise OutputError(f"Nothing was written for {final}; this is a bug, please report it.")
                if final.exists() and not self.overwrite:
                    raise OutputError(f"Output {final} appeared while writing; pass --overwrite to replace it or "
                                      f"choose another name.")
            for tmp, final in staged:
                os.replace(tmp, final)
                done.append(final)
        except BaseException as err:
            # Not at all: the temporaries go, and so do the outputs already renamed (a replaced old file is gone
            # either way with --overwrite; a half set of new outputs must not look like a finished run).
            for path in [t for t, _ in staged] + done:
                discard(path)
            if isinstance(err, OSError):
                raise OutputError(f"Cannot move the finished outputs into place ({err.strerror}); check the "
                                  f"folder.") from err
            raise

    def discard(self) -> None:
        staged, self.staged = self.staged, []
        for tmp, _ in staged:
            discard(tmp)

    def __enter__(self) -> OutputGroup:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()


def discard(tmp: Path) -> None:
    """Remove a temporary file if it is there (used on every failure path)."""
    try:
        tmp.unlink(missing_ok=True)
    except OSError:
        pass  # nothing more we can do; the hidden name makes a leftover obvious and harmless


@contextmanager
def atomic_output(path: PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path to write; rename it to `path` on success, remove it on any exception."""
    with OutputGroup(overwrite) as group:
        yield group.stage(path)
