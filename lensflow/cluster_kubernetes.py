"""A Dask cluster on Kubernetes through the Dask operator ([cluster] kind "kubernetes").

`manifests` makes the resources: a DaskCluster (scheduler and the CPU worker group) and a
DaskWorkerGroup "gpu" whose workers each hold one `nvidia.com/gpu` and advertise the Dask
resource GPU=1, so only the CNN step lands there. `lensflow cluster show` prints them and
`kubernetes_client` hands the same to the operator. `check_manifest` validates one against the
operator's own CRD schema (shipped in the dask-kubernetes package), stricter than the API
server in one way: a key the schema does not know is refused, where the server would drop it.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from typing import Any

from distributed import Client

from lensflow.cluster_config import ClusterConfig, KubernetesConfig, worker_environ
from lensflow.errors import ClusterError, ConfigError

logger = logging.getLogger(__name__)

API_VERSION = "kubernetes.dask.org/v1"
CRD_FOLDER = "operator/deployment/helm/dask-kubernetes-operator/crds"
"""Where dask-kubernetes ships its rendered CRDs (the templates beside them need a resolver)."""
CRD_FILES = {"DaskCluster": "daskcluster.yaml", "DaskWorkerGroup": "daskworkergroup.yaml"}
GPU_GROUP = "gpu"


def _operator() -> Any:
    try:
        from dask_kubernetes import operator
    except ImportError:
        raise ConfigError(
            '[cluster] kind "kubernetes" needs dask-kubernetes: pip install "lensflow[kubernetes]"'
        ) from None
    return operator


def _env(cluster: ClusterConfig) -> dict[str, str]:
    """The environment every pod gets: the scheduler's allowed failures, non-daemon workers,
    Dask's background sampling and the workers' malloc thresholds, as on every lensflow
    cluster (worker_environ)."""
    return worker_environ(cluster)


def _resources(k8s: KubernetesConfig, *, gpu: bool) -> dict[str, dict[str, str]]:
    amounts = {"cpu": k8s.cpu, "memory": k8s.memory}
    limits = {**amounts, "nvidia.com/gpu": "1"} if gpu else dict(amounts)
    return {"requests": dict(amounts), "limits": limits}


def _worker_command(cluster: ClusterConfig, *, gpu: bool) -> list[str]:
    command = ["dask", "worker", "--nthreads", str(cluster.threads_per_worker)]
    command += ["--memory-limit", cluster.memory_limit]
    return [*command, "--resources", "GPU=1"] if gpu else command


def worker_spec(cluster: ClusterConfig, *, gpu: bool) -> dict[str, Any]:
    """The `worker` part of a DaskCluster or DaskWorkerGroup: replicas and the pod spec."""
    k8s = cluster.kubernetes_settings
    spec: dict[str, Any] = _operator().make_worker_spec(
        image=k8s.gpu_image if gpu else k8s.image,
        n_workers=k8s.gpu_workers if gpu else k8s.cpu_workers,
        resources=_resources(k8s, gpu=gpu),
        env=_env(cluster),
        worker_command=_worker_command(cluster, gpu=gpu),
    )
    _mount(spec["spec"], k8s)
    return spec


def _mount(pod: dict[str, Any], k8s: KubernetesConfig) -> None:
    """Mount the data claim (catalog, cutouts, scan folder) in each container of a pod spec."""
    if k8s.volume_claim is None:
        return
    pod["volumes"] = [{"name": "data", "persistentVolumeClaim": {"claimName": k8s.volume_claim}}]
    for container in pod["containers"]:
        container["volumeMounts"] = [{"name": "data", "mountPath": k8s.mount_path}]


def cluster_manifest(cluster: ClusterConfig) -> dict[str, Any]:
    """The DaskCluster: the scheduler (service on 8786, dashboard 8787) and the CPU workers."""
    k8s = cluster.kubernetes_settings
    manifest: dict[str, Any] = _operator().make_cluster_spec(
        name=k8s.name,
        image=k8s.image,
        n_workers=k8s.cpu_workers,
        resources=_resources(k8s, gpu=False),
        env=_env(cluster),
        worker_command=_worker_command(cluster, gpu=False),
    )
    manifest["metadata"]["namespace"] = k8s.namespace
    manifest["spec"]["worker"] = worker_spec(cluster, gpu=False)
    (scheduler,) = manifest["spec"]["scheduler"]["spec"]["containers"]
    scheduler["args"] = ["dask", "scheduler", "--host", "0.0.0.0"]  # no dask-scheduler script
    return manifest


def gpu_group_manifest(cluster: ClusterConfig) -> dict[str, Any]:
    """The DaskWorkerGroup "gpu": as `KubeCluster.add_worker_group("gpu", ...)` creates it."""
    k8s = cluster.kubernetes_settings
    return {
        "apiVersion": API_VERSION,
        "kind": "DaskWorkerGroup",
        "metadata": {"name": f"{k8s.name}-{GPU_GROUP}", "namespace": k8s.namespace},
        "spec": {"cluster": k8s.name, "worker": worker_spec(cluster, gpu=True)},
    }


def manifests(cluster: ClusterConfig) -> list[dict[str, Any]]:
    """The operator's resources for [cluster.kubernetes]: the cluster, then the GPU group."""
    found = [cluster_manifest(cluster)]
    if cluster.kubernetes_settings.gpu_workers > 0:
        found.append(gpu_group_manifest(cluster))
    return found


def to_yaml(documents: list[dict[str, Any]]) -> str:
    """The manifests as one multi-document YAML stream (`kubectl apply -f` reads it)."""
    import yaml

    return str(yaml.safe_dump_all(documents, sort_keys=False, explicit_start=True))


@functools.cache
def crd_schema(kind: str) -> dict[str, Any]:
    """The openAPIV3Schema of the operator's CRD for `kind`, from the installed dask-kubernetes."""
    import yaml

    _operator()
    name = CRD_FILES.get(kind)
    if name is None:
        raise ConfigError(f"no operator CRD for kind {kind!r}; known: {sorted(CRD_FILES)}")
    text = (resources.files("dask_kubernetes") / CRD_FOLDER / name).read_text()
    crd = yaml.safe_load(text)
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == API_VERSION.split("/")[1]]
    schema: dict[str, Any] = _closed(version["schema"]["openAPIV3Schema"])
    return schema


def _closed(schema: Any) -> Any:
    """The schema with every object that lists its properties closed to other keys."""
    if isinstance(schema, list):
        return [_closed(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    closed = {key: _closed(value) for key, value in schema.items()}
    if (
        "properties" in closed
        and "additionalProperties" not in closed
        and not closed.get("x-kubernetes-preserve-unknown-fields")
    ):
        closed["additionalProperties"] = False
    return closed


def manifest_problems(manifest: dict[str, Any]) -> list[str]:
    """What is wrong with one manifest against its CRD, one line per problem (none: valid)."""
    import jsonschema

    kind = manifest.get("kind")
    if manifest.get("apiVersion") != API_VERSION or kind not in CRD_FILES:
        return [f"apiVersion/kind: want {API_VERSION} and one of {sorted(CRD_FILES)}"]
    problems = []
    if not isinstance(manifest.get("metadata", {}).get("name"), str):
        problems.append("metadata.name: missing")
    body = {key: value for key, value in manifest.items() if key in ("spec", "status")}
    validator = jsonschema.Draft7Validator(crd_schema(str(kind)))
    for error in sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path)):
        where = ".".join(str(part) for part in error.absolute_path) or kind
        problems.append(f"{where}: {error.message}")
    return problems


def check_manifest(manifest: dict[str, Any]) -> None:
    """Refuse a manifest its CRD schema refuses, naming each problem's path."""
    problems = manifest_problems(manifest)
    if problems:
        name = manifest.get("metadata", {}).get("name", "?")
        listed = "; ".join(problems[:5])
        raise ConfigError(f"{manifest.get('kind')} {name}: {len(problems)} problems: {listed}")


def _api_errors() -> tuple[type[Exception], ...]:
    """What kr8s raises when the Kubernetes API refuses, times out or is not there."""
    import kr8s

    return (kr8s.ServerError, kr8s.NotFoundError, kr8s.APITimeoutError)


@contextmanager
def kubernetes_client(cluster: ClusterConfig) -> Iterator[Client]:
    """A Client on a DaskCluster created by the operator, with its GPU worker group added.

    Needs a Kubernetes API (kubeconfig or in-cluster account) and the operator installed.
    """
    operator = _operator()
    made = manifests(cluster)
    for manifest in made:
        check_manifest(manifest)
    k8s = cluster.kubernetes_settings
    refusals: tuple[type[Exception], ...] = (OSError, RuntimeError, ValueError, *_api_errors())
    try:
        kube = operator.KubeCluster(
            custom_cluster_spec=made[0], namespace=k8s.namespace, shutdown_on_close=True
        )
    except refusals as exc:
        raise ClusterError(
            f"cannot create the DaskCluster {k8s.name} in namespace {k8s.namespace}: {exc}; "
            "check kubectl's context and that the Dask operator is installed"
        ) from None
    with kube:
        if len(made) > 1:
            kube.add_worker_group(GPU_GROUP, custom_spec=made[1]["spec"]["worker"])
        with Client(kube) as client:
            yield client
