"""`lensflow scan` on `[cluster] kind = "slurm"`: workers are SLURM jobs, results a local scan's."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from distributed import Client

from lensflow.scan import run_scan
from lensflow.scan.state import Marker
from lensflow.scan.status import read_status
from lensflow.simulate.mock_sky import MockSky
from lensflow.testing import sky_config
from tests.cluster.slurm import Slurm

WORKER_JOBS = 2


def lensflow_command() -> str:
    """The `lensflow` script of this environment, as a user runs it."""
    script = Path(sys.executable).with_name("lensflow")
    found = str(script) if script.exists() else shutil.which("lensflow")
    if found is None:
        pytest.fail("no `lensflow` command: install the package (make install)", pytrace=False)
    return found


def run_watching_squeue(
    args: list[str], slurm: Slurm, *, cwd: Path, timeout: float
) -> tuple[int, str, dict[str, set[tuple[str, str]]]]:
    """Run `args` to the end, polling squeue meanwhile.

    Returns the exit status, the output and each job squeue listed: id -> {(name, state)}.
    """
    log = cwd / "command.log"
    seen: dict[str, set[tuple[str, str]]] = {}
    with log.open("wb") as out:
        process = subprocess.Popen(args, cwd=cwd, env=slurm.env, stdout=out, stderr=out)
        deadline = time.monotonic() + timeout
        while process.poll() is None:
            if time.monotonic() > deadline:
                process.kill()
                process.wait()
                pytest.fail(f"`lensflow scan` ran past {timeout:.0f} s:\n{log.read_text()}")
            for job, listed in slurm.jobs().items():
                seen.setdefault(job, set()).add(listed)
            time.sleep(0.25)
    return process.returncode, log.read_text(), seen


def marker_row(marker: Marker) -> tuple[Any, ...]:
    """What a partition's scan found, without where or how long it ran."""
    return (
        marker.pixel,
        marker.status,
        marker.rows_read,
        marker.rows_after_cuts,
        marker.rows_after_photometry,
        marker.candidates,
        dict(marker.rejected),
        marker.sha256,
    )


def test_a_scan_on_slurm_finds_what_a_local_scan_finds(
    slurm: Slurm, mock_sky: MockSky, dask_client: Client, tmp_path: Path
) -> None:
    pytest.importorskip("dask_jobqueue", reason="dask-jobqueue runs [cluster] kind slurm")
    from lensflow.cluster_slurm import JOB_NAME

    local = run_scan(sky_config(mock_sky, tmp_path / "local"), client=dask_client)
    assert local.exit_status == 0

    config = sky_config(mock_sky, tmp_path / "slurm").to_toml_dict()
    config["cluster"] = {
        "kind": "slurm",
        "n_workers": WORKER_JOBS,
        "dashboard": False,
        "slurm": {
            "queue": slurm.partition,
            "cores": 1,
            "memory": "2GiB",
            "walltime": "00:10:00",
            "python": sys.executable,
            "local_directory": str(tmp_path / "workers"),
            "start_timeout": 60.0,
        },
    }
    (tmp_path / "slurm.toml").write_text(tomli_w.dumps(config))
    before = set(slurm.jobs())

    start = time.perf_counter()
    status, output, seen = run_watching_squeue(
        [lensflow_command(), "scan", str(tmp_path / "slurm.toml")],
        slurm,
        cwd=tmp_path,
        timeout=240.0,
    )
    seconds = time.perf_counter() - start
    assert status == 0, output

    jobs = {job: listed for job, listed in seen.items() if job not in before}
    assert len(jobs) == WORKER_JOBS, f"squeue showed jobs {jobs} during the scan"
    assert all((JOB_NAME, "RUNNING") in listed for listed in jobs.values()), jobs
    on_slurm, on_local = read_status(tmp_path / "slurm"), read_status(tmp_path / "local")
    assert on_slurm.totals == on_local.totals
    assert on_slurm.totals["done"] == on_slurm.totals["partitions"] > 0
    assert [marker_row(m) for m in on_slurm.markers] == [marker_row(m) for m in on_local.markers]

    deadline = time.monotonic() + 20.0
    while set(jobs) & set(slurm.jobs()) and time.monotonic() < deadline:
        time.sleep(0.25)
    assert not set(jobs) & set(slurm.jobs()), "the worker jobs outlived the scan"
    print(f"slurm scan: {seconds:.1f} s, jobs {sorted(jobs)}, totals {on_slurm.totals}")
