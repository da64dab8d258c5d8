"""The one way to start or join a Dask cluster: `connect`, for every kind of [cluster].

Scans, mock skies and training sets all run through `connect`. Kinds: a LocalCluster on
127.0.0.1 (`local`), an existing scheduler (`address`), SLURM batch jobs (`slurm`, in
`cluster_slurm`) and the Dask Kubernetes operator (`kubernetes`, in `cluster_kubernetes`).

Who may talk to whom is `cluster_security`'s: loopback or TLS, remote plain TCP only with
`insecure=True` (`--insecure`). Joining fails in `connect_timeout` seconds with one line
(refused, silent, or a certificate refused). Worker processes started here get WORKER_MALLOC,
and every cluster's scheduler and workers WORKER_SETTINGS (`dask_settings`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from typing import Any
from urllib.parse import urlsplit

import dask
from distributed import Client, LocalCluster
from distributed.security import Security

from lensflow.cluster_config import (
    WORKER_MALLOC,
    WORKER_SETTINGS,
    ClusterConfig,
    dask_environment,
    dask_settings,
    sampling_settings,
    worker_environ,
)
from lensflow.cluster_security import (
    check_scheduler_address,
    client_security,
    is_loopback,
    tls_security,
)
from lensflow.errors import ClusterError

__all__ = [
    "WORKER_MALLOC",
    "WORKER_SETTINGS",
    "check_scheduler_address",
    "connect",
    "dashboard_link",
    "dask_environment",
    "dask_settings",
    "has_gpu_workers",
    "is_loopback",
    "join",
    "local_cluster",
    "worker_environ",
]

logger = logging.getLogger(__name__)


@contextmanager
def worker_environment() -> Iterator[None]:
    """Dask config, and this process's environment while workers start, with WORKER_MALLOC.

    A nanny gives its worker its own process's environment over the config's values, so the
    variables are also set here for as long as the workers start (then restored).
    """
    settings = {f"distributed.nanny.pre-spawn-environ.{k}": v for k, v in WORKER_MALLOC.items()}
    saved = {name: os.environ.get(name) for name in WORKER_MALLOC}
    os.environ.update(WORKER_MALLOC)
    try:
        with dask.config.set(settings):
            yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _probe(address: str, *, timeout: float) -> None:
    """Fail fast, in one line, when nothing listens at the scheduler's host and port."""
    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    if parts.scheme not in ("tcp", "tls") or parts.hostname is None or parts.port is None:
        return
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=timeout):
            pass
    except ConnectionRefusedError:
        raise ClusterError(
            f"scheduler {address} refused the connection: nothing listens on "
            f"{parts.hostname}:{parts.port}; start the scheduler or fix the address"
        ) from None
    except TimeoutError:
        raise ClusterError(
            f"scheduler {address} did not answer within {timeout:g} s; check the host, the "
            "port and any firewall between (or raise [cluster] connect_timeout)"
        ) from None
    except OSError as exc:
        raise ClusterError(f"scheduler {address} cannot be reached: {exc}") from None


def join_failure(address: str, exc: OSError, *, timeout: float) -> ClusterError:
    """One line for a scheduler that could not be joined: certificate, protocol or silence."""
    text = str(exc) or type(exc).__name__
    if "certificate" in text.lower() or "ssl" in text.lower():
        return ClusterError(
            f"scheduler {address} refused the certificate (or we refused its certificate): "
            "both sides must hold certificates signed by the same certificate authority; "
            f"check [cluster.tls] ca_file and cert_file ({text})"
        )
    if isinstance(exc, TimeoutError) or "timed out" in text.lower():
        return ClusterError(
            f"scheduler {address} did not complete the Dask handshake within {timeout:g} s; "
            f"is it a Dask scheduler, with the protocol written ({text})"
        )
    return ClusterError(
        f"scheduler {address} closed the connection during the handshake; does it expect "
        f"tls:// and certificates, or plain tcp:// ({text})"
    )


def _handshake(address: str, *, security: Security, timeout: float) -> None:
    """Open one Dask comm to the scheduler and close it, all within `timeout` seconds.

    Dask's own handshake read has no deadline: a listener that accepts and never speaks
    would hold a Client forever. Run in a thread of its own, so any caller's loop is spared.
    """
    from distributed.comm import connect as open_comm

    async def shake() -> None:
        args = security.get_connection_args("client")
        comm = await asyncio.wait_for(open_comm(address, timeout=timeout, **args), timeout)
        await comm.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        try:
            pool.submit(asyncio.run, shake()).result()
        except OSError as exc:  # CommClosedError, asyncio timeouts and refusals are OSErrors
            raise join_failure(address, exc, timeout=timeout) from None


@contextmanager
def join(cluster: ClusterConfig, *, insecure: bool = False) -> Iterator[Client]:
    """A Client on the scheduler at `cluster.scheduler` (kind "address")."""
    address = str(cluster.scheduler)
    check_scheduler_address(address, insecure=insecure)
    security = client_security(cluster, address)
    _probe(address, timeout=cluster.connect_timeout)
    _handshake(address, security=security, timeout=cluster.connect_timeout)
    try:
        client = Client(address, security=security, timeout=cluster.connect_timeout)
    except OSError as exc:  # CommClosedError, asyncio timeouts and refusals are OSErrors
        raise join_failure(address, exc, timeout=cluster.connect_timeout) from None
    with client:
        logger.info("joined the scheduler at %s", address)
        yield client


def local_cluster(cluster: ClusterConfig) -> LocalCluster:
    """A LocalCluster of worker processes bound to 127.0.0.1 (dashboard on localhost only).

    With [cluster.tls], scheduler, workers and client talk tls:// with its certificates. The
    workers start with WORKER_MALLOC in their environment, and scheduler, nannies and workers
    with lensflow's sampling settings (sampling_settings). Nannies restart a dead worker
    within seconds, so a cluster left with no worker for `no_workers_timeout` seconds will
    not get one back: its tasks fail then (a batch cluster's workers may queue for hours, so
    this is for local clusters only).
    """
    tls: dict[str, Any] = {}
    if cluster.tls is not None:
        tls = {"protocol": "tls", "security": tls_security(cluster.tls)}
    idle = {"distributed.scheduler.no-workers-timeout": f"{cluster.no_workers_timeout}s"}
    with worker_environment(), dask.config.set({**sampling_settings(cluster), **idle}):
        return LocalCluster(
            n_workers=cluster.n_workers,
            threads_per_worker=cluster.threads_per_worker,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",  # the scheduler's HTTP server: loopback, any port
            scheduler_kwargs={"dashboard": cluster.dashboard},
            memory_limit=cluster.memory_limit,
            **tls,
        )


@contextmanager
def _local(cluster: ClusterConfig, *, insecure: bool = False) -> Iterator[Client]:
    with local_cluster(cluster) as local, Client(local) as client:
        yield client


def _slurm(cluster: ClusterConfig, *, insecure: bool = False) -> AbstractContextManager[Client]:
    from lensflow.cluster_slurm import slurm_client

    return slurm_client(cluster, insecure=insecure)


def _kubernetes(
    cluster: ClusterConfig, *, insecure: bool = False
) -> AbstractContextManager[Client]:
    from lensflow.cluster_kubernetes import kubernetes_client

    return kubernetes_client(cluster)


STARTERS: dict[str, Callable[..., AbstractContextManager[Client]]] = {
    "local": _local,
    "address": join,
    "slurm": _slurm,
    "kubernetes": _kubernetes,
}
"""Each [cluster] kind -> what starts or joins it and hands back a Client."""


@contextmanager
def connect(cluster: ClusterConfig, *, insecure: bool = False) -> Iterator[Client]:
    """A Client on the cluster [cluster] describes: started here, submitted, or joined."""
    with (
        dask.config.set(dask_settings(cluster)),
        STARTERS[cluster.kind_name](cluster, insecure=insecure) as c,
    ):
        yield c


def dashboard_link(client: Client) -> str | None:
    """The dashboard address, when the scheduler serves one."""
    try:
        return str(client.dashboard_link)
    except (KeyError, AttributeError):  # no dashboard served
        return None


def has_gpu_workers(workers: Client | Mapping[str, Any]) -> bool:
    """True when some worker advertises a GPU resource (`--resources GPU=1`): the client's, or
    those of a scheduler_info()["workers"] already fetched."""
    if isinstance(workers, Client):
        workers = workers.scheduler_info(n_workers=-1)["workers"]
    return any(w.get("resources", {}).get("GPU", 0) > 0 for w in workers.values())
