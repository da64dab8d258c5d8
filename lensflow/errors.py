"""One family of errors: every failure lensflow reports is a LensflowError saying what to fix.

Each class carries the exit status the command line ends with (sysexits-like, one meaning
each; the README's table lists them). Operating-system errors met under a command (full disk,
permission denied, read-only file system, refused or timed-out connections) are turned into
the matching LensflowError by `from_os_error`, so they too end in one line.
"""

from __future__ import annotations

import errno
from typing import ClassVar

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_PARTIAL = 2
EXIT_INCOMPLETE = 3
EXIT_USAGE = 64
EXIT_DATA = 65
EXIT_NO_INPUT = 66
EXIT_UNAVAILABLE = 69
EXIT_CANNOT_CREATE = 73
EXIT_IO = 74
EXIT_TEMPORARY = 75
EXIT_PERMISSION = 77
EXIT_CONFIG = 78
EXIT_INTERRUPTED = 130

EXIT_CODES: dict[int, str] = {
    EXIT_OK: "done: every partition (or item) finished",
    EXIT_INTERNAL: "internal error: a bug in lensflow (please report it with the traceback)",
    EXIT_PARTIAL: "partial: every partition ran but some failed (scan, rerun, build, status)",
    EXIT_INCOMPLETE: "incomplete: partitions missing (status), or any not done (export)",
    EXIT_USAGE: "usage: a wrong option, argument or pixel on the command line",
    EXIT_DATA: "bad data: a catalog, cutout store, model file, labels or scan folder is malformed",
    EXIT_NO_INPUT: "missing input: a file or folder named does not exist",
    EXIT_UNAVAILABLE: "cluster unavailable: the scheduler cannot be reached or refused us",
    EXIT_CANNOT_CREATE: "cannot create output: exists (no --overwrite), read-only or unwritable",
    EXIT_IO: "I/O error: disk full or a device error while reading or writing",
    EXIT_TEMPORARY: "temporary failure: try again later (resource busy, try again)",
    EXIT_PERMISSION: "permission denied on a file or folder",
    EXIT_CONFIG: "config error: an invalid config, cut expression or training setting",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C): rerun the same command to resume",
}
"""Every exit status a command ends with, and what it means."""

USER_ERRORS = frozenset(EXIT_CODES) - {
    EXIT_OK,
    EXIT_INTERNAL,
    EXIT_PARTIAL,
    EXIT_INCOMPLETE,
    EXIT_INTERRUPTED,
}
"""The statuses of a command refused with one `error:` line (64-78): what to fix is said."""


class LensflowError(Exception):
    """Base of every error lensflow raises on purpose."""

    exit_code: ClassVar[int] = EXIT_DATA


class ConfigError(LensflowError):
    """The scan or training config is invalid (unknown key, bad value, missing file)."""

    exit_code = EXIT_CONFIG


class CutExpressionError(LensflowError):
    """A cut expression does not parse, names an unknown column or mixes types."""

    exit_code = EXIT_CONFIG


class PixelError(LensflowError):
    """A HEALPix pixel name or number is invalid or not in the catalog."""

    exit_code = EXIT_USAGE


class CatalogError(LensflowError):
    """A catalog or one of its partition files is malformed (layout, metadata, rows)."""


class MissingColumnError(CatalogError):
    """A column the config maps or the cut names is not in a partition file."""


class SchemaError(CatalogError):
    """A partition file's schema differs from the catalog's (drifted, mistyped, duplicated)."""


class CutoutError(LensflowError):
    """A cutout store or group is missing, misshapen or does not match the models."""


class ModelMismatchError(LensflowError):
    """A model's file, hash or input spec does not match the manifest or the cutouts."""


class OutputError(LensflowError):
    """An output cannot be made or written (exists, missing parent, read-only folder)."""

    exit_code = EXIT_CANNOT_CREATE


class StorageError(LensflowError):
    """Reading or writing failed on the device (disk full, I/O error)."""

    exit_code = EXIT_IO


class PermissionDeniedError(LensflowError):
    """A file or folder may not be read or written by this user."""

    exit_code = EXIT_PERMISSION


class MissingInputError(LensflowError):
    """A file or folder a command was given does not exist."""

    exit_code = EXIT_NO_INPUT


class TemporaryFailure(LensflowError):
    """A resource is busy or briefly unavailable; the same command may work later."""

    exit_code = EXIT_TEMPORARY


class ClusterError(LensflowError):
    """The Dask scheduler cannot be reached, refused the connection or its TLS settings."""

    exit_code = EXIT_UNAVAILABLE


class ScanStateError(LensflowError):
    """A scan directory cannot be resumed (changed fingerprint, corrupt marker or manifest)."""


class FolderInUseError(ScanStateError):
    """Another scan holds the folder's lock (try again when it has finished)."""

    exit_code = EXIT_TEMPORARY


class IncompleteScanError(ScanStateError):
    """Some partitions of a scan are not done (failed or never run) where all must be."""

    exit_code = EXIT_INCOMPLETE


class Interrupted(LensflowError):
    """The user stopped a command (Ctrl-C); what was done is kept and a rerun resumes."""

    exit_code = EXIT_INTERRUPTED


class SimulationError(LensflowError):
    """A simulation was asked for something it cannot make (unknown class, bad parameters)."""

    exit_code = EXIT_USAGE


class EvaluationError(LensflowError):
    """Scores and labels cannot be evaluated (one class absent, ids unmatched, bad labels)."""


class TrainingError(LensflowError):
    """Training cannot run or resume (torch absent, checkpoint from another config)."""

    exit_code = EXIT_CONFIG


class ImageError(CutoutError):
    """A coadd image tile or its settings cannot be used (unreadable file, missing HDU, no WCS).

    `reason` is a short code (e.g. "missing_hdu", "no_celestial_wcs", "truncated") that build
    reports count tiles and rows by.
    """

    def __init__(self, message: str, *, reason: str = "invalid") -> None:
        super().__init__(message)
        self.reason = reason

    def __reduce__(self) -> tuple[type[ImageError], tuple[str], dict[str, str]]:
        return (type(self), (str(self),), {"reason": self.reason})


_NETWORK = {
    errno.ECONNREFUSED,
    errno.ECONNRESET,
    errno.ETIMEDOUT,
    errno.EHOSTUNREACH,
    errno.ENETUNREACH,
    errno.ECONNABORTED,
}
_ADVICE: dict[int, tuple[type[LensflowError], str]] = {
    errno.ENOSPC: (StorageError, "free space there or write elsewhere, then rerun"),
    errno.EDQUOT: (StorageError, "the disk quota is spent; free space or write elsewhere"),
    errno.EIO: (StorageError, "a device error; check the disk or file system, then rerun"),
    errno.EROFS: (OutputError, "a read-only file system; choose a writable folder"),
    errno.EACCES: (PermissionDeniedError, "check its permissions or choose another path"),
    errno.EPERM: (PermissionDeniedError, "check its permissions or choose another path"),
    errno.ENOENT: (MissingInputError, "check the path"),
    errno.EISDIR: (MissingInputError, "a folder where a file was expected; name the file"),
    errno.ENOTDIR: (MissingInputError, "a file where a folder was expected; check the path"),
    errno.EEXIST: (OutputError, "it exists already; remove it or choose another path"),
    errno.EAGAIN: (TemporaryFailure, "a resource is busy; try again in a moment"),
    errno.EBUSY: (TemporaryFailure, "a resource is busy; try again in a moment"),
}
_CONNECT_ADVICE = (
    "check that the scheduler runs there and the address (--scheduler, tcp://HOST:PORT or "
    "tls://HOST:PORT) and TLS settings are right"
)


def from_os_error(exc: OSError, *, what: str | None = None) -> LensflowError:
    """The one-line LensflowError for an OS error: what failed, on which path, what to do.

    what: the operation, e.g. "writing the export"; the error's own path is named when known.
    """
    code = exc.errno
    reason = exc.strerror or str(exc) or type(exc).__name__
    where = exc.filename if exc.filename is not None else None
    if exc.filename2 is not None:
        where = f"{exc.filename} -> {exc.filename2}"
    subject = f"{where}: " if where is not None else ""
    doing = f"{what}: " if what else ""
    if code in _NETWORK or (code is None and _is_connect_failure(exc)):
        return ClusterError(f"{doing}{subject}{reason}; {_CONNECT_ADVICE}")
    if isinstance(exc, TimeoutError):
        return TemporaryFailure(f"{doing}{subject}{reason}; try again, or check the network")
    known = _ADVICE.get(code) if code is not None else None
    if known is None:
        known = _by_message(reason)
    cls, advice = known if known is not None else (StorageError, "check the path and disk")
    return cls(f"{doing}{subject}{reason}; {advice}")


def _is_connect_failure(exc: OSError) -> bool:
    text = str(exc).lower()
    return "connect" in text or "timed out" in text


def _by_message(reason: str) -> tuple[type[LensflowError], str] | None:
    """Arrow and other libraries raise OSError without an errno: read the message instead."""
    text = reason.lower()
    for code, phrase in (
        (errno.ENOSPC, "no space left"),
        (errno.EDQUOT, "quota exceeded"),
        (errno.EROFS, "read-only file system"),
        (errno.EACCES, "permission denied"),
        (errno.ENOENT, "no such file"),
    ):
        if phrase in text:
            return _ADVICE[code]
    return None


def exit_code_of(exc: BaseException) -> int:
    """The exit status a command ends with for this error."""
    if isinstance(exc, LensflowError):
        return exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    if isinstance(exc, OSError):
        return from_os_error(exc).exit_code
    return EXIT_INTERNAL
