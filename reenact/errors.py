"""Typed errors. Library code raises these; the CLI turns each into one message and an exit code.

Exit codes (documented in the README):
    0  success
    1  runtime failure (a bug, a missing, corrupt or refused weight file, an encoder failure)
    2  bad input or usage (missing/corrupt media, no face, existing output, bad option values)
    3  identity check failed under --strict
"""

from __future__ import annotations

from typing import Any

EXIT_OK = 0
EXIT_RUNTIME = 1
EXIT_BAD_INPUT = 2
EXIT_IDENTITY = 3


class ReenactError(Exception):
    """Base class. `str(err)` is a complete sentence that tells the user what to do."""

    exit_code: int = EXIT_RUNTIME


class InputError(ReenactError):
    """The user gave us something we cannot use (file, option value, track)."""

    exit_code = EXIT_BAD_INPUT


class MediaError(InputError):
    """A media file is missing, unreadable, truncated, or of the wrong kind."""


class NoFaceError(InputError):
    """No usable face was found where one is required."""


class OutputError(InputError):
    """The output path exists (without --overwrite) or cannot be written."""


class TrackError(InputError):
    """A parameter track (CSV/JSON) has unknown columns or values out of range."""


class NotBuiltError(InputError):
    """A command or option that this version does not implement yet."""


class WeightsError(ReenactError):
    """A shipped or user-supplied weight file is missing, corrupt, or does not match its contract."""


class ContractError(WeightsError):
    """A weight contract asks for something reenact will not build: an import path, an unregistered network, or
    constructor arguments that the network does not declare or that are not of its JSON types."""


class IntegrityError(WeightsError):
    """A weight's contract or tensors differ from the sha256 in its folder's MANIFEST.json, or there is none."""


class IdentityError(ReenactError):
    """Rendered frames do not look like the source person (raised only under --strict)."""

    exit_code = EXIT_IDENTITY

    def __init__(self, message: str, report: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.report = report  # the run's RunReport as a dict: the CLI still writes --report, the video is kept


class DeviceError(InputError):
    """The requested device does not exist on this machine."""


class Interrupted(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised in the main thread by the CLI's handler (reenact_cli.app.signals_interrupt).

    A KeyboardInterrupt, so it unwinds exactly as Ctrl-C does: every `with` block on the way out removes its hidden
    temporaries, and a batch worker's `except Exception` does not swallow it. The exit code is the shell's 128 + N
    (143 for SIGTERM, 129 for SIGHUP), as if the signal had killed the process.
    """

    def __init__(self, signum: int, name: str) -> None:
        super().__init__(name)
        self.name = name
        self.exit_code = 128 + signum


# errno values an output or input path can fail with that the user can fix: a full disk, a missing permission, a
# name the file system cannot hold. Anything else from the OS is a runtime failure (exit 1).
_OS_ERRORS = {
    "ENOSPC": "no space left on the device; free some space or choose another folder",
    "EDQUOT": "the disk quota is used up; free some space or choose another folder",
    "EACCES": "permission denied; choose a folder you can write to (or check the file's permissions)",
    "EPERM": "operation not permitted; choose a folder you can write to (or check the file's permissions)",
    "EROFS": "the file system is read-only; choose another folder",
    "ENAMETOOLONG": "the name is too long for the file system (at most 255 bytes a name); choose a shorter one",
}


def from_os_error(err: OSError, path: object = None) -> ReenactError:
    """An OSError as one typed error naming the file: OutputError (exit 2) for what the user can fix (disk full,
    permission, name too long, read-only), ReenactError (exit 1) otherwise. Used by the CLI's one error handler and
    by batch jobs, so the same failure reads the same everywhere."""
    import errno as _errno

    name = _errno.errorcode.get(err.errno or 0, "")
    where = path if path is not None else (err.filename if err.filename is not None else "a file")
    if name in _OS_ERRORS:
        return OutputError(f"{where}: {_OS_ERRORS[name]}.")
    return ReenactError(f"{where}: {err.strerror or err}; check the path and the disk.")
