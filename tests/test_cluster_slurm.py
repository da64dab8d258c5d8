"""SLURM through dask-jobqueue: the job script from [cluster.slurm], checked against the one a
real SLURMCluster makes, and the refusals before anything is submitted. (A scan on a real
single-node SLURM lives with the SLURM test fixture.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from distributed.security import Security

from lensflow.cluster import connect, worker_environ
from lensflow.cluster_config import ClusterConfig
from lensflow.cluster_slurm import (
    JOB_NAME,
    job_options,
    job_script,
    queue_status,
    scheduler_options,
    worker_arguments,
)
from lensflow.errors import ClusterError, ConfigError

dask_jobqueue = pytest.importorskip("dask_jobqueue")


def _gpu_jobs(tmp_path: Path, **changes: object) -> ClusterConfig:
    slurm = {
        "queue": "gpu",
        "account": "lens-survey",
        "walltime": "02:00:00",
        "cores": 4,
        "memory": "16GiB",
        "processes": 1,
        "job_extra": ["--gres=gpu:1"],
        "worker_resources": {"GPU": 1},
        "local_directory": str(tmp_path / "spill"),
        "python": "/opt/lensflow/bin/python",
        **changes,
    }
    return ClusterConfig.model_validate({"kind": "slurm", "n_workers": 3, "slurm": slurm})


def test_the_job_script_carries_every_setting(tmp_path: Path) -> None:
    script = job_script(_gpu_jobs(tmp_path))
    directives = [line for line in script.splitlines() if line.startswith("#SBATCH")]
    assert directives == [
        f"#SBATCH -J {JOB_NAME}",
        "#SBATCH -p gpu",
        "#SBATCH -A lens-survey",
        "#SBATCH -n 1",
        "#SBATCH --cpus-per-task=4",
        "#SBATCH --mem=16G",
        "#SBATCH -t 02:00:00",
        "#SBATCH --gres=gpu:1",
    ]
    (command,) = [line for line in script.splitlines() if "dask_worker" in line]
    words = command.split()
    assert words[:3] == ["/opt/lensflow/bin/python", "-m", "distributed.cli.dask_worker"]
    assert words[3] == "tcp://<scheduler-address>:<port>"
    assert words[words.index("--resources") + 1] == "GPU=1"
    assert words[words.index("--nthreads") + 1] == "4"
    assert words[words.index("--local-directory") + 1] == str(tmp_path / "spill")


def test_the_workers_get_lensflows_dask_settings_and_malloc_thresholds(tmp_path: Path) -> None:
    config = _gpu_jobs(tmp_path, processes=1)
    exports = dict(
        line.removeprefix("export ").split("=", 1)
        for line in job_script(config).splitlines()
        if line.startswith("export ")
    )
    assert exports == worker_environ(config)


def test_the_printed_script_is_the_one_a_slurm_cluster_submits(tmp_path: Path) -> None:
    config = _gpu_jobs(tmp_path)
    where = scheduler_options(config, insecure=False)
    with dask_jobqueue.SLURMCluster(scheduler_options=where, **job_options(config)) as cluster:
        address = cluster.scheduler_address
        assert address.startswith("tcp://127.0.0.1:")
        real = cluster.job_script().replace("dummy-name", "worker")
    assert real == job_script(config).replace("tcp://<scheduler-address>:<port>", address)


def test_a_cpu_job_has_no_gpu_resource(tmp_path: Path) -> None:
    config = _gpu_jobs(tmp_path, job_extra=[], worker_resources={}, processes=2)
    script = job_script(config)
    assert "--resources" not in script and "--gres" not in script
    assert "--nworkers 2" in script  # two worker processes per job, two threads each
    assert worker_arguments({"GPU": 1, "MEM": 2.5}) == ["--resources", "GPU=1,MEM=2.5"]


def test_tls_certificates_reach_the_workers(tmp_path: Path) -> None:
    security = Security.temporary()
    files = {}
    for key, pem in (("ca_file", security.tls_ca_file), ("cert_file", security.tls_client_cert)):
        (tmp_path / f"{key}.pem").write_text(pem)
        files[key] = str(tmp_path / f"{key}.pem")
    raw = {"kind": "slurm", "tls": files, "slurm": {"host": "10.1.2.3"}}
    config = ClusterConfig.model_validate(raw)
    script = job_script(config)
    assert "tls://<scheduler-address>:<port>" in script
    assert f"--tls-ca-file {files['ca_file']}" in script
    assert f"--tls-cert {files['cert_file']}" in script
    assert scheduler_options(config, insecure=False)["host"] == "10.1.2.3"


def test_a_scheduler_on_the_network_needs_tls_or_insecure() -> None:
    config = ClusterConfig.model_validate({"kind": "slurm", "slurm": {"host": "10.1.2.3"}})
    with pytest.raises(ConfigError, match=r"10\.1\.2\.3 over plain TCP.*--insecure"):
        scheduler_options(config, insecure=False)
    assert scheduler_options(config, insecure=True) == {
        "host": "10.1.2.3",
        "dashboard_address": "127.0.0.1:0",
    }
    by_interface = ClusterConfig.model_validate({"kind": "slurm", "slurm": {"interface": "ib0"}})
    with pytest.raises(ConfigError, match="ib0 over plain TCP"):
        scheduler_options(by_interface, insecure=False)


def test_a_host_without_sbatch_is_told_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with (
        pytest.raises(ClusterError, match="sbatch is not on PATH"),
        connect(ClusterConfig(kind="slurm")),
    ):
        pass
    assert queue_status(["1"]) == "squeue is not on PATH"
