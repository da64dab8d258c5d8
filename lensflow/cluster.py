"""The one way to start or join a Dask cluster: a LocalCluster on 127.0.0.1, or a scheduler.

Scans, mock skies and training sets all run through `connect`.

Dask unpickles what clients send, so a remote scheduler is reached over TLS; plain TCP to a
host other than this one needs an explicit `insecure=True` (`--insecure`).
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import dask
from distributed import Client, LocalCluster

from lensflow.config import ClusterConfig
from lensflow.errors import ConfigError

logger = logging.getLogger(__name__)


def is_loopback(address: str) -> bool:
    """True when a scheduler address names this machine's loopback interface."""
    host = urlsplit(address if "://" in address else f"tcp://{address}").hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        try:
            return ipaddress.ip_address(socket.gethostbyname(host)).is_loopback
        except OSError:
            return False


def check_scheduler_address(address: str, *, insecure: bool) -> None:
    """Refuse plain TCP to a remote scheduler unless the user asked for it."""
    scheme = urlsplit(address).scheme if "://" in address else "tcp"
    if scheme == "tls":
        return
    if scheme not in ("tcp", "inproc", "ucx"):
        raise ConfigError(f"scheduler address {address!r}: use tcp://HOST:PORT or tls://HOST:PORT")
    if not is_loopback(address) and not insecure:
        raise ConfigError(
            f"scheduler {address} is remote over plain TCP, where anyone on the network can run "
            "code on it; use tls:// (Dask's TLS settings) or pass --insecure on a trusted network"
        )


@contextmanager
def connect(cluster: ClusterConfig, *, insecure: bool = False) -> Iterator[Client]:
    """A Client on the configured scheduler, or on a LocalCluster started here on 127.0.0.1."""
    settings = {
        "distributed.scheduler.allowed-failures": cluster.allowed_failures,
        "distributed.worker.daemon": False,
    }
    with dask.config.set(settings):
        if cluster.scheduler:
            check_scheduler_address(cluster.scheduler, insecure=insecure)
            with Client(cluster.scheduler) as client:
                logger.info("joined the scheduler at %s", cluster.scheduler)
                yield client
            return
        with local_cluster(cluster) as local, Client(local) as client:
            yield client


def local_cluster(cluster: ClusterConfig) -> LocalCluster:
    """A LocalCluster of worker processes bound to 127.0.0.1 (dashboard on localhost only)."""
    return LocalCluster(
        n_workers=cluster.n_workers,
        threads_per_worker=cluster.threads_per_worker,
        processes=True,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",  # the scheduler's HTTP server: loopback, any free port
        scheduler_kwargs={"dashboard": cluster.dashboard},
        memory_limit=cluster.memory_limit,
    )


def dashboard_link(client: Client) -> str | None:
    """The dashboard address, when the scheduler serves one."""
    try:
        return str(client.dashboard_link)
    except (KeyError, AttributeError):  # no dashboard served
        return None


def has_gpu_workers(client: Client) -> bool:
    """True when some worker advertises a GPU resource (`--resources GPU=1`)."""
    workers = client.scheduler_info(n_workers=-1)["workers"].values()
    return any(w.get("resources", {}).get("GPU", 0) > 0 for w in workers)
