"""Faults during a scan: a worker killed mid-scan costs only a retry of its partitions."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from distributed import Client

from lensflow.scan import run_scan
from lensflow.scan.state import read_markers
from lensflow.simulate.mock_sky import MockSky
from tests.conftest import loopback_cluster
from tests.scan_helpers import sky_config


def test_sigkill_of_a_worker_mid_scan(mock_sky: MockSky, tmp_path: Path) -> None:
    with loopback_cluster() as cluster, Client(cluster) as client:
        pids = list(client.run(os.getpid).values())
        killed: list[int] = []

        def kill_once(done: int, total: int, result: object) -> None:
            if done == 3 and not killed:
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])

        outcome = run_scan(
            sky_config(mock_sky, tmp_path / "scan"), client=client, progress=kill_once
        )
    assert killed, "the scan finished before a worker could be killed"
    markers = read_markers(tmp_path / "scan")
    assert outcome.failed == 0
    assert all(m.status == "done" for m in markers)
    assert len(markers) == len(mock_sky.pixels)
    assert not list((tmp_path / "scan").rglob("*.tmp"))


def test_allowed_failures_is_set_explicitly() -> None:
    import dask

    from lensflow.config import ClusterConfig
    from lensflow.scan.cluster import connect

    with connect(ClusterConfig(n_workers=1, allowed_failures=5, dashboard=False)) as client:
        value = client.run_on_scheduler(
            lambda: dask.config.get("distributed.scheduler.allowed-failures")
        )
    assert value == 5
