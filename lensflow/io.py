"""Durable files: the one atomic writer every output goes through, file digests, canonical hashes.

A reader sees the old file or the new one, never half of one: `write_atomic` writes a temp file
`.NAME.PID-THREAD.tmp` beside the target, fsyncs it, renames it over the target and fsyncs the folder.
A writer killed between write and rename leaves only such a temp file, which a scan clears;
any other failure (a full disk, a read-only folder, Ctrl-C) removes it. `write_folder_atomic`
does the same for a whole folder: built beside its target, then swapped in.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from lensflow.errors import OutputError

TEMP_SUFFIX = ".tmp"


def temp_path(path: Path) -> Path:
    """The temp file a write to `path` goes through: `.NAME.PID-THREAD.tmp` in the same folder.

    Process and thread both name it, so two threads of one worker never share a temp file.
    """
    return path.with_name(f".{path.name}.{os.getpid()}-{threading.get_native_id()}{TEMP_SUFFIX}")


def write_atomic(path: Path, write: Callable[[Path], object]) -> str:
    """Write through `write(tmp)` beside `path`, fsync, rename over it, fsync the folder.

    Returns the sha256 (hex) of the bytes written. The temp file is removed if `write` fails.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        write(tmp)
        with tmp.open("rb+") as f:
            os.fsync(f.fileno())
            f.seek(0)
            digest = hashlib.file_digest(f, "sha256").hexdigest()
        tmp.replace(path)
    finally:  # every exception, KeyboardInterrupt too; never masks it
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
    fsync_directory(path.parent)
    return digest


def write_folder_atomic(path: Path, write: Callable[[Path], object], *, replace: bool) -> None:
    """Build a folder through `write(tmp)` beside `path`, then swap it in whole.

    An existing `path` (with replace) is renamed aside, the new folder renamed in, and the old
    one removed, so a reader never sees the old folder's files beside the new ones. Without
    replace, an existing `path` is an OutputError. A failure leaves `path` as it was and no
    temp folder.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    old = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_native_id()}.old")
    _remove(tmp)
    try:
        tmp.mkdir()
        write(tmp)
        fsync_directory(tmp)
        if path.exists() or path.is_symlink():
            if not replace:
                raise OutputError(f"{path}: exists; pass --overwrite to replace it")
            _remove(old)
            path.rename(old)
            try:
                tmp.rename(path)
            except BaseException:
                old.rename(path)
                raise
        else:
            tmp.rename(path)
        fsync_directory(path.parent)
    finally:
        with contextlib.suppress(OSError):
            _remove(tmp)
    _remove(old)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def write_text(path: Path, text: str) -> str:
    """Write a text file atomically (UTF-8); returns its sha256."""
    return write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_parquet(path: Path, table: pa.Table, *, compression: str = "zstd") -> str:
    """Write a Parquet file atomically (zstd unless told, statistics); returns its sha256.

    The same table always gives the same bytes, so a task that runs twice writes the same file.
    """
    return write_atomic(
        path,
        lambda tmp: pq.write_table(table, tmp, compression=compression, write_statistics=True),
    )


def claim_folder(folder: Path, *, what: str) -> None:
    """Make an output folder and prove it writable, or refuse it with one line (OutputError)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-check."):
            pass
    except OSError as exc:
        raise OutputError(
            f"{folder}: cannot write the {what} ({exc.strerror or exc}); choose a writable folder"
        ) from None


def fsync_directory(folder: Path) -> None:
    """Make a rename inside a folder durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def file_digest(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    with Path(path).open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def canonical_hash(value: Any) -> str:
    """sha256 of a JSON rendering with sorted keys: stable across runs, machines and dict order."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()
