"""The scan end to end on a real multi-process LocalCluster: outputs, resume, rerun, failures."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from distributed import Client

from lensflow.catalog import leaf_path, open_catalog
from lensflow.cutouts import create_store
from lensflow.errors import ModelMismatchError, ScanStateError
from lensflow.scan import rerun_scan, run_scan
from lensflow.scan.state import read_markers
from lensflow.simulate.mock_sky import MockSky
from lensflow.sky import pixel_key
from tests.scan_helpers import copy_sky, sky_config


@pytest.fixture(scope="module")
def scanned(
    mock_sky: MockSky, dask_client: Client, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    output = tmp_path_factory.mktemp("scan") / "scan"
    outcome = run_scan(sky_config(mock_sky, output), client=dask_client)
    assert outcome.failed == 0 and outcome.exit_status == 0
    return output


def _inodes(root: Path, sky: MockSky) -> dict[str, tuple[int, int]]:
    result = {}
    for pixel in sky.pixels:
        stat = leaf_path(root, pixel).stat()
        result[pixel_key(pixel)] = (stat.st_ino, stat.st_mtime_ns)
    return result


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


def test_candidate_files_hold_every_scored_row(scanned: Path, mock_sky: MockSky) -> None:
    catalog = open_catalog(mock_sky.catalog)
    for marker in read_markers(scanned):
        table = pq.read_table(scanned / marker.output)
        assert table.num_rows == marker.rows_after_photometry - marker.rejected.get(
            "missing_cutout", 0
        )
        assert {"id", "ra", "dec", "_healpix_29", "photometry_score", "ensemble_score"} <= set(
            table.column_names
        )
        members = [c for c in table.column_names if c.startswith("score_")]
        assert len(members) >= 2
        if table.num_rows:
            mean = np.mean([table[c].to_numpy() for c in members], axis=0)
            assert np.allclose(mean, table["ensemble_score"].to_numpy(), atol=1e-6)
            assert set(table["config_fingerprint"].to_pylist()) == {marker.fingerprint}
    assert catalog.pixels == tuple(sorted(mock_sky.pixels))


def test_candidate_ids_are_catalog_ids(scanned: Path, mock_sky: MockSky) -> None:
    truth = pq.read_table(mock_sky.truth, columns=["id"])["id"].to_numpy()
    ids = np.concatenate(
        [
            pq.read_table(leaf_path(scanned, p), columns=["id"])["id"].to_numpy()
            for p in mock_sky.pixels
        ]
    )
    assert ids.dtype == np.int64 and np.isin(ids, truth).all()


def test_lsdb_opens_and_cone_searches_the_output(scanned: Path) -> None:
    lsdb = pytest.importorskip("lsdb")
    catalog = lsdb.read_hats(scanned)
    frame = catalog.compute()
    assert len(frame) > 0
    best = frame.sort_values("ensemble_score").iloc[-1]
    found = catalog.cone_search(float(best["ra"]), float(best["dec"]), radius_arcsec=1.0).compute()
    assert best["id"] in set(found["id"])


def test_resume_skips_done_partitions_and_leaves_files_alone(
    scanned: Path, mock_sky: MockSky, dask_client: Client
) -> None:
    before = _inodes(scanned, mock_sky)
    outcome = run_scan(sky_config(mock_sky, scanned), client=dask_client)
    assert outcome.ran == 0 and outcome.skipped == len(mock_sky.pixels)
    assert _inodes(scanned, mock_sky) == before


def test_rerun_rewrites_only_the_chosen_pixels(
    scanned: Path, mock_sky: MockSky, dask_client: Client
) -> None:
    chosen = mock_sky.pixels[0]
    before = _inodes(scanned, mock_sky)
    digest_before = {m.pixel: m.sha256 for m in read_markers(scanned)}
    outcome = rerun_scan(scanned, [chosen], client=dask_client)
    assert outcome.ran == 1 and outcome.failed == 0
    after = _inodes(scanned, mock_sky)
    key = pixel_key(chosen)
    assert after[key][0] != before[key][0], "the chosen pixel's file was replaced"
    assert {k: v for k, v in after.items() if k != key} == {
        k: v for k, v in before.items() if k != key
    }
    digest_after = {m.pixel: m.sha256 for m in read_markers(scanned)}
    assert digest_after == digest_before, "a rerun writes the same bytes"
    assert not list(scanned.rglob("*.tmp"))


def test_changed_config_is_refused_with_the_difference(
    scanned: Path, mock_sky: MockSky, dask_client: Client
) -> None:
    config = sky_config(mock_sky, scanned, cuts={"expression": "rKronMag < 21"})
    with pytest.raises(ScanStateError, match=r"cuts: was .*rKronMag < 22\.5.*now 'rKronMag < 21'"):
        run_scan(config, client=dask_client)


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
    import pyarrow as pa
    from hats_import.catalog.arguments import ImportArguments
    from hats_import.pipeline import pipeline_with_client

    from lensflow.config import ScanConfig
    from lensflow.cutouts import list_groups, open_store, read_group, write_group

    names = {"objID": "object_id", "raStack": "ra_deg", "decStack": "dec_deg", "rKronMag": "r_kron"}
    table = pq.read_table(mock_sky.catalog / "dataset").drop_columns(["_healpix_29"])
    table = table.rename_columns([names.get(n, n) for n in table.column_names])
    pq.write_table(table, tmp_path / "input.parquet")
    pipeline_with_client(
        ImportArguments(
            output_artifact_name="resorted",
            input_file_list=[str(tmp_path / "input.parquet")],
            file_reader="parquet",
            ra_column="ra_deg",
            dec_column="dec_deg",
            output_path=str(tmp_path),
            pixel_threshold=700,
            highest_healpix_order=8,
            progress_bar=False,
            tmp_dir=str(tmp_path / "tmp"),
        ),
        dask_client,
    )
    catalog = open_catalog(tmp_path / "resorted")
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
            f"Norder={pixel.order}/Npix={pixel.pixel}",
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
        outcome = run_scan(sky_config(mock_sky, tmp_path / "scan"), client=client)
        assert outcome.failed == 0
        assert {m.worker for m in read_markers(tmp_path / "scan")} == {gpu}


def test_a_corrupt_marker_reruns_only_its_pixel(
    scanned: Path, mock_sky: MockSky, dask_client: Client
) -> None:
    from lensflow.scan.state import marker_path

    victim = mock_sky.pixels[2]
    marker_path(scanned, victim).write_text('{"pixel": "3/1", "status": ')
    before = _inodes(scanned, mock_sky)
    outcome = run_scan(sky_config(mock_sky, scanned), client=dask_client)
    assert outcome.ran == 1 and outcome.skipped == len(mock_sky.pixels) - 1
    after = _inodes(scanned, mock_sky)
    changed = {k for k in before if before[k] != after[k]}
    assert changed == {pixel_key(victim)}
    assert {m.pixel: m.status for m in read_markers(scanned)}[pixel_key(victim)] == "done"


def test_the_same_pixel_classified_twice_at_once_writes_one_file(
    scanned: Path, mock_sky: MockSky, dask_client: Client
) -> None:
    """A task may run twice (a retry after a worker death): both runs write the same bytes."""
    from lensflow.scan.run import build_context
    from lensflow.scan.stages import classify_partition, select_partition

    context = build_context(sky_config(mock_sky, scanned))
    pixel = mock_sky.pixels[0]
    expected = {m.pixel: m.sha256 for m in read_markers(scanned)}[pixel_key(pixel)]
    survivors = select_partition(pixel, context=context)
    [shared] = dask_client.scatter([context], broadcast=True, hash=False)
    twins = [
        dask_client.submit(classify_partition, survivors, context=shared, pure=False)
        for _ in range(2)
    ]
    results = dask_client.gather(twins)
    assert all(r.ok for r in results)
    assert {r.marker.sha256 for r in results} == {expected}
    assert not list(scanned.rglob("*.tmp"))


def test_temp_files_of_a_killed_writer_are_removed(
    scanned: Path, mock_sky: MockSky, dask_client: Client
) -> None:
    """A writer killed between temp write and rename leaves `.NAME.PID.tmp`; the scan clears it."""
    leaf = leaf_path(scanned, mock_sky.pixels[0])
    stale = leaf.with_name(f".{leaf.name}.99999.tmp")
    stale.write_bytes(b"half a parquet file")
    before = _inodes(scanned, mock_sky)
    run_scan(sky_config(mock_sky, scanned), client=dask_client)
    assert not stale.exists()
    assert _inodes(scanned, mock_sky) == before
