"""Kubernetes through the Dask operator: the manifests, checked against the operator's own CRD
schemas as the installed dask-kubernetes ships them. No cluster runs here: the spec is tested,
not the connection."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from lensflow.cluster_config import ClusterConfig
from lensflow.cluster_kubernetes import (
    check_manifest,
    crd_schema,
    manifest_problems,
    manifests,
    to_yaml,
)
from lensflow.errors import ConfigError

pytest.importorskip("dask_kubernetes")
yaml = pytest.importorskip("yaml")


def _config(**kubernetes: Any) -> ClusterConfig:
    raw = {"kind": "kubernetes", "threads_per_worker": 2, "kubernetes": kubernetes}
    return ClusterConfig.model_validate(raw)


def _container(manifest: dict[str, Any], part: str = "worker") -> dict[str, Any]:
    (container,) = manifest["spec"][part]["spec"]["containers"]
    return container  # type: ignore[no-any-return]


@pytest.mark.parametrize("gpu_workers", [0, 1, 3])
def test_the_manifests_are_valid_against_the_operators_crds(gpu_workers: int) -> None:
    made = manifests(_config(gpu_workers=gpu_workers, volume_claim="survey-data"))
    assert [m["kind"] for m in made] == ["DaskCluster"] + ["DaskWorkerGroup"] * (gpu_workers > 0)
    for manifest in made:
        assert manifest_problems(manifest) == []
        check_manifest(manifest)


def test_the_gpu_group_holds_a_gpu_and_advertises_it_to_dask() -> None:
    cluster, group = manifests(_config(name="survey", namespace="lenses", gpu_workers=2))
    assert group["metadata"] == {"name": "survey-gpu", "namespace": "lenses"}  # add_worker_group
    assert group["spec"]["cluster"] == "survey" and group["spec"]["worker"]["replicas"] == 2
    (container,) = group["spec"]["worker"]["spec"]["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert container["args"][container["args"].index("--resources") + 1] == "GPU=1"
    assert container["image"].startswith("lensflow:gpu-")
    cpu = _container(cluster)
    assert "nvidia.com/gpu" not in cpu["resources"]["limits"] and "--resources" not in cpu["args"]
    assert cpu["args"][:4] == ["dask", "worker", "--nthreads", "2"]
    assert _container(cluster, "scheduler")["args"][:2] == ["dask", "scheduler"]
    env = {e["name"]: e["value"] for e in cpu["env"]}
    assert env["DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES"] == "2"
    assert env["DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED"] == "False"
    assert env["MALLOC_TRIM_THRESHOLD_"] == "67108864", "not the nanny's 65536"


def test_the_data_claim_is_mounted_in_every_worker() -> None:
    for manifest in manifests(_config(volume_claim="survey-data", mount_path="/survey")):
        pod = manifest["spec"]["worker"]["spec"]
        assert pod["volumes"] == [
            {"name": "data", "persistentVolumeClaim": {"claimName": "survey-data"}}
        ]
        assert pod["containers"][0]["volumeMounts"] == [{"name": "data", "mountPath": "/survey"}]


def _broken(path: list[Any], value: Any = None, *, delete: bool = False) -> dict[str, Any]:
    manifest = copy.deepcopy(manifests(_config())[0])
    node = manifest
    for key in path[:-1]:
        node = node[key]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return manifest


WORKER = ["spec", "worker", "spec", "containers", 0]


@pytest.mark.parametrize(
    ("manifest", "problem"),
    [
        (_broken(["spec", "worker", "replicas"], "four"), "'four' is not of type 'integer'"),
        (_broken(["spec", "scheduler", "service"], delete=True), "'service' is a required"),
        (_broken([*WORKER, "name"], delete=True), "'name' is a required property"),
        (_broken([*WORKER, "resources", "limits", "cpu"], 2), "2 is not of type 'string'"),
        (_broken([*WORKER, "imagee"], "lensflow"), "'imagee' was unexpected"),
        (_broken(["spec", "idleTimeout"], "never"), "'never' is not of type 'integer'"),
        (_broken(["apiVersion"], "kubernetes.dask.org/v2"), "want kubernetes.dask.org/v1"),
    ],
)
def test_a_broken_manifest_fails_validation(manifest: dict[str, Any], problem: str) -> None:
    assert any(problem in line for line in manifest_problems(manifest)), manifest_problems(manifest)
    with pytest.raises(ConfigError, match="DaskCluster lensflow: 1 problems"):
        check_manifest(manifest)


def test_a_broken_worker_group_fails_validation() -> None:
    group = copy.deepcopy(manifests(_config())[1])
    del group["spec"]["cluster"]
    assert manifest_problems(group) == ["spec: 'cluster' is a required property"]


def test_the_schemas_are_the_operators_own() -> None:
    schema = crd_schema("DaskWorkerGroup")
    assert schema["properties"]["spec"]["required"] == ["cluster", "worker"]
    with pytest.raises(ConfigError, match="no operator CRD for kind 'DaskJob'"):
        crd_schema("DaskJob")


def test_the_yaml_reads_back_as_the_manifests() -> None:
    made = manifests(_config(gpu_workers=1))
    text = to_yaml(made)
    assert text.startswith("---\n") and text.count("\n---\n") == 1
    assert list(yaml.safe_load_all(text)) == made
