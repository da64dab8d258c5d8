"""The one atomic writer, file digests and the canonical hash."""

from __future__ import annotations

import errno
import hashlib
import threading
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lensflow.errors import OutputError
from lensflow.io import (
    canonical_hash,
    claim_folder,
    file_digest,
    write_atomic,
    write_folder_atomic,
    write_parquet,
    write_text,
)

pytestmark = pytest.mark.faults


def test_canonical_hash_ignores_key_order() -> None:
    assert canonical_hash({"a": 1, "b": [1, 2]}) == canonical_hash({"b": [1, 2], "a": 1})
    assert canonical_hash({"a": 1}) != canonical_hash({"a": 2})


def test_write_atomic_replaces_and_returns_the_digest(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "folder" / "file.txt"
    first = write_text(target, "one")
    second = write_text(target, "two")
    assert target.read_text() == "two"
    assert second == hashlib.sha256(b"two").hexdigest() == file_digest(target)
    assert first != second
    assert sorted(p.name for p in target.parent.iterdir()) == ["file.txt"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "file.txt"
    write_text(target, "kept")

    def broken(tmp: Path) -> None:
        tmp.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomic(target, broken)
    assert target.read_text() == "kept"
    assert [p.name for p in tmp_path.iterdir()] == ["file.txt"]


def test_write_parquet_is_deterministic(tmp_path: Path) -> None:
    table = pa.table({"id": pa.array([3, 1, 2], pa.int64())})
    a = write_parquet(tmp_path / "a.parquet", table)
    b = write_parquet(tmp_path / "b.parquet", table)
    assert a == b
    assert pq.read_table(tmp_path / "a.parquet").equals(table)


def test_claim_folder_makes_it_or_refuses_in_one_line(tmp_path: Path) -> None:
    claim_folder(tmp_path / "new" / "out", what="output")
    assert (tmp_path / "new" / "out").is_dir()
    assert list((tmp_path / "new" / "out").iterdir()) == []
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match=r"file/out: cannot write the output \(.+\)"):
        claim_folder(tmp_path / "file" / "out", what="output")


@pytest.mark.parametrize(
    "failure",
    [
        OSError(errno.ENOSPC, "No space left on device"),
        OSError(errno.EROFS, "Read-only file system"),
        KeyboardInterrupt(),
    ],
)
def test_every_failed_write_leaves_no_temp(tmp_path: Path, failure: BaseException) -> None:
    def broken(tmp: Path) -> None:
        tmp.write_bytes(b"")  # the zero-byte temp a full disk leaves
        raise failure

    with pytest.raises(type(failure)):
        write_atomic(tmp_path / "marker.json", broken)
    assert list(tmp_path.iterdir()) == []


def test_a_folder_is_swapped_in_whole(tmp_path: Path) -> None:
    target = tmp_path / "export"

    def build(names: list[str]) -> object:
        return lambda tmp: [write_text(tmp / name, name) for name in names]

    write_folder_atomic(target, build(["a", "b", "c"]), replace=False)
    with pytest.raises(OutputError, match="exists; pass --overwrite"):
        write_folder_atomic(target, build(["d"]), replace=False)
    assert sorted(p.name for p in target.iterdir()) == ["a", "b", "c"]
    write_folder_atomic(target, build(["d"]), replace=True)
    assert [p.name for p in target.iterdir()] == ["d"], "nothing of the old folder is left"

    def broken(tmp: Path) -> None:
        write_text(tmp / "e", "e")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        write_folder_atomic(target, broken, replace=True)
    assert [p.name for p in target.iterdir()] == ["d"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"], "no temp or old folder"


def test_threads_of_one_process_claim_and_write_side_by_side(tmp_path: Path) -> None:
    """Dask runs tasks in threads of one worker: their probes and temp files never collide."""
    folder = tmp_path / "out"
    errors: list[Exception] = []

    def work(n: int) -> None:
        try:
            for i in range(50):
                claim_folder(folder, what="scan folder")
                write_text(folder / "shared.txt", f"{n}-{i}")
        except (OSError, OutputError) as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]
