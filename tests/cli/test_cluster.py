"""`lensflow cluster show`: the job script, the manifests or a description; nothing submitted.
The shipped deploy/ recipes are checked against what it prints, so they never drift."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lensflow.cli import app
from lensflow.config import PlanConfig
from lensflow.errors import EXIT_CONFIG

runner = CliRunner()
DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
CATALOG = '[catalog]\npath = "catalog"\ncolumns = { id = "id", ra = "ra", dec = "dec" }\n'


def _config(tmp_path: Path, cluster: str) -> Path:
    path = tmp_path / "scan.toml"
    path.write_text(CATALOG + cluster)
    return path


def test_a_local_cluster_is_described(tmp_path: Path) -> None:
    result = runner.invoke(app, ["cluster", "show", str(_config(tmp_path, ""))])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("kind local: ") and "127.0.0.1" in result.stdout
    assert "allowed_failures 2" in result.stdout


def test_an_address_is_described_with_its_security(tmp_path: Path) -> None:
    tls = '[cluster]\nscheduler = "tls://sched:8786"\n[cluster.tls]\nca_file = "ca.pem"\n'
    result = runner.invoke(
        app, ["cluster", "show", str(_config(tmp_path, tls + 'cert_file = "me.pem"\n'))]
    )
    assert result.exit_code == 0, result.output
    assert "joins the running Dask scheduler at tls://sched:8786 over TLS" in result.stdout
    assert str(tmp_path.resolve() / "ca.pem") in result.stdout
    plain = _config(tmp_path, '[cluster]\nscheduler = "tcp://sched:8786"\n')
    assert "needs --insecure" in runner.invoke(app, ["cluster", "show", str(plain)]).stdout


def test_the_slurm_recipe_parses_and_prints_its_job_script() -> None:
    config = PlanConfig.from_toml(DEPLOY / "slurm" / "scan.toml")
    cluster = config.cluster
    assert cluster.kind_name == "slurm" and cluster.n_workers == 4 and cluster.tls is not None
    assert cluster.slurm_settings.worker_resources == {"GPU": 1.0}
    result = runner.invoke(app, ["cluster", "show", str(DEPLOY / "slurm" / "scan.toml")])
    assert result.exit_code == 0, result.output
    from lensflow.cluster_slurm import job_script

    assert result.stdout == job_script(cluster)
    assert "#SBATCH --gres=gpu:1" in result.stdout and "--resources GPU=1" in result.stdout
    assert "--tls-ca-file" in result.stdout and "4 job(s)" in result.stderr


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_the_driver_batch_script_is_valid_bash() -> None:
    script = DEPLOY / "slurm" / "scan.sbatch"
    assert subprocess.run(["bash", "-n", str(script)], check=False).returncode == 0
    text = script.read_text()
    assert "#SBATCH --job-name=lensflow-scan" in text and 'lensflow scan "$CONFIG"' in text


def test_the_shipped_kubernetes_manifests_are_what_show_prints() -> None:
    yaml = pytest.importorskip("yaml")
    pytest.importorskip("dask_kubernetes")
    from lensflow.cluster_kubernetes import manifest_problems

    result = runner.invoke(app, ["cluster", "show", str(DEPLOY / "kubernetes" / "scan.toml")])
    assert result.exit_code == 0, result.output
    shipped = (DEPLOY / "kubernetes" / "cluster.yaml").read_text()
    assert result.stdout == shipped, "regenerate: lensflow cluster show deploy/kubernetes/..."
    documents = list(yaml.safe_load_all(shipped))
    assert [d["kind"] for d in documents] == ["DaskCluster", "DaskWorkerGroup"]
    assert all(manifest_problems(d) == [] for d in documents)


def test_the_driver_job_matches_the_example_config() -> None:
    yaml = pytest.importorskip("yaml")
    k8s = PlanConfig.from_toml(DEPLOY / "kubernetes" / "scan.toml").cluster.kubernetes_settings
    job, policy = yaml.safe_load_all((DEPLOY / "kubernetes" / "driver.yaml").read_text())
    assert job["kind"] == "Job" and job["metadata"]["namespace"] == k8s.namespace
    pod = job["spec"]["template"]["spec"]
    (driver,) = pod["containers"]
    assert driver["image"] == k8s.image
    args = driver["args"]
    assert args[:3] == ["lensflow", "scan", "/config/scan.toml"]
    scheduler = f"tcp://{k8s.name}-scheduler.{k8s.namespace}.svc:8786"  # the operator's Service
    assert args[args.index("--scheduler") + 1] == scheduler
    claims = {v["name"]: v.get("persistentVolumeClaim", {}) for v in pod["volumes"]}
    assert claims["data"] == {"claimName": k8s.volume_claim}
    mounts = {m["name"]: m["mountPath"] for m in driver["volumeMounts"]}
    assert mounts["data"] == k8s.mount_path
    assert policy["spec"]["podSelector"]["matchLabels"]["dask.org/cluster-name"] == k8s.name


def test_a_bad_cluster_config_is_one_line(tmp_path: Path) -> None:
    bad = _config(tmp_path, '[cluster]\nkind = "slurm"\n[cluster.slurm]\ncores = "four"\n')
    result = runner.invoke(app, ["cluster", "show", str(bad)])
    assert result.exit_code == EXIT_CONFIG
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "cluster.slurm.cores" in lines[0], result.output
    missing = runner.invoke(app, ["cluster", "show", str(tmp_path / "none.toml")])
    assert missing.exit_code != 0 and "no scan config here" in missing.output
