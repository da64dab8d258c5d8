"""The [cluster] section: four kinds, the old `scheduler` key alone, unknown keys named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lensflow.cluster_config import ClusterConfig
from lensflow.config import PlanConfig
from lensflow.errors import ConfigError

CATALOG = {"path": "catalog", "columns": {"id": "id", "ra": "ra", "dec": "dec"}}


def _plan(cluster: dict[str, Any], base: Path) -> PlanConfig:
    return PlanConfig.from_dict({"catalog": CATALOG, "cluster": cluster}, base=base)


def test_the_kind_defaults_to_local_and_a_scheduler_alone_means_address(tmp_path: Path) -> None:
    assert _plan({}, tmp_path).cluster.kind_name == "local"
    joined = _plan({"scheduler": "tls://host:8786"}, tmp_path).cluster
    assert joined.kind_name == "address" and joined.scheduler == "tls://host:8786"
    for kind in ("local", "slurm", "kubernetes"):
        assert _plan({"kind": kind}, tmp_path).cluster.kind_name == kind


def test_a_command_line_scheduler_wins_over_the_kind() -> None:
    config = ClusterConfig(kind="slurm").model_copy(update={"scheduler": "tcp://127.0.0.1:1"})
    assert config.kind_name == "address"
    assert ClusterConfig(kind="kubernetes").joining("tls://h:1").kind_name == "address"


@pytest.mark.parametrize(
    ("cluster", "message"),
    [
        ({"kind": "address"}, r'kind "address" needs scheduler'),
        ({"kind": "slurm", "scheduler": "tcp://h:1"}, r"scheduler is for kind \"address\""),
        ({"kind": "pbs"}, r"cluster\.kind: Input should be 'local', 'address'"),
        ({"slurm": {"queu": "gpu"}}, r"unknown key cluster\.slurm\.queu; did you mean .*queue\?"),
        ({"tls": {"ca": "x"}}, r"unknown key cluster\.tls\.ca"),
        ({"kubernetes": {"gpu_worker": 1}}, r"did you mean cluster\.kubernetes\.gpu_workers\?"),
        ({"kubernetes": {"name": "Lens_Flow"}}, r"cluster\.kubernetes\.name: String should"),
        ({"kubernetes": {"cpu": 2}}, r"cluster\.kubernetes\.cpu: Input should be a valid string"),
        ({"slurm": {"walltime": "two hours"}}, r"cluster\.slurm\.walltime: String should"),
        ({"slurm": {"worker_resources": {"GPU": 0}}}, r"worker_resources must be positive"),
        ({"n_workers": 0}, r"cluster\.n_workers: Input should be greater than 0"),
    ],
)
def test_bad_cluster_settings_are_named(
    cluster: dict[str, Any], message: str, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match=message):
        _plan(cluster, tmp_path)


def test_relative_paths_resolve_against_the_configs_folder(tmp_path: Path) -> None:
    cluster = _plan(
        {
            "kind": "slurm",
            "tls": {"ca_file": "certs/ca.pem", "cert_file": "/etc/lens/cert.pem"},
            "slurm": {"local_directory": "spill", "python": "/opt/lens/bin/python"},
        },
        tmp_path,
    ).cluster
    assert cluster.tls is not None
    assert cluster.tls.ca_file == tmp_path.resolve() / "certs/ca.pem"
    assert cluster.tls.cert_file == Path("/etc/lens/cert.pem") and cluster.tls.key_file is None
    assert cluster.slurm_settings.local_directory == tmp_path.resolve() / "spill"
    assert cluster.slurm_settings.python == "/opt/lens/bin/python"  # a command, kept as written


def test_the_sections_have_working_defaults() -> None:
    config = ClusterConfig(kind="kubernetes")
    k8s = config.kubernetes_settings
    assert (k8s.name, k8s.namespace, k8s.cpu_workers, k8s.gpu_workers) == (
        "lensflow",
        "default",
        4,
        1,
    )
    slurm = ClusterConfig(kind="slurm").slurm_settings
    assert (slurm.host, slurm.cores, slurm.processes, slurm.interface) == ("127.0.0.1", 1, 1, None)
