"""Workers as SLURM batch jobs, through dask-jobqueue's SLURMCluster ([cluster] kind "slurm").

The scheduler runs here (the submit host, where `lensflow scan` runs), bound to
[cluster.slurm] host (127.0.0.1 unless told otherwise; the compute nodes must reach it) or
to an interface; its dashboard stays on loopback. Each job runs `processes` workers on `cores`
cores; [cluster] n_workers is the number of jobs. `job_script` prints the script a job runs
without starting a scheduler or submitting anything.
"""

from __future__ import annotations

import logging
import shlex
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from distributed import Client

from lensflow.cluster_config import ClusterConfig, worker_environ
from lensflow.cluster_security import is_loopback, tls_security
from lensflow.errors import ClusterError, ConfigError

logger = logging.getLogger(__name__)

JOB_NAME = "lensflow-worker"
SCHEDULER_PLACEHOLDER = "{protocol}://<scheduler-address>:<port>"
"""What the printed job script names as the scheduler: its port is chosen when it starts."""


def worker_arguments(resources: dict[str, float]) -> list[str]:
    """`dask worker` options advertising resources, e.g. ["--resources", "GPU=1"]."""
    if not resources:
        return []
    return ["--resources", ",".join(f"{name}={amount:g}" for name, amount in resources.items())]


def job_options(cluster: ClusterConfig, *, check: bool = True) -> dict[str, Any]:
    """The keyword arguments of dask-jobqueue's SLURMJob (and SLURMCluster) for [cluster.slurm].

    check: refuse [cluster.tls] files that are not there (off for printing the script).
    """
    slurm = cluster.slurm_settings
    options: dict[str, Any] = {
        "job_name": JOB_NAME,
        "queue": slurm.queue,
        "account": slurm.account,
        "walltime": slurm.walltime,
        "cores": slurm.cores,
        "memory": slurm.memory,
        "processes": slurm.processes,
        "job_extra_directives": list(slurm.job_extra),
        "worker_extra_args": worker_arguments(slurm.worker_resources),
        "local_directory": None if slurm.local_directory is None else str(slurm.local_directory),
        "python": slurm.python,
        "interface": slurm.interface,
        "job_script_prologue": [
            f"export {name}={shlex.quote(value)}" for name, value in worker_environ(cluster).items()
        ],
    }
    if cluster.tls is not None:
        options |= {"protocol": "tls://", "security": tls_security(cluster.tls, check=check)}
    return {key: value for key, value in options.items() if value is not None}


def job_script(cluster: ClusterConfig) -> str:
    """The batch script each worker job runs, as `sbatch` would get it; nothing is started.

    The scheduler's address is a placeholder: its port is known once it listens.
    """
    from dask_jobqueue.slurm import SLURMJob

    options = job_options(cluster, check=False)
    protocol = "tls" if cluster.tls is not None else "tcp"
    address = SCHEDULER_PLACEHOLDER.format(protocol=protocol)
    try:
        job = SLURMJob(scheduler=address, name="worker", **options)  # type: ignore[no-untyped-call]
        return str(job.job_script())  # type: ignore[no-untyped-call]
    except ValueError as exc:
        raise ConfigError(f"[cluster.slurm]: {exc}") from None


def scheduler_options(cluster: ClusterConfig, *, insecure: bool) -> dict[str, Any]:
    """Where the scheduler listens: the configured host or interface; dashboard on loopback."""
    slurm = cluster.slurm_settings
    where: dict[str, Any] = {"interface": slurm.interface} if slurm.interface else {}
    if not where:
        where = {"host": slurm.host}
    remote = bool(slurm.interface) or not is_loopback(slurm.host)
    if remote and cluster.tls is None and not insecure:
        raise ConfigError(
            f"the SLURM scheduler would listen on {slurm.interface or slurm.host} over plain "
            "TCP, where anyone on the network can run code on it; add [cluster.tls] "
            "certificates or pass --insecure on a trusted network"
        )
    return {**where, "dashboard_address": "127.0.0.1:0"}


def queue_status(job_ids: list[str]) -> str:
    """squeue's view of the jobs (state and reason), or why it cannot be had."""
    squeue = shutil.which("squeue")
    if squeue is None:
        return "squeue is not on PATH"
    if not job_ids:
        return "no job was submitted"
    try:
        done = subprocess.run(
            [squeue, "--noheader", "--jobs", ",".join(job_ids), "--format", "%i %T %R"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"squeue failed: {exc}"
    lines = [line.strip() for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    return "; ".join(lines) or "squeue lists none of them (finished or failed at start)"


def wait_for_a_worker(client: Client, cluster: Any, *, timeout: float) -> None:
    """Wait until a worker job has joined; otherwise fail naming the jobs' queue state."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.scheduler_info(n_workers=-1)["workers"]:
            return
        time.sleep(0.5)
    job_ids = sorted(str(job.job_id) for job in cluster.workers.values() if job.job_id)
    raise ClusterError(
        f"no SLURM worker joined within {timeout:g} s (jobs {', '.join(job_ids) or 'none'}: "
        f"{queue_status(job_ids)}); check the queue, account and [cluster.slurm] host, which "
        "the compute nodes must reach (raise start_timeout for a busy queue)"
    )


@contextmanager
def slurm_client(cluster: ClusterConfig, *, insecure: bool = False) -> Iterator[Client]:
    """A Client on a SLURMCluster whose `n_workers` jobs (default 1) are submitted now."""
    from dask_jobqueue.slurm import SLURMCluster

    if shutil.which("sbatch") is None:
        raise ClusterError('[cluster] kind "slurm": sbatch is not on PATH on this host')
    options = job_options(cluster)
    where = scheduler_options(cluster, insecure=insecure)
    try:
        slurm = SLURMCluster(scheduler_options=where, **options)
    except ValueError as exc:
        raise ConfigError(f"[cluster.slurm]: {exc}") from None
    with slurm, Client(slurm, security=options.get("security")) as client:
        jobs = cluster.n_workers or 1
        slurm.scale(jobs=jobs)  # type: ignore[no-untyped-call]
        logger.info("submitted %d SLURM job(s); scheduler at %s", jobs, slurm.scheduler_address)
        wait_for_a_worker(client, slurm, timeout=cluster.slurm_settings.start_timeout)
        yield client
