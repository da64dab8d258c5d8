"""One writer per scan folder: a lock that names its holder and dies with it.

The lock is `fcntl.flock` on `scan.lock` in the folder: the kernel drops it when the holder's
process ends, however it ends, so a lock left by a killed scan is free at once (stale). Who
holds it (host, pid, start time) is written beside it, atomically, in `scan.lock.json`; a
second scan is refused with that line, and one that finds a stale record takes over with a
warning. The lock file itself is never removed: removing it would let two processes lock two
different files of one name.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import socket
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from lensflow.errors import FolderInUseError, ScanStateError
from lensflow.io import write_text

logger = logging.getLogger(__name__)

LOCK_FILE = "scan.lock"
HOLDER_FILE = "scan.lock.json"


@dataclass(frozen=True)
class Holder:
    """Who holds a scan folder's lock."""

    host: str
    pid: int
    started: str  # UTC, ISO 8601

    def describe(self) -> str:
        return f"host {self.host}, pid {self.pid}, started {self.started}"


def read_holder(folder: Path) -> Holder | None:
    """The holder recorded in a scan folder, None when there is none or it cannot be read."""
    try:
        data = json.loads((folder / HOLDER_FILE).read_text())
        return Holder(host=str(data["host"]), pid=int(data["pid"]), started=str(data["started"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


class ScanLock:
    """An exclusive lock on a scan folder; `release` (or the with-block's end) frees it."""

    def __init__(self, folder: Path, fd: int, holder: Holder) -> None:
        self.folder = folder
        self.holder = holder
        self._fd: int | None = fd

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        """Remove the holder record and unlock; a second call does nothing."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            if read_holder(self.folder) == self.holder:
                (self.folder / HOLDER_FILE).unlink(missing_ok=True)
        finally:
            os.close(fd)  # closing the file drops the flock

    def __del__(self) -> None:  # a context dropped without a run frees its folder
        self.release()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()

    def __reduce__(self) -> tuple[type[None], tuple[()]]:
        """A lock never travels to a worker: it pickles as None."""
        return (type(None), ())


def acquire(folder: Path) -> ScanLock:
    """Lock a scan folder for this process, or refuse with the holder's host, pid and start.

    The folder must exist. A record left by a holder that is gone is taken over with a warning.
    """
    path = folder / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise ScanStateError(
            f"{path}: cannot open the scan folder's lock ({exc.strerror or exc}); "
            "choose a writable --output folder"
        ) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise ScanStateError(
                f"{path}: cannot lock the scan folder ({exc.strerror or exc}); its filesystem "
                "may not support locks: scan into a folder on a local or NFS disk"
            ) from None
        holder = read_holder(folder)
        who = holder.describe() if holder else "a process that has not yet said who it is"
        raise FolderInUseError(
            f"{folder} is in use by another lensflow scan ({who}); wait for it to finish or "
            "scan into another --output folder"
        ) from None
    stale = read_holder(folder)
    if stale is not None:
        logger.warning(
            "%s: taking over the lock of a scan that is gone (%s)", folder, stale.describe()
        )
    holder = Holder(
        host=socket.gethostname(),
        pid=os.getpid(),
        started=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )
    try:
        write_text(folder / HOLDER_FILE, json.dumps(asdict(holder)))
    except OSError as exc:
        os.close(fd)
        raise ScanStateError(
            f"{folder}: cannot record the scan's lock ({exc.strerror or exc}); "
            "choose a writable --output folder"
        ) from None
    return ScanLock(folder, fd, holder)
