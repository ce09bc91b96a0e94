"""Typed errors. Library code raises these; the CLI turns each into one message and an exit code.

Exit codes (documented in the README):
    0  success
    1  runtime failure (a bug, a missing, corrupt or refused weight file, an encoder failure)
    2  bad input or usage (missing/corrupt media, no face, existing output, bad option values)
    3  identity check failed under --strict
"""

from __future__ import annotations

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


class DeviceError(InputError):
    """The requested device does not exist on this machine."""
