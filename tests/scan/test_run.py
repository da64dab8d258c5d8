"""The scan driver on a real multi-process LocalCluster: outputs, resume, rerun, failures."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from distributed import Client

from lensflow.catalog import open_catalog
from lensflow.cluster import has_gpu_workers
from lensflow.config import ScanConfig
from lensflow.cutouts import (
    create_store,
    list_groups,
    open_store,
    partition_group,
    read_group,
    write_group,
)
from lensflow.errors import ModelMismatchError, PixelError
from lensflow.io import file_digest
from lensflow.layout import leaf_path
from lensflow.scan import PartitionResult, rerun_scan, run_scan
from lensflow.scan.run import chain_outcomes, remove_stale_temporaries
from lensflow.scan.state import marker_path, read_marker, read_markers
from lensflow.simulate.mock_sky import MockSky
from lensflow.sky import HealpixPixel, pixel_key
from lensflow.testing import (
    copy_sky,
    hats_import,
    leaf_inodes,
    loopback_cluster,
    settle,
    sky_config,
)


def test_every_partition_is_done_with_a_funnel(scanned: Path, mock_sky: MockSky) -> None:
    markers = read_markers(scanned)
    assert [m.pixel for m in markers] == sorted(
        (pixel_key(p) for p in mock_sky.pixels), key=lambda k: tuple(map(int, k.split("/")))
    )
    assert all(m.status == "done" for m in markers)
    assert sum(m.rows_read for m in markers) == 3_000
    for m in markers:
        assert m.rows_read >= m.rows_after_cuts >= m.rows_after_photometry >= m.candidates
    manifest = json.loads((scanned / "manifest.json").read_text())
    assert manifest["totals"]["done"] == len(mock_sky.pixels)


def test_lsdb_opens_and_cone_searches_the_output(scanned: Path) -> None:
    lsdb = pytest.importorskip("lsdb")
    catalog = lsdb.read_hats(scanned)
    frame = catalog.compute()
    assert len(frame) > 0
    best = frame.sort_values("ensemble_score").iloc[-1]
    found = catalog.cone_search(float(best["ra"]), float(best["dec"]), radius_arcsec=1.0).compute()
    assert best["id"] in set(found["id"])


@pytest.mark.faults
def test_resume_skips_done_partitions_and_leaves_files_alone(
    scanned: Path, mock_sky: MockSky, dask_client: Client
) -> None:
    before = leaf_inodes(scanned, mock_sky.pixels)
    outcome = run_scan(sky_config(mock_sky, scanned), client=dask_client)
    assert outcome.ran == 0 and outcome.skipped == len(mock_sky.pixels)
    assert leaf_inodes(scanned, mock_sky.pixels) == before


@pytest.mark.faults
def test_a_done_partition_whose_file_is_gone_runs_again(
    scanned: Path, mock_sky: MockSky, dask_client: Client
) -> None:
    victim = mock_sky.pixels[-1]
    digest = file_digest(leaf_path(scanned, victim))
    leaf_path(scanned, victim).unlink()
    outcome = run_scan(sky_config(mock_sky, scanned), client=dask_client)
    assert (outcome.ran, outcome.skipped) == (1, len(mock_sky.pixels) - 1)
    assert file_digest(leaf_path(scanned, victim)) == digest


def test_rerun_rewrites_only_the_chosen_pixels(
    scanned: Path, mock_sky: MockSky, dask_client: Client
) -> None:
    chosen = mock_sky.pixels[0]
    before = leaf_inodes(scanned, mock_sky.pixels)
    digest_before = {m.pixel: m.sha256 for m in read_markers(scanned)}
    outcome = rerun_scan(scanned, [chosen], client=dask_client)
    assert outcome.ran == 1 and outcome.failed == 0
    after = leaf_inodes(scanned, mock_sky.pixels)
    key = pixel_key(chosen)
    assert after[key][0] != before[key][0], "the chosen pixel's file was replaced"
    assert {k: v for k, v in after.items() if k != key} == {
        k: v for k, v in before.items() if k != key
    }
    digest_after = {m.pixel: m.sha256 for m in read_markers(scanned)}
    assert digest_after == digest_before, "a rerun writes the same bytes"
    assert not list(scanned.rglob("*.tmp"))


@pytest.mark.bad_input
def test_rerun_of_a_pixel_outside_the_catalog_is_refused(
    scanned: Path, mock_sky: MockSky, dask_client: Client
) -> None:
    before = leaf_inodes(scanned, mock_sky.pixels)
    with pytest.raises(PixelError, match="pixel 0/1 is not a partition"):
        rerun_scan(scanned, [mock_sky.pixels[0], HealpixPixel(0, 1)], client=dask_client)
    assert leaf_inodes(scanned, mock_sky.pixels) == before


def test_progress_is_reported_once_per_partition(
    scanned: Path, mock_sky: MockSky, dask_client: Client
) -> None:
    chosen = mock_sky.pixels[:2]
    calls: list[tuple[int, int, PartitionResult | None]] = []
    rerun_scan(scanned, chosen, client=dask_client, progress=lambda *call: calls.append(call))
    assert [(done, total) for done, total, _ in calls] == [(0, 2), (1, 2), (2, 2)]
    assert calls[0][2] is None
    finished = [result for _, _, result in calls[1:]]
    assert all(r is not None and r.ok for r in finished)
    assert {r.pixel for r in finished if r is not None} == set(chosen)


def test_a_finished_chain_is_read_from_its_markers_and_its_result_only_where_one_is_missing(
    scanned: Path, mock_sky: MockSky, dask_client: Client, tmp_path: Path
) -> None:
    folder = Path(shutil.copytree(scanned, tmp_path / "scan"))
    group = list(mock_sky.pixels[:2])
    on_disk = [read_marker(folder, p) for p in group]
    assert all(m is not None for m in on_disk)
    fingerprint = on_disk[0].fingerprint  # type: ignore[union-attr]
    # The chain's own result differs from its markers only by the worker it names.
    returned = [
        PartitionResult(p, dataclasses.replace(m, worker="the result"))  # type: ignore[type-var]
        for p, m in zip(group, on_disk, strict=True)
    ]
    future = dask_client.submit(lambda: returned, pure=False)
    future.result()

    outcomes = chain_outcomes(future, group, output=folder, fingerprint=fingerprint)
    assert [r.marker for r in outcomes] == on_disk and [r.pixel for r in outcomes] == group

    marker_path(folder, group[1]).unlink()
    outcomes = chain_outcomes(future, group, output=folder, fingerprint=fingerprint)
    assert [r.marker.worker for r in outcomes] == ["the result"] * 2, "a marker missing"
    shutil.copy(marker_path(scanned, group[1]), marker_path(folder, group[1]))
    outcomes = chain_outcomes(future, group, output=folder, fingerprint="another scan")
    assert [r.marker.worker for r in outcomes] == ["the result"] * 2, "markers of another scan"

    failing = dask_client.submit(lambda: 1 / 0, pure=False)
    with pytest.raises(ZeroDivisionError):
        chain_outcomes(failing, group, output=folder, fingerprint=fingerprint)


@pytest.mark.faults
def test_corrupt_partition_fails_only_its_pixel(
    mock_sky: MockSky, dask_client: Client, tmp_path: Path
) -> None:
    sky = copy_sky(mock_sky, tmp_path / "sky")
    bad = sky.pixels[1]
    leaf = leaf_path(sky.catalog, bad)
    leaf.write_bytes(b"PAR1" + os.urandom(2000))
    outcome = run_scan(sky_config(sky, tmp_path / "scan"), client=dask_client)
    assert outcome.failed == 1 and outcome.exit_status == 2
    markers = {m.pixel: m for m in read_markers(tmp_path / "scan")}
    failed = markers[pixel_key(bad)]
    assert failed.status == "failed" and failed.error_kind == "bad_input"
    assert pixel_key(bad) in failed.error and str(leaf.name) in failed.error
    assert sum(m.status == "done" for m in markers.values()) == len(sky.pixels) - 1


@pytest.mark.bad_input
def test_model_that_does_not_fit_the_cutouts_is_refused_before_the_scan(
    mock_sky: MockSky, dask_client: Client, tmp_path: Path
) -> None:
    store = tmp_path / "two_band.zarr"
    create_store(
        store,
        bands="gr",
        pixel_scale_arcsec=0.2,
        psf_fwhm_arcsec={"g": 0.8, "r": 0.7},
        cutout_size=64,
    )
    config = sky_config(mock_sky, tmp_path / "scan", cutouts={"path": store})
    with pytest.raises(
        ModelMismatchError,
        match=r"expects bands \['g', 'r', 'i'\].*two_band\.zarr has bands \['g', 'r'\]",
    ):
        run_scan(config, client=dask_client)
    assert not (tmp_path / "scan" / "markers").exists()


def test_a_hats_import_catalog_with_its_own_column_names_scans_the_same(
    scanned: Path, mock_sky: MockSky, dask_client: Client, tmp_path: Path
) -> None:
    """Re-partition the sky with hats-import under other column names: same candidates, same scores."""
    names = {"objID": "object_id", "raStack": "ra_deg", "decStack": "dec_deg", "rKronMag": "r_kron"}
    table = pq.read_table(mock_sky.catalog / "dataset").drop_columns(["_healpix_29"])
    table = table.rename_columns([names.get(n, n) for n in table.column_names])
    pq.write_table(table, tmp_path / "input.parquet")
    resorted = hats_import(
        tmp_path / "input.parquet",
        tmp_path,
        name="resorted",
        ra_column="ra_deg",
        dec_column="dec_deg",
        client=dask_client,
        pixel_threshold=700,
        highest_healpix_order=8,
    )
    catalog = open_catalog(resorted)
    assert set(catalog.pixels) != set(mock_sky.pixels), "the import should partition differently"

    info = open_store(mock_sky.cutouts)
    ids, images = zip(
        *(read_group(mock_sky.cutouts, g) for g in list_groups(mock_sky.cutouts)), strict=True
    )
    all_ids, all_images = np.concatenate(ids), np.concatenate(images)
    store = tmp_path / "cutouts.zarr"
    create_store(
        store,
        bands=info.bands,
        pixel_scale_arcsec=info.pixel_scale_arcsec,
        psf_fwhm_arcsec=info.psf_fwhm_arcsec,
        cutout_size=info.cutout_size,
    )
    for pixel in catalog.pixels:
        pixel_ids = pq.read_table(leaf_path(catalog.path, pixel), columns=["object_id"])[
            "object_id"
        ].to_numpy()
        keep = np.isin(all_ids, pixel_ids)
        write_group(
            store,
            partition_group(pixel),
            ids=all_ids[keep],
            images=all_images[keep],
        )

    original = ScanConfig.from_toml(mock_sky.config)
    columns = {k: names.get(v, v) for k, v in original.catalog.columns.mapped().items()}
    expression = original.cuts.expression
    for old, new in names.items():
        expression = expression.replace(old, new)
    config = ScanConfig.from_dict(
        {
            "catalog": {"path": str(catalog.path), "columns": columns},
            "cuts": {"expression": expression},
            "cutouts": {"path": str(store)},
            "output": {"path": str(tmp_path / "scan")},
        },
        base=tmp_path,
    )
    outcome = run_scan(config, client=dask_client)
    assert outcome.failed == 0

    def scores(root: Path) -> dict[int, float]:
        table = pa.concat_tables([pq.read_table(root / m.output) for m in read_markers(root)])
        return dict(zip(table["id"].to_pylist(), table["ensemble_score"].to_pylist(), strict=True))

    before, after = scores(scanned), scores(tmp_path / "scan")
    assert before.keys() == after.keys() and len(before) > 0
    assert max(abs(before[k] - after[k]) for k in before) < 1e-5


@pytest.mark.load
def test_ensemble_step_runs_only_on_gpu_workers(mock_sky: MockSky, tmp_path: Path) -> None:
    """With a worker advertising GPU=1, every classify task goes there; selects go anywhere."""
    from distributed import Nanny, Scheduler, SpecCluster

    def worker(**resources: float) -> dict[str, object]:
        options = {"nthreads": 1, "host": "127.0.0.1", "resources": resources}
        return {"cls": Nanny, "options": options}

    with (
        SpecCluster(
            scheduler={
                "cls": Scheduler,
                "options": {"host": "127.0.0.1", "dashboard_address": None},
            },
            workers={"cpu": worker(), "gpu": worker(GPU=1)},
        ) as cluster,
        Client(cluster) as client,
    ):
        client.wait_for_workers(2)
        infos = client.scheduler_info(n_workers=-1)["workers"]
        [gpu] = [a for a, w in infos.items() if w.get("resources", {}).get("GPU")]
        assert has_gpu_workers(client)
        outcome = run_scan(sky_config(mock_sky, tmp_path / "scan"), client=client)
        assert outcome.failed == 0
        assert {m.worker for m in read_markers(tmp_path / "scan")} == {gpu}


@pytest.mark.faults
def test_temp_files_of_a_killed_writer_are_removed(
    scanned: Path, mock_sky: MockSky, dask_client: Client
) -> None:
    """A writer killed between temp write and rename leaves `.NAME.PID.tmp`; the scan clears it."""
    leaf = leaf_path(scanned, mock_sky.pixels[0])
    stale = leaf.with_name(f".{leaf.name}.99999.tmp")
    stale.write_bytes(b"half a parquet file")
    before = leaf_inodes(scanned, mock_sky.pixels)
    run_scan(sky_config(mock_sky, scanned), client=dask_client)
    assert not stale.exists()
    assert leaf_inodes(scanned, mock_sky.pixels) == before


def test_only_temp_files_are_cleared(tmp_path: Path) -> None:
    keep = [tmp_path / "a.parquet", tmp_path / ".hidden", tmp_path / "deep" / "b.tmp"]
    stale = [tmp_path / ".a.parquet.123.tmp", tmp_path / "deep" / ".c.json.9.tmp"]
    for path in keep + stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    assert remove_stale_temporaries(tmp_path) == 2
    assert [p.exists() for p in keep + stale] == [True, True, True, False, False]


@pytest.mark.faults
def test_sigkill_of_a_worker_mid_scan(mock_sky: MockSky, tmp_path: Path) -> None:
    """A worker killed mid-scan costs only a retry of its partitions."""
    with loopback_cluster() as cluster, Client(cluster) as client:
        pids = list(client.run(os.getpid).values())
        killed: list[int] = []

        def kill_once(done: int, total: int, result: object) -> None:
            if done == 3 and not killed:
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])

        outcome = run_scan(
            sky_config(mock_sky, tmp_path / "scan"), client=client, progress=kill_once
        )
        settle(cluster, client)  # its nanny restarts the killed worker
    assert killed, "the scan finished before a worker could be killed"
    markers = read_markers(tmp_path / "scan")
    assert outcome.failed == 0
    assert all(m.status == "done" for m in markers)
    assert len(markers) == len(mock_sky.pixels)
    assert not list((tmp_path / "scan").rglob("*.tmp"))
