"""One writer per scan folder: the lock names its holder, dies with it, is always released."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from distributed import Client

from lensflow.errors import FolderInUseError, ScanStateError
from lensflow.scan import run_scan
from lensflow.scan.lock import HOLDER_FILE, acquire, read_holder
from lensflow.scan.run import build_context, run_context
from lensflow.scan.state import Marker, read_markers, write_marker
from lensflow.simulate.mock_sky import MockSky
from lensflow.sky import pixel_key
from lensflow.testing import sky_config

pytestmark = pytest.mark.faults


def test_a_second_holder_is_refused_with_host_pid_and_start(tmp_path: Path) -> None:
    with acquire(tmp_path) as lock:
        with pytest.raises(FolderInUseError) as caught:
            acquire(tmp_path)
        message = str(caught.value)
        assert f"pid {os.getpid()}" in message
        assert f"host {lock.holder.host}" in message
        assert f"started {lock.holder.started}" in message
    assert not (tmp_path / HOLDER_FILE).exists(), "release removes the holder record"
    with acquire(tmp_path):  # free again
        pass


def test_a_lock_whose_holder_died_is_taken_over_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import sys, time; from pathlib import Path; from lensflow.scan.lock import acquire; "
                "lock = acquire(Path(sys.argv[1])); print('held', flush=True); time.sleep(60)"
            ),
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(FolderInUseError, match=f"pid {holder.pid}"):
            acquire(tmp_path)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    stale = read_holder(tmp_path)
    assert stale is not None and stale.pid == holder.pid, "a killed holder leaves its record"
    with caplog.at_level(logging.WARNING, logger="lensflow.scan.lock"), acquire(tmp_path) as lock:
        assert lock.holder.pid == os.getpid()
    assert f"pid {holder.pid}" in caplog.text and "gone" in caplog.text


def test_the_lock_is_released_when_a_scan_is_refused_or_fails(
    mock_sky: MockSky, tmp_path: Path
) -> None:
    output = tmp_path / "scan"
    config = sky_config(mock_sky, output)
    context = build_context(config)
    assert context.lock is not None and context.lock.held
    with pytest.raises(FolderInUseError):
        build_context(config)

    class Broken:
        def submit(self, *args: object, **kwargs: object) -> None:
            raise RuntimeError("the cluster went away")

        scatter = submit

    with pytest.raises(RuntimeError):
        run_context(context, client=Broken())  # type: ignore[arg-type]
    assert not context.lock.held
    write_marker(output, Marker(pixel=pixel_key(mock_sky.pixels[0]), status="failed"))
    changed = sky_config(mock_sky, output, cuts={"expression": "rKronMag < 21"})
    with pytest.raises(ScanStateError, match="different config"):
        build_context(changed)  # refused after the lock was taken: released again
    build_context(config).lock.release()  # type: ignore[union-attr]


def test_two_scans_at_once_on_one_folder_run_one(
    mock_sky: MockSky, dask_client: Client, tmp_path: Path
) -> None:
    output = tmp_path / "scan"
    outcomes: list[object] = []

    def scan() -> None:
        try:
            outcomes.append(run_scan(sky_config(mock_sky, output), client=dask_client))
        except ScanStateError as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=scan) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    refused = [o for o in outcomes if isinstance(o, FolderInUseError)]
    assert len(refused) == 1, outcomes
    assert "in use by another lensflow scan" in str(refused[0])
    markers = read_markers(output)
    assert len(markers) == len(mock_sky.pixels) and all(m.status == "done" for m in markers)
    assert not list(output.rglob("*.tmp"))
