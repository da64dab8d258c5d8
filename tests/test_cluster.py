"""The one way to start or join a cluster: loopback by default, remote plain TCP only on request."""

from __future__ import annotations

import dask
import pytest
from distributed import Client

from lensflow.cluster import (
    check_scheduler_address,
    connect,
    dashboard_link,
    has_gpu_workers,
    is_loopback,
)
from lensflow.config import ClusterConfig
from lensflow.errors import ConfigError


def test_local_cluster_binds_loopback_only() -> None:
    with connect(ClusterConfig(n_workers=1, dashboard=True)) as client:
        assert client.scheduler.address.startswith("tcp://127.0.0.1:")
        workers = client.scheduler_info(n_workers=-1)["workers"]
        assert all(address.startswith("tcp://127.0.0.1:") for address in workers)
        link = dashboard_link(client)
        assert link is not None and link.startswith("http://127.0.0.1:")


def test_allowed_failures_is_set_explicitly() -> None:
    with connect(ClusterConfig(n_workers=1, allowed_failures=5, dashboard=False)) as client:
        value = client.run_on_scheduler(
            lambda: dask.config.get("distributed.scheduler.allowed-failures")
        )
    assert value == 5


@pytest.mark.parametrize(
    "address", ["tcp://10.1.2.3:8786", "tcp://example.org:8786", "10.0.0.1:8786"]
)
def test_remote_plain_tcp_needs_insecure(address: str) -> None:
    with pytest.raises(ConfigError, match="--insecure"):
        check_scheduler_address(address, insecure=False)
    check_scheduler_address(address, insecure=True)


@pytest.mark.parametrize(
    "address", ["tls://10.1.2.3:8786", "tcp://127.0.0.1:8786", "tcp://localhost:1"]
)
def test_tls_and_loopback_are_allowed(address: str) -> None:
    check_scheduler_address(address, insecure=False)


@pytest.mark.parametrize(
    ("address", "loopback"),
    [
        ("tcp://127.0.0.1:8786", True),
        ("tcp://127.8.9.10:1", True),
        ("localhost:8786", True),
        ("tcp://[::1]:8786", True),
        ("tcp://10.0.0.1:8786", False),
        ("tcp://192.0.2.1:8786", False),
        ("tcp://no-such-host.invalid:8786", False),
    ],
)
def test_loopback_addresses_are_recognised(address: str, loopback: bool) -> None:
    assert is_loopback(address) is loopback


@pytest.mark.parametrize("address", ["http://127.0.0.1:8786", "ws://10.0.0.1:1"])
def test_other_schemes_are_refused(address: str) -> None:
    with pytest.raises(ConfigError, match="use tcp://HOST:PORT or tls://HOST:PORT"):
        check_scheduler_address(address, insecure=True)


def test_a_remote_plain_tcp_scheduler_is_refused_before_connecting() -> None:
    config = ClusterConfig(scheduler="tcp://192.0.2.1:8786")
    with pytest.raises(ConfigError, match=r"192\.0\.2\.1.*--insecure"), connect(config):
        pass


def test_connect_joins_a_running_scheduler(dask_client: Client) -> None:
    address = dask_client.scheduler.address
    with connect(ClusterConfig(scheduler=address)) as client:
        assert client.scheduler.address == address
        assert client.submit(sum, [1, 2, 3]).result() == 6
        assert set(client.scheduler_info(n_workers=-1)["workers"]) == set(
            dask_client.scheduler_info(n_workers=-1)["workers"]
        )


def test_a_cluster_of_cpu_workers_has_no_gpu(dask_client: Client) -> None:
    assert has_gpu_workers(dask_client) is False
