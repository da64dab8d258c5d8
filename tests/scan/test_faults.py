"""Faults and bad input a scan must survive without a wrong word: each on a real cluster.

Rows outside their pixel, a restored or changed catalog file, a column-map typo, Ctrl-C, a full
or read-only disk on one pixel, a pixel that kills its worker, a rerun under a reader.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dask
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import tomli_w
from distributed import Client, LocalCluster, WorkerPlugin

from lensflow.catalog import inside_pixel
from lensflow.errors import ClusterError, MissingColumnError, ScanStateError
from lensflow.io import file_digest
from lensflow.layout import leaf_path
from lensflow.scan import rerun_scan, run_scan
from lensflow.scan import state as scan_state
from lensflow.scan.state import read_markers
from lensflow.simulate.mock_sky import MockSky
from lensflow.sky import pixel_key
from lensflow.testing import copy_sky, leaf_inodes, loopback_cluster, settle, sky_config

pytestmark = pytest.mark.faults

LENSFLOW = Path(sys.executable).parent / "lensflow"


@pytest.fixture
def sky(mock_sky: MockSky, tmp_path: Path) -> MockSky:
    return copy_sky(mock_sky, tmp_path / "sky")


def _candidate_rows(scan: Path) -> pa.Table:
    return pa.concat_tables(
        [pq.read_table(scan / m.output) for m in read_markers(scan) if m.output is not None]
    )


def test_rows_outside_their_pixel_by_coordinates_are_counted_not_written(
    sky: MockSky, scanned: Path, dask_client: Client, tmp_path: Path
) -> None:
    """A row whose ra/dec lie elsewhere while its _healpix_29 agrees with the file is rejected."""
    [marker] = [m for m in read_markers(scanned) if m.output and m.rows_after_photometry][:1]
    victim_pixel = marker.order_pixel
    victim = pq.read_table(scanned / marker.output)["id"][0].as_py()
    leaf = leaf_path(sky.catalog, victim_pixel)
    table = pq.read_table(leaf)
    columns = sky_config(sky, tmp_path).catalog.columns
    row = table[columns.id].to_pylist().index(victim)
    frame = table.to_pandas()
    frame.loc[row, columns.ra] = (frame.loc[row, columns.ra] + 180.0) % 360.0  # the far side
    frame.loc[row, columns.dec] = -frame.loc[row, columns.dec]
    pq.write_table(pa.Table.from_pandas(frame, schema=table.schema, preserve_index=False), leaf)

    output = tmp_path / "scan"
    outcome = run_scan(sky_config(sky, output), client=dask_client)
    assert outcome.failed == 0
    markers = {m.pixel: m for m in read_markers(output)}
    assert markers[pixel_key(victim_pixel)].rejected.get("outside_pixel") == 1
    assert sum(m.rejected.get("outside_pixel", 0) for m in markers.values()) == 1
    for m in markers.values():
        rows = pq.read_table(output / str(m.output))
        ra, dec = rows["ra"].to_numpy(), rows["dec"].to_numpy()
        assert inside_pixel(ra, dec, m.order_pixel).all(), f"pixel {m.pixel} holds foreign rows"
    assert victim not in set(_candidate_rows(output)["id"].to_pylist())


def test_a_restored_file_resumes_and_only_its_partition_runs(
    sky: MockSky, dask_client: Client, tmp_path: Path
) -> None:
    leaf = leaf_path(sky.catalog, sky.pixels[1])
    good = leaf.read_bytes()
    leaf.write_bytes(good[: len(good) // 2])  # truncated: the partition fails
    output = tmp_path / "scan"
    first = run_scan(sky_config(sky, output), client=dask_client)
    assert first.failed == 1
    before = leaf_inodes(output, [p for p in sky.pixels if p != sky.pixels[1]])
    leaf.write_bytes(good)  # restored
    second = run_scan(sky_config(sky, output), client=dask_client)
    assert (second.ran, second.failed) == (1, 0)
    assert leaf_inodes(output, [p for p in sky.pixels if p != sky.pixels[1]]) == before
    assert all(m.status == "done" for m in read_markers(output))


def test_the_driver_digests_no_catalog_file_and_each_marker_records_its_own(
    sky: MockSky, dask_client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new folder: the partitions' tasks (worker processes) digest the files they read."""
    digested: list[Any] = []
    real = scan_state.file_fingerprint
    monkeypatch.setattr(scan_state, "file_fingerprint", lambda f: digested.append(f) or real(f))
    output = tmp_path / "scan"
    assert run_scan(sky_config(sky, output), client=dask_client).failed == 0
    assert digested == [], "the driver read no catalog file to digest it"
    markers = read_markers(output)
    assert len(markers) == len(sky.pixels)
    for marker in markers:
        leaf = leaf_path(sky.catalog, marker.order_pixel)
        assert marker.files == {str(leaf.relative_to(sky.catalog / "dataset")): file_digest(leaf)}
    os.utime(leaf, ns=(time.time_ns(), time.time_ns() + 10**9))  # touched: digested on resume
    assert run_scan(sky_config(sky, output), client=dask_client).ran == 0
    assert digested == [leaf], "a resume digests only the file whose mtime changed"


def test_a_done_partition_failing_its_rerun_leaves_the_candidate_catalog_consistent(
    sky: MockSky, dask_client: Client, tmp_path: Path
) -> None:
    """Its old candidate file goes with its done marker: _metadata, the partition list and the
    row count of the candidate catalog agree, and lsdb reads only the done partitions."""
    import lsdb

    output = tmp_path / "scan"
    assert run_scan(sky_config(sky, output), client=dask_client).failed == 0
    victim = sky.pixels[1]
    leaf = leaf_path(sky.catalog, victim)
    leaf.write_bytes(leaf.read_bytes()[:100])  # truncated: its rerun fails
    assert rerun_scan(output, [victim], client=dask_client).failed == 1
    done = [m for m in read_markers(output) if m.status == "done"]
    assert len(done) == len(sky.pixels) - 1
    assert not leaf_path(output, victim).exists()
    rows = sum(pq.read_metadata(output / str(m.output)).num_rows for m in done)
    assert pq.read_metadata(output / "dataset" / "_metadata").num_rows == rows
    catalog = lsdb.read_hats(output)
    assert victim not in catalog.get_healpix_pixels()
    assert len(catalog.compute()) == rows == catalog.hc_structure.catalog_info.total_rows


def test_a_changed_file_of_a_done_partition_is_refused_by_name(
    sky: MockSky, dask_client: Client, tmp_path: Path
) -> None:
    output = tmp_path / "scan"
    run_scan(sky_config(sky, output), client=dask_client)
    pixel = sky.pixels[2]
    leaf = leaf_path(sky.catalog, pixel)
    original = leaf.read_bytes()
    os.utime(leaf, ns=(time.time_ns(), time.time_ns() + 10**9))  # touched, same bytes
    assert run_scan(sky_config(sky, output), client=dask_client).ran == 0
    table = pq.read_table(leaf)
    pq.write_table(table.slice(1), leaf)  # one row fewer
    name = leaf.relative_to(sky.catalog / "dataset")
    with pytest.raises(ScanStateError) as caught:
        run_scan(sky_config(sky, output), client=dask_client)
    message = str(caught.value)
    assert f"catalog file {name} changed (content)" in message
    assert f"--pixels {pixel_key(pixel)}" in message
    assert not any(c in message for c in ("sha256", "was '")), message
    outcome = rerun_scan(output, [pixel], client=dask_client)  # a rerun takes the new file
    assert (outcome.ran, outcome.failed) == (1, 0)
    leaf.write_bytes(original)  # and back: a changed done partition again
    with pytest.raises(ScanStateError, match="changed"):
        run_scan(sky_config(sky, output), client=dask_client)


def test_a_column_map_typo_is_refused_before_the_folder_is_claimed(
    mock_sky: MockSky, dask_client: Client, tmp_path: Path
) -> None:
    good = sky_config(mock_sky, tmp_path / "scan")
    mapped = good.catalog.columns.mapped()
    typo = mapped["mag_z"][:-1] + "x"
    columns = good.catalog.columns.model_copy(update={"mag_z": typo})
    bad = good.model_copy(update={"catalog": good.catalog.model_copy(update={"columns": columns})})
    with pytest.raises(MissingColumnError) as caught:
        run_scan(bad, client=dask_client)
    message = str(caught.value)
    assert f"mag_z = {typo!r}" in message and f"did you mean {mapped['mag_z']!r}" in message
    assert not (tmp_path / "scan").exists(), "nothing is claimed before the inputs pass"
    assert run_scan(good, client=dask_client).failed == 0


def test_sigint_stops_a_scan_cleanly_and_it_resumes(
    mock_sky: MockSky, dask_client: Client, tmp_path: Path
) -> None:
    output = tmp_path / "scan"
    config = sky_config(mock_sky, output).to_toml_dict()
    config["cluster"] = {"n_workers": 1, "max_in_flight": 1, "dashboard": False}
    path = tmp_path / "scan.toml"
    path.write_text(tomli_w.dumps(config))
    scan = subprocess.Popen(
        [str(LENSFLOW), "scan", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 90
    while not list((output / "markers").glob("*/*.json")) and time.monotonic() < deadline:
        time.sleep(0.05)
    scan.send_signal(signal.SIGINT)
    out, err = scan.communicate(timeout=60)
    assert scan.returncode == 130, (out, err)
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err and any("interrupted" in line for line in lines), err
    done = [m for m in read_markers(output) if m.status == "done"]
    assert 0 < len(done) < len(mock_sky.pixels), "the scan was not stopped mid-way"
    assert not list(output.rglob("*.tmp"))
    status = subprocess.run(
        [str(LENSFLOW), "status", str(output)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert status.returncode != 0 and "incomplete" in status.stdout + status.stderr
    kept = leaf_inodes(output, [m.order_pixel for m in done])
    outcome = run_scan(sky_config(mock_sky, output), client=dask_client)
    assert (outcome.skipped, outcome.failed) == (len(done), 0)
    assert leaf_inodes(output, [m.order_pixel for m in done]) == kept


@pytest.fixture
def threaded_client() -> Iterator[Client]:
    """Workers as threads of this process, so a test can patch what a task calls."""
    with (
        LocalCluster(
            n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


@pytest.mark.parametrize(
    ("code", "text"), [(errno.ENOSPC, "No space left"), (errno.EROFS, "Read-only")]
)
def test_a_full_or_read_only_disk_on_one_pixel_fails_only_it(
    mock_sky: MockSky,
    threaded_client: Client,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    code: int,
    text: str,
) -> None:
    victim = mock_sky.pixels[3]
    name = leaf_path(tmp_path, victim).name
    write_table = pq.write_table

    def failing(table: pa.Table, where: Any, *args: Any, **kwargs: Any) -> None:
        if f".{name}." in str(where):
            Path(where).write_bytes(b"PAR1 half a file")
            raise OSError(code, os.strerror(code))
        write_table(table, where, *args, **kwargs)

    monkeypatch.setattr(pq, "write_table", failing)
    output = tmp_path / "scan"
    outcome = run_scan(sky_config(mock_sky, output), client=threaded_client)
    assert (outcome.failed, outcome.exit_status) == (1, 2)
    markers = {m.pixel: m for m in read_markers(output)}
    failed = markers[pixel_key(victim)]
    assert failed.status == "failed" and failed.error_kind == "io"
    assert failed.error is not None and "\n" not in failed.error and text in failed.error
    assert failed.error.startswith(f"pixel {pixel_key(victim)}")
    assert sum(m.status == "done" for m in markers.values()) == len(mock_sky.pixels) - 1
    assert not list(output.rglob("*.tmp")) and not list(output.rglob(".*"))


def test_a_poison_pixel_fails_after_allowed_failures_and_the_rest_finish(
    mock_sky: MockSky, tmp_path: Path
) -> None:
    victim = pixel_key(mock_sky.pixels[0])

    class Poison(WorkerPlugin):
        """Makes every worker die on the victim's select task, as a segfaulting reader would."""

        def setup(self, worker: Any) -> None:
            from lensflow.scan import stages

            select = stages._select

            def poisoned(pixel: Any, context: Any) -> Any:
                if f"{pixel.order}/{pixel.pixel}" == victim:
                    os._exit(1)
                return select(pixel, context)

            stages._select = poisoned

    # No failure allowed: the victim's shared chain dies once and its lone rerun once, so the
    # nannies restart two workers (each restart is a chance for distributed's start-up race).
    with (
        dask.config.set({"distributed.scheduler.allowed-failures": 0}),
        loopback_cluster() as cluster,
        Client(cluster) as client,
    ):
        client.register_plugin(Poison())
        outcome = run_scan(sky_config(mock_sky, tmp_path / "scan"), client=client)
        settle(cluster, client)  # the nannies restart the killed workers
    assert (outcome.failed, outcome.exit_status) == (1, 2)
    markers = {m.pixel: m for m in read_markers(tmp_path / "scan")}
    assert markers[victim].status == "failed" and markers[victim].error_kind == "worker"
    assert "KilledWorker" in str(markers[victim].error)
    assert sum(m.status == "done" for m in markers.values()) == len(mock_sky.pixels) - 1


def test_a_forced_rerun_under_a_reader_never_shows_half_a_file(
    scanned: Path, mock_sky: MockSky, dask_client: Client
) -> None:
    pixel = max(mock_sky.pixels, key=lambda p: pq.read_metadata(leaf_path(scanned, p)).num_rows)
    leaf = leaf_path(scanned, pixel)
    expected = pq.read_table(leaf)
    stop = threading.Event()
    seen: list[int] = []
    errors: list[BaseException] = []

    def read() -> None:
        while not stop.is_set():
            try:
                table = pq.read_table(leaf)
                seen.append(table.num_rows)
                if not table.equals(expected):
                    errors.append(AssertionError("a reader saw another table"))
            except BaseException as exc:  # noqa: BLE001  every failure is the test's finding
                errors.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for _ in range(3):
            assert rerun_scan(scanned, [pixel], client=dask_client).failed == 0
    finally:
        stop.set()
        reader.join()
    assert not errors, errors[:3]
    assert len(seen) > 10 and set(seen) == {expected.num_rows}
    assert np.array_equal(pq.read_table(leaf)["id"].to_numpy(), expected["id"].to_numpy())


def test_a_killed_scheduler_stops_the_scan_and_it_resumes_on_a_new_cluster(
    mock_sky: MockSky, tmp_path: Path
) -> None:
    address = tmp_path / "scheduler.json"
    dask_cli = [sys.executable, "-m"]
    common = ["--host", "127.0.0.1", "--no-dashboard", "--scheduler-file", str(address)]
    scheduler = subprocess.Popen(
        [*dask_cli, "distributed.cli.dask_scheduler", *common], stderr=subprocess.DEVNULL
    )
    worker = subprocess.Popen(
        [*dask_cli, "distributed.cli.dask_worker", *common, "--nthreads", "1"],
        stderr=subprocess.DEVNULL,
    )
    output = tmp_path / "scan"
    config = sky_config(mock_sky, output, cluster={"max_in_flight": 2})
    killed: list[int] = []

    def kill_scheduler(done: int, total: int, result: object) -> None:
        if done == 2 and not killed:
            scheduler.send_signal(signal.SIGKILL)
            killed.append(done)

    try:
        deadline = time.monotonic() + 60
        while not address.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        with Client(scheduler_file=str(address), timeout=30) as client:
            client.wait_for_workers(1, timeout=60)
            with pytest.raises(ClusterError, match="lost the Dask scheduler mid-scan"):
                run_scan(config, client=client, progress=kill_scheduler)
    finally:
        for process in (worker, scheduler):
            process.kill()
            process.wait()
    assert killed, "the scan finished before the scheduler could be killed"
    done = [m.order_pixel for m in read_markers(output) if m.status == "done"]
    assert 2 <= len(done) < len(mock_sky.pixels)
    kept = leaf_inodes(output, done)
    with loopback_cluster() as cluster, Client(cluster) as client:
        outcome = run_scan(sky_config(mock_sky, output), client=client)
    assert (outcome.skipped, outcome.failed) == (len(done), 0)
    assert leaf_inodes(output, done) == kept, "done partitions are not computed again"
    assert all(m.status == "done" for m in read_markers(output))
    assert not list(output.rglob("*.tmp"))
