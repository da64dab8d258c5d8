"""The test SLURM itself: a batch job runs, and dask-jobqueue's workers come up as SLURM jobs."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from tests.cluster.slurm import Slurm

FINISHED = ("COMPLETED", "CANCELLED", "FAILED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY")


def wait_for_state(slurm: Slurm, job: str, *, timeout: float = 30.0) -> str:
    """A job's state once it has finished (or the last seen after `timeout` seconds)."""
    deadline = time.monotonic() + timeout
    while (state := slurm.job_state(job)) not in FINISHED and time.monotonic() < deadline:
        time.sleep(0.2)
    return state


def test_a_batch_job_runs_on_the_node(slurm: Slurm, tmp_path: Path) -> None:
    out = tmp_path / "job.out"
    job = slurm.run(
        "sbatch",
        "--parsable",
        f"--partition={slurm.partition}",
        f"--output={out}",
        "--wrap",
        'echo "job $SLURM_JOB_ID on $(hostname -s)"; sleep 1',
    ).strip()
    assert job.isdigit(), job
    assert job in slurm.jobs(), "squeue does not list the job just submitted"
    assert wait_for_state(slurm, job) == "COMPLETED"
    words = out.read_text().split()
    assert words[:3] == ["job", job, "on"], words
    if slurm.owned:  # the one node this host is
        assert words[3:] == [slurm.node]
    assert job not in slurm.jobs()


def test_dask_jobqueue_workers_are_slurm_jobs(slurm: Slurm, tmp_path: Path) -> None:
    dask_jobqueue = pytest.importorskip("dask_jobqueue")
    from distributed import Client

    with (
        dask_jobqueue.SLURMCluster(
            queue=slurm.partition,
            cores=1,
            processes=1,
            memory="1GiB",
            walltime="00:05:00",
            python=sys.executable,
            log_directory=str(tmp_path / "logs"),
            local_directory=str(tmp_path / "work"),
            scheduler_options={"host": "127.0.0.1", "dashboard_address": None},
            worker_extra_args=["--host", "127.0.0.1"],
        ) as cluster,
        Client(cluster) as client,
    ):
        cluster.scale(jobs=1)
        client.wait_for_workers(1, timeout=60)
        (job,) = [worker.job_id for worker in cluster.workers.values()]
        assert slurm.jobs()[job][1] == "RUNNING"
        seen = client.submit(lambda: os.environ.get("SLURM_JOB_ID"), pure=False).result(timeout=30)
        assert seen == job, "the task did not run inside the SLURM job dask-jobqueue submitted"
    assert wait_for_state(slurm, job) in ("CANCELLED", "COMPLETED")
    assert job not in slurm.jobs()
