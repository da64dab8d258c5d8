"""The [cluster] section: which kind of Dask cluster a command starts or joins, and how.

Kinds: `local` (a LocalCluster on 127.0.0.1, the default), `address` (an existing scheduler,
the kind a `scheduler = "..."` alone means), `slurm` (dask-jobqueue: workers are batch jobs)
and `kubernetes` (the Dask Kubernetes operator: a DaskCluster with a CPU worker group and a
GPU worker group). None of it is part of a scan's fingerprint. `dask_settings` is the Dask
config every cluster lensflow starts or submits runs with (WORKER_SETTINGS, and WORKER_MALLOC
in its workers' environment).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

import lensflow

KINDS = ("local", "address", "slurm", "kubernetes")
Kind = Literal["local", "address", "slurm", "kubernetes"]


class ClusterSection(BaseModel):
    """A section of [cluster]: frozen, unknown keys refused by name."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    @classmethod
    def key_choices(cls, key: str) -> list[str]:
        """The names a misspelt `key` may have meant."""
        return list(cls.model_fields)


def _absolute(path: Path | None, base: Path) -> Path | None:
    if path is None or path.is_absolute():
        return path
    return (base / path).resolve()


class TLSConfig(ClusterSection):
    """Certificates for tls:// (PEM files); without this section Dask's own TLS config is used.

    The CA certificate signs the scheduler's and the workers' certificates; cert_file (with
    key_file, or the key inside cert_file) is this client's (or these workers') certificate.
    """

    ca_file: Path
    cert_file: Path
    key_file: Path | None = None  # None: the key is in cert_file

    def resolved(self, base: Path) -> Self:
        """The same files, relative paths made absolute against `base`."""
        return self.model_copy(
            update={
                "ca_file": _absolute(self.ca_file, base),
                "cert_file": _absolute(self.cert_file, base),
                "key_file": _absolute(self.key_file, base),
            }
        )


class SlurmConfig(ClusterSection):
    """dask-jobqueue's SLURMCluster: each job runs `processes` workers on `cores` cores."""

    queue: str | None = None  # None: the partition SLURM picks
    account: str | None = None
    walltime: str = Field(default="01:00:00", pattern=r"^(\d+-)?\d{1,3}(:\d{2}){0,2}$")
    cores: int = Field(default=1, gt=0)
    memory: str = "4GiB"
    processes: int = Field(default=1, gt=0)
    job_extra: tuple[str, ...] = ()  # extra #SBATCH directives, e.g. "--gres=gpu:1"
    worker_resources: dict[str, float] = Field(default_factory=dict)  # e.g. {GPU = 1}
    local_directory: Path | None = None  # worker spill folder on the compute node
    python: str | None = None  # None: this interpreter (the same path on the compute nodes)
    host: str = "127.0.0.1"  # the address of this host that the compute nodes reach
    interface: str | None = None  # or a network interface (e.g. "ib0"), scheduler and workers
    start_timeout: float = Field(default=300.0, gt=0.0)  # seconds to wait for a first worker

    @field_validator("worker_resources")
    @classmethod
    def _positive(cls, resources: dict[str, float]) -> dict[str, float]:
        bad = {name: n for name, n in resources.items() if not n > 0}
        if bad:
            raise ValueError(f"worker_resources must be positive amounts, not {bad}")
        return resources


class KubernetesConfig(ClusterSection):
    """The Dask Kubernetes operator: one DaskCluster (scheduler, CPU workers) and a GPU group."""

    name: str = Field(default="lensflow", pattern=r"^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$")
    namespace: str = Field(default="default", pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
    image: str = f"lensflow:cpu-{lensflow.__version__}"
    gpu_image: str = f"lensflow:gpu-{lensflow.__version__}"
    cpu_workers: int = Field(default=4, ge=0)
    gpu_workers: int = Field(default=1, ge=0)
    cpu: str = Field(default="2", pattern=r"^\d+(\.\d+)?m?$")  # per worker, Kubernetes units
    memory: str = Field(default="8Gi", pattern=r"^\d+(\.\d+)?([KMGTPE]i?)?$")
    volume_claim: str | None = None  # a ReadWriteMany PersistentVolumeClaim: catalog, outputs
    mount_path: str = "/data"  # where every pod mounts it; config paths must lie below it


class ClusterConfig(ClusterSection):
    """How a command runs: which cluster, how many workers, failures allowed.

    `kind` None means "address" when `scheduler` is set, else "local".
    """

    kind: Kind | None = None
    scheduler: str | None = None  # kind "address": tcp://HOST:PORT or tls://HOST:PORT
    n_workers: int | None = Field(default=None, gt=0)  # local: processes; slurm: jobs
    threads_per_worker: int = Field(default=1, gt=0)
    memory_limit: str = "auto"
    allowed_failures: int = Field(default=2, ge=0)
    io_retries: int = Field(default=2, ge=0)
    max_in_flight: int = Field(default=256, gt=0)
    rows_per_task: int = Field(default=20_000, ge=0)  # small partitions share a task; 0: never
    dashboard: bool = True
    profile: bool = False  # Dask's statistical profiler on the workers (the dashboard's Profile)
    connect_timeout: float = Field(default=10.0, gt=0.0)  # seconds to reach a scheduler
    # local: seconds a task may wait while the cluster has no worker at all, then it fails
    # (its partitions recorded as failed) instead of the scan waiting for ever
    no_workers_timeout: float = Field(default=300.0, gt=0.0)
    tls: TLSConfig | None = None
    slurm: SlurmConfig | None = None  # None: the defaults, for kind "slurm"
    kubernetes: KubernetesConfig | None = None  # None: the defaults, for kind "kubernetes"

    @model_validator(mode="after")
    def _kind_matches(self) -> Self:
        if self.kind == "address" and not self.scheduler:
            raise ValueError('kind "address" needs scheduler = "tls://HOST:PORT" (or tcp://)')
        if self.scheduler and self.kind not in (None, "address"):
            raise ValueError(
                f'scheduler is for kind "address", not {self.kind!r}: remove one of them'
            )
        return self

    @property
    def kind_name(self) -> Kind:
        """The kind in force: "address" when a scheduler is set, else `kind` (default "local")."""
        if self.scheduler:  # a --scheduler given on the command line wins over the kind
            return "address"
        return self.kind or "local"

    @property
    def slurm_settings(self) -> SlurmConfig:
        """[cluster.slurm], or its defaults."""
        return self.slurm or SlurmConfig()

    @property
    def kubernetes_settings(self) -> KubernetesConfig:
        """[cluster.kubernetes], or its defaults."""
        return self.kubernetes or KubernetesConfig()

    def joining(self, scheduler: str) -> Self:
        """The same settings, joining the scheduler at `scheduler` (kind "address")."""
        return self.model_copy(update={"kind": "address", "scheduler": scheduler})

    def resolved(self, base: Path) -> Self:
        """The same config, relative certificate and spill paths made absolute against base."""
        slurm = self.slurm
        if slurm is not None and slurm.local_directory is not None:
            slurm = slurm.model_copy(
                update={"local_directory": _absolute(slurm.local_directory, base)}
            )
        tls = None if self.tls is None else self.tls.resolved(base)
        return self.model_copy(update={"tls": tls, "slurm": slurm})


WORKER_MALLOC = {"MALLOC_MMAP_THRESHOLD_": "33554432", "MALLOC_TRIM_THRESHOLD_": "67108864"}
"""glibc malloc settings of worker processes (bytes), in their environment before they start.

Dask's nanny sets MALLOC_TRIM_THRESHOLD_=65536 (distributed.nanny.pre-spawn-environ), which
also pins glibc's mmap threshold at 128 KiB: each cutout slab read (3 MiB for 64 cutouts) then
becomes a fresh mmap, page-faulted and unmapped again, and the zarr reads of a scan's
survivors took 2.1 times as long. These are the ceilings glibc's own dynamic thresholds reach
(allocations above 32 MiB are mapped; a free heap top above 64 MiB is returned), fixed.
"""


WORKER_SETTINGS: dict[str, Any] = {
    "distributed.worker.profile.enabled": False,  # statistical profiler: every 10 ms
    "distributed.admin.tick.interval": "1s",  # event-loop health check: every 20 ms
    "distributed.admin.system-monitor.interval": "2s",  # CPU, memory, network: every 500 ms
    "distributed.worker.memory.monitor-interval": "1s",  # memory limit checks: every 100 ms
}
"""Dask's background sampling in schedulers, nannies and workers, less often than its defaults.

On the 2-core machine an idle LocalCluster of two workers used 0.14 cores with the defaults
(after them) and 0.02 with these; interleaved on the demo sky, a scan took 8-9 % less time
(median 1.105 s against 1.217 s, 12 rounds). The dashboard's Profile page stays empty unless
[cluster] profile = true; a memory limit is enforced within a second instead of 0.1 s.
"""


def sampling_settings(cluster: ClusterConfig) -> dict[str, Any]:
    """WORKER_SETTINGS, with the profiler on where [cluster] profile asks for it."""
    profile = {"distributed.worker.profile.enabled": True} if cluster.profile else {}
    return {**WORKER_SETTINGS, **profile}


def dask_settings(cluster: ClusterConfig) -> dict[str, Any]:
    """The Dask config lensflow sets for a cluster's scheduler, nannies and workers."""
    return {
        "distributed.scheduler.allowed-failures": cluster.allowed_failures,
        "distributed.worker.daemon": False,
        **sampling_settings(cluster),
    }


def worker_environ(cluster: ClusterConfig) -> dict[str, str]:
    """What a worker process started elsewhere (a SLURM job, a pod, a host by hand) needs in
    its environment: lensflow's Dask settings as DASK_* variables, and WORKER_MALLOC."""
    return {**dask_environment(dask_settings(cluster)), **WORKER_MALLOC}


def dask_environment(settings: dict[str, Any]) -> dict[str, str]:
    """Dask config as the DASK_* variables a process started elsewhere (a pod, a job) reads."""
    names = {}
    for key, value in settings.items():
        name = "DASK_" + "__".join(part.upper().replace("-", "_") for part in key.split("."))
        names[name] = str(value)
    return names
