"""One family of errors: each class its own exit status, OS errors named in one line."""

from __future__ import annotations

import errno
import inspect

import pytest

from lensflow import errors
from lensflow.errors import (
    EXIT_CODES,
    ClusterError,
    LensflowError,
    MissingInputError,
    OutputError,
    PermissionDeniedError,
    StorageError,
    exit_code_of,
    from_os_error,
)

CLASSES = [
    cls for _, cls in inspect.getmembers(errors, inspect.isclass) if issubclass(cls, LensflowError)
]


def test_every_error_class_has_a_documented_exit_status() -> None:
    assert len(CLASSES) >= 20
    for cls in CLASSES:
        assert cls.exit_code in EXIT_CODES, cls
        assert cls.exit_code not in (0, 1, 2), f"{cls.__name__}: 0-2 mean done/bug/partial"
    assert len(set(EXIT_CODES)) == len(EXIT_CODES)
    assert errors.EXIT_USAGE == 64 and errors.EXIT_PARTIAL == 2, "usage never reads as partial"


@pytest.mark.parametrize(
    ("code", "cls", "status", "advice"),
    [
        (errno.ENOSPC, StorageError, 74, "free space"),
        (errno.EACCES, PermissionDeniedError, 77, "permissions"),
        (errno.EROFS, OutputError, 73, "writable folder"),
        (errno.ENOENT, MissingInputError, 66, "check the path"),
        (errno.ECONNREFUSED, ClusterError, 69, "scheduler"),
        (errno.ETIMEDOUT, ClusterError, 69, "scheduler"),
    ],
)
def test_os_errors_become_one_line_with_path_and_advice(
    code: int, cls: type[LensflowError], status: int, advice: str
) -> None:
    raised = OSError(code, errno.errorcode[code].lower(), "/data/scan/markers/x.json")
    error = from_os_error(raised, what="writing a marker")
    assert type(error) is cls and error.exit_code == status == exit_code_of(raised)
    text = str(error)
    assert "\n" not in text
    assert text.startswith("writing a marker: /data/scan/markers/x.json: ")
    assert advice in text


def test_errors_without_an_errno_are_read_by_their_message() -> None:
    arrow = OSError("IOError: No space left on device. Detail: [errno 28]")
    assert isinstance(from_os_error(arrow), StorageError)
    dask = OSError("Timed out trying to connect to tls://scheduler:8786 after 30 s")
    joined = from_os_error(dask)
    assert isinstance(joined, ClusterError) and "tls://scheduler:8786" in str(joined)
    assert exit_code_of(KeyboardInterrupt()) == 130
    assert exit_code_of(ZeroDivisionError()) == 1


def test_the_readme_table_lists_every_exit_status() -> None:
    from pathlib import Path

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    for code, meaning in EXIT_CODES.items():
        assert f"| {code} | {meaning} |" in readme
