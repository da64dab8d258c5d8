"""The one way to start or join a cluster: loopback by default, remote plain TCP only on request."""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import dask
import pytest
from distributed import Client, LocalCluster
from distributed.scheduler import NoWorkerError
from distributed.security import Security

from lensflow.cluster import (
    WORKER_MALLOC,
    WORKER_SETTINGS,
    connect,
    dashboard_link,
    dask_environment,
    dask_settings,
    has_gpu_workers,
    local_cluster,
    worker_environ,
)
from lensflow.config import ClusterConfig
from lensflow.errors import EXIT_UNAVAILABLE, ClusterError, ConfigError
from lensflow.simulate.mock_sky import MockSky
from lensflow.testing import loopback_cluster

pytestmark = pytest.mark.security


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


def _busy(seconds: float) -> int:
    end, n = time.perf_counter() + seconds, 0
    while time.perf_counter() < end:
        n += 1
    return n


def test_workers_sample_in_the_background_less_often_and_profile_only_when_asked() -> None:
    with connect(ClusterConfig(n_workers=1, dashboard=False)) as client:
        for key, value in WORKER_SETTINGS.items():
            assert set(client.run(dask.config.get, key).values()) == {value}, key
            assert client.run_on_scheduler(dask.config.get, key) == value, key
        client.submit(_busy, 0.5, pure=False).result()
        assert client.profile()["count"] == 0, "the profiler sampled a task"
    with connect(ClusterConfig(n_workers=1, dashboard=False, profile=True)) as client:
        client.submit(_busy, 0.5, pure=False).result()
        assert client.profile()["count"] > 10


def test_a_local_cluster_started_without_connect_samples_as_lensflows_clusters_do() -> None:
    # Test clusters (loopback_cluster) and a driver's own local_cluster: the same settings.
    # The workers keep the config they started with; this process's scheduler read it then.
    with loopback_cluster(n_workers=1) as cluster, Client(cluster) as client:
        for key, value in WORKER_SETTINGS.items():
            assert set(client.run(dask.config.get, key).values()) == {value}, key
        callbacks = cluster.scheduler.periodic_callbacks
        assert callbacks["tick"].callback_time == 1_000, "ms, distributed.admin.tick.interval"
        assert callbacks["monitor"].callback_time == 2_000, "ms, system-monitor.interval"
        client.submit(_busy, 0.5, pure=False).result()
        assert client.profile()["count"] == 0, "the profiler sampled a task"


def test_dask_settings_read_back_from_the_environment_a_pod_or_job_gets() -> None:
    settings = dask_settings(ClusterConfig(allowed_failures=4))
    read = dask.config.collect_env(dask_environment(settings))
    for key, value in settings.items():
        assert dask.config.get(key, config=read) == value, key


def test_the_two_hosts_recipe_exports_what_lensflows_own_workers_get() -> None:
    recipe = Path(__file__).parents[1] / "deploy" / "two-hosts.md"
    exports = dict(
        pair.split("=", 1)
        for line in recipe.read_text().splitlines()
        if line.startswith("export ")
        for pair in line.removeprefix("export ").split()
    )
    wanted = worker_environ(ClusterConfig())
    wanted.pop("DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES")  # the scheduler's, set above
    assert exports == wanted


def test_a_local_cluster_left_without_workers_fails_its_tasks_instead_of_waiting() -> None:
    config = ClusterConfig(n_workers=1, no_workers_timeout=1.0, dashboard=False)
    with local_cluster(config) as cluster, Client(cluster) as client:
        cluster.scale(0)
        deadline = time.monotonic() + 30
        while client.scheduler_info(n_workers=-1)["workers"] and time.monotonic() < deadline:
            time.sleep(0.1)
        future = client.submit(sum, [1, 2], pure=False)
        with pytest.raises(NoWorkerError):
            future.result(timeout=30)


def test_local_workers_start_with_the_malloc_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dask's MALLOC_TRIM_THRESHOLD_=65536 (left in this process by an earlier nanny, here set
    by hand) does not reach lensflow's workers, nor one its nanny restarts."""
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "65536")
    with connect(ClusterConfig(n_workers=1, dashboard=False)) as client:
        assert os.environ["MALLOC_TRIM_THRESHOLD_"] == "65536", "this process's is restored"
        seen = client.run(lambda: {name: os.environ.get(name) for name in WORKER_MALLOC})
        assert list(seen.values()) == [WORKER_MALLOC]
        client.restart()
        seen = client.run(lambda: {name: os.environ.get(name) for name in WORKER_MALLOC})
        assert list(seen.values()) == [WORKER_MALLOC]


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


# --- TLS end to end, and schedulers that cannot be joined -------------------------------------


def _write_pems(security: Security, folder: Path) -> dict[str, str]:
    """A temporary certificate authority's files, as [cluster.tls] names them."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "ca_file": security.tls_ca_file,
        "cert_file": security.tls_client_cert,
        "key_file": security.tls_client_key,
    }
    for key, pem in files.items():
        (folder / f"{key}.pem").write_text(pem)
    return {key: f"{folder.name}/{key}.pem" for key in files}


@pytest.fixture(scope="module")
def tls_scheduler(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TLSScheduler]:
    """A real Dask cluster over TLS on 127.0.0.1 (two worker processes), its CA's files, and
    the files of a second, unrelated certificate authority."""
    base = tmp_path_factory.mktemp("tls")
    ours, theirs = Security.temporary(), Security.temporary()
    files, other = _write_pems(ours, base / "ours"), _write_pems(theirs, base / "theirs")
    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        protocol="tls",
        security=ours,
        dashboard_address=None,
    ) as cluster:
        yield TLSScheduler(cluster, base, files, other)


class TLSScheduler(NamedTuple):
    cluster: LocalCluster
    base: Path  # relative certificate paths are relative to this folder
    files: dict[str, str]  # [cluster.tls] of the scheduler's own CA
    other: dict[str, str]  # [cluster.tls] of another CA

    @property
    def address(self) -> str:
        return str(self.cluster.scheduler_address)

    def config(self, tls: dict[str, str] | None, **changes: Any) -> ClusterConfig:
        raw = {"scheduler": self.address, "connect_timeout": 5, **changes}
        if tls is not None:
            raw["tls"] = tls
        return ClusterConfig.model_validate(raw).resolved(self.base)


def test_a_tls_scheduler_is_joined_with_the_configs_certificates(
    tls_scheduler: TLSScheduler,
) -> None:
    assert tls_scheduler.address.startswith("tls://127.0.0.1:")
    with connect(tls_scheduler.config(tls_scheduler.files)) as client:
        assert client.scheduler.address == tls_scheduler.address
        assert client.submit(sum, [1, 2, 3]).result() == 6
        workers = client.scheduler_info(n_workers=-1)["workers"]
        assert len(workers) == 2 and all(w.startswith("tls://127.0.0.1:") for w in workers)


def test_another_authoritys_certificate_is_refused_in_one_line(
    tls_scheduler: TLSScheduler,
) -> None:
    started = time.monotonic()
    with (
        pytest.raises(ClusterError, match="refused the certificate") as caught,
        connect(tls_scheduler.config(tls_scheduler.other)),
    ):
        pass
    assert tls_scheduler.address in str(caught.value)
    assert "\n" not in str(caught.value)
    assert time.monotonic() - started < 15  # not Dask's 30 s of retries


def test_plain_tcp_to_a_tls_scheduler_is_named(tls_scheduler: TLSScheduler) -> None:
    address = tls_scheduler.address.replace("tls://", "tcp://")
    with (
        pytest.raises(ClusterError, match=r"closed the connection.*tls://"),
        connect(ClusterConfig(scheduler=address, connect_timeout=5)),
    ):
        pass


def test_tls_needs_certificates_and_a_tls_address(tls_scheduler: TLSScheduler) -> None:
    with (
        dask.config.set({"distributed.comm.tls.ca-file": None}),
        pytest.raises(ConfigError, match=r"no certificates are set.*\[cluster\.tls\]"),
        connect(tls_scheduler.config(None)),
    ):
        pass
    tcp = tls_scheduler.address.replace("tls://", "tcp://")
    with (
        pytest.raises(ConfigError, match=r"\[cluster\.tls\] is set but .* is tcp://"),
        connect(tls_scheduler.config(tls_scheduler.files, scheduler=tcp)),
    ):
        pass
    missing = {**tls_scheduler.files, "ca_file": "nowhere/ca.pem"}
    with (
        pytest.raises(ConfigError, match=r"ca_file .*nowhere/ca\.pem: no such file"),
        connect(tls_scheduler.config(missing)),
    ):
        pass


def test_dasks_own_tls_config_is_used_without_a_tls_section(
    tls_scheduler: TLSScheduler,
) -> None:
    files = {k: str(tls_scheduler.base / v) for k, v in tls_scheduler.files.items()}
    settings = {
        "distributed.comm.tls.ca-file": files["ca_file"],
        "distributed.comm.tls.client.cert": files["cert_file"],
        "distributed.comm.tls.client.key": files["key_file"],
    }
    with dask.config.set(settings), connect(tls_scheduler.config(None)) as client:
        assert client.submit(sum, [4, 5]).result() == 9


def test_a_local_cluster_with_a_tls_section_speaks_tls(tls_scheduler: TLSScheduler) -> None:
    config = ClusterConfig.model_validate(
        {"n_workers": 1, "dashboard": False, "tls": tls_scheduler.files}
    ).resolved(tls_scheduler.base)
    with connect(config) as client:
        assert client.scheduler.address.startswith("tls://127.0.0.1:")
        assert client.submit(sum, [1, 1]).result() == 2


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_unreachable_scheduler_fails_at_once_in_one_line() -> None:
    address = f"tcp://127.0.0.1:{_closed_port()}"
    started = time.monotonic()
    with (
        pytest.raises(ClusterError, match=r"refused the connection: nothing listens") as caught,
        connect(ClusterConfig(scheduler=address)),
    ):
        pass
    assert address in str(caught.value)
    assert time.monotonic() - started < 10  # not after Dask's 30 s of retries


def test_a_silent_listener_fails_after_the_connect_timeout() -> None:
    with socket.socket() as silent:  # accepts connections (the backlog) and never speaks
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        address = f"tcp://127.0.0.1:{silent.getsockname()[1]}"
        with (
            pytest.raises(ClusterError, match=r"did not complete the Dask handshake within 2 s"),
            connect(ClusterConfig(scheduler=address, connect_timeout=2)),
        ):
            pass


def test_a_scan_runs_over_tls_with_the_configs_certificates(
    tls_scheduler: TLSScheduler, mock_sky: MockSky, tmp_path: Path
) -> None:
    """`lensflow scan` with kind "address" and [cluster.tls]: every partition done, there."""
    import tomli_w
    from typer.testing import CliRunner

    from lensflow.cli import app
    from lensflow.config import ScanConfig

    raw = ScanConfig.from_toml(mock_sky.config).to_toml_dict()
    certificates = {k: str(tls_scheduler.base / v) for k, v in tls_scheduler.files.items()}
    raw["cluster"] = {"kind": "address", "scheduler": tls_scheduler.address, "tls": certificates}
    config = tmp_path / "scan.toml"
    config.write_text(tomli_w.dumps(raw))
    before = tls_scheduler.cluster.scheduler.transition_counter

    result = CliRunner().invoke(app, ["scan", str(config), "--output", str(tmp_path / "scan")])

    assert result.exit_code == 0, result.output
    assert tls_scheduler.cluster.scheduler.transition_counter > before  # its tasks ran there
    status = CliRunner().invoke(app, ["status", str(tmp_path / "scan"), "--json"])
    totals = json.loads(status.output)["totals"]
    assert totals["rows_read"] == mock_sky_rows(mock_sky) and totals["failed"] == 0


def mock_sky_rows(sky: MockSky) -> int:
    """Rows in the sky's catalog, counted from its Parquet leaves."""
    import pyarrow.dataset as ds

    return int(ds.dataset(sky.catalog / "dataset", format="parquet").count_rows())


def test_a_scan_given_another_authoritys_certificate_ends_in_one_line(
    tls_scheduler: TLSScheduler, mock_sky: MockSky, tmp_path: Path
) -> None:
    import tomli_w
    from typer.testing import CliRunner

    from lensflow.cli import app
    from lensflow.config import ScanConfig

    raw = ScanConfig.from_toml(mock_sky.config).to_toml_dict()
    certificates = {k: str(tls_scheduler.base / v) for k, v in tls_scheduler.other.items()}
    raw["cluster"] = {"scheduler": tls_scheduler.address, "tls": certificates}
    config = tmp_path / "scan.toml"
    config.write_text(tomli_w.dumps(raw))

    result = CliRunner().invoke(app, ["scan", str(config), "--output", str(tmp_path / "scan")])

    assert result.exit_code == EXIT_UNAVAILABLE, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "refused the certificate" in lines[0], result.output
    assert tls_scheduler.address in lines[0] and "Traceback" not in result.output
