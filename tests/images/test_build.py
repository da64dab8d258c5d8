"""Building a cutout store from tiles on a real multi-process Dask cluster, and resuming it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from distributed import Client

from lensflow.catalog import open_catalog
from lensflow.cluster import local_cluster
from lensflow.config import ClusterConfig, ImagesConfig
from lensflow.cutouts import open_store, partition_group, read_cutouts
from lensflow.errors import CutoutError, ImageError
from lensflow.images import (
    BuildPaths,
    CatalogRows,
    PartitionReport,
    build_cutouts,
    build_partition,
    cut_stamps,
    tile_index,
)
from lensflow.images.store import prepare_store
from lensflow.layout import leaf_path
from lensflow.sky import HealpixPixel
from tests.images import Tract, grid_rows, write_bricks, write_rows_catalog, write_tract


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    with (
        local_cluster(ClusterConfig(n_workers=2, dashboard=False)) as cluster,
        Client(cluster) as client,
    ):
        yield client


@pytest.fixture
def tract(tmp_path: Path) -> Tract:
    return write_tract(tmp_path / "tract", masked=((95, 95, 1),))


def _config(tract: Tract, **changes: object) -> ImagesConfig:
    raw = {
        "tiles": str(tract.folder / "calexp-{band}-*.fits.fz"),
        "bands": ["r", "g"],
        "size": 16,
        "psf_fwhm_arcsec": {"g": 0.8, "r": 0.7},
    }
    return ImagesConfig.model_validate({**raw, **changes})


def test_build_writes_groups_that_read_back_and_a_rerun_skips(
    tmp_path: Path, tract: Tract, client: Client
) -> None:
    config, rows, store = _config(tract), grid_rows(tract), tmp_path / "cutouts.zarr"
    assert len(rows) == 2
    calls: list[tuple[int, int, PartitionReport | None]] = []
    report = build_cutouts(
        rows,
        store=store,
        config=config,
        client=client,
        max_in_flight=1,
        progress=lambda d, t, r: calls.append((d, t, r)),
    )
    assert [(d, t) for d, t, _ in calls] == [(0, 2), (1, 2), (2, 2)]
    assert not report.failed and report.skipped == ()
    info = open_store(store)
    assert info.bands == ("r", "g") and info.cutout_size == 16 and info.units == "nJy"
    assert info.pixel_scale_arcsec == pytest.approx(0.2) and info.zero_point_ab == 31.4
    assert dict(info.psf_fwhm_arcsec) == {"r": 0.7, "g": 0.8}
    index = tile_index(config, path=BuildPaths(store).index)
    for pixel, part in rows.items():
        expected = cut_stamps(part.ids, part.ra, part.dec, index=index, config=config)
        got = read_cutouts(store, partition_group(pixel), part.ids)
        np.testing.assert_array_equal(got.ids, np.sort(expected.ids))
        np.testing.assert_array_equal(got.images, expected.images[np.argsort(expected.ids)])
        rejected = np.concatenate(list(expected.rejected.values()))
        np.testing.assert_array_equal(got.missing, np.sort(rejected))
    totals = json.loads(BuildPaths(store).report.read_text())["totals"]
    assert totals["rows"] == sum(r.ids.size for r in rows.values())
    assert totals["rejected"]["edge"] > 0 and totals["rejected"]["masked"] == 1
    assert totals["written"] + sum(totals["rejected"].values()) == totals["rows"]
    assert all(isinstance(i, int) and i >= 1 << 40 for i in totals["rejected_ids"]["edge"])
    markers = sorted(BuildPaths(store).markers.iterdir())
    assert len(markers) == 2
    stamps = [m.stat().st_mtime_ns for m in markers]

    calls.clear()
    again = build_cutouts(
        rows, store=store, config=config, client=client, progress=lambda *c: calls.append(c)
    )
    assert [(d, t) for d, t, _ in calls] == [(2, 2)]
    assert sorted(again.skipped) == sorted(report.partitions)
    assert again.totals()["written"] == report.totals()["written"]
    assert [m.stat().st_mtime_ns for m in markers] == stamps


def test_build_reads_rows_from_a_catalog(tmp_path: Path, tract: Tract, client: Client) -> None:
    rows = grid_rows(tract)
    root = write_rows_catalog(tmp_path / "catalog", rows)
    total = sum(r.ids.size for r in rows.values())
    source = CatalogRows(open_catalog(root), id_column="objectId", ra_column="ra", dec_column="dec")
    store = tmp_path / "cutouts.zarr"
    broken, kept = list(rows)
    leaf = leaf_path(root, broken)
    good = leaf.read_bytes()
    leaf.write_bytes(b"PAR1 not really parquet PAR1")
    report = build_cutouts(source, store=store, config=_config(tract), client=client)
    assert report.failed == [f"{broken.order}/{broken.pixel}"]
    assert "not a readable Parquet file" in report.partitions[report.failed[0]].error
    assert report.partitions[f"{kept.order}/{kept.pixel}"].ok
    leaf.write_bytes(good)
    again = build_cutouts(source, store=store, config=_config(tract), client=client)
    assert not again.failed and again.skipped == (f"{kept.order}/{kept.pixel}",)
    assert again.totals()["rows"] == total
    arrays = build_cutouts(
        rows, store=tmp_path / "arrays.zarr", config=_config(tract), client=client
    )
    assert again.totals()["rejected_ids"] == arrays.totals()["rejected_ids"]


def test_build_partition_on_arrays_and_store_checks(tmp_path: Path, tract: Tract) -> None:
    config, store = _config(tract), tmp_path / "cutouts.zarr"
    index = tile_index(config, path=tmp_path / "tiles.parquet")
    prepare_store(store, index=index, config=config)
    pixel, part = next(iter(grid_rows(tract).items()))
    report = build_partition(pixel, rows=part, store=store, index=index, config=config)
    assert report.ok and report.written + sum(report.rejected.values()) == part.ids.size
    assert PartitionReport.from_json(json.loads(json.dumps(report.to_json()))) == report
    with pytest.raises(CutoutError, match="cutout_size"):
        prepare_store(store, index=index, config=_config(tract, size=20))
    with pytest.raises(ImageError, match="band 'g'"):
        prepare_store(
            tmp_path / "other.zarr", index=index, config=_config(tract, psf_fwhm_arcsec={"r": 0.7})
        )


def test_psf_comes_from_the_headers_when_the_config_has_none(tmp_path: Path) -> None:
    write_bricks(tmp_path / "bricks", [], bands=("g", "z"))
    config = ImagesConfig(
        tiles=str(tmp_path / "bricks" / "brick-*-image-{band}.fits.fz"), bands=["z", "g"]
    )
    index = tile_index(config, path=tmp_path / "tiles.parquet")
    prepare_store(tmp_path / "c.zarr", index=index, config=config)
    info = open_store(tmp_path / "c.zarr")
    assert dict(info.psf_fwhm_arcsec) == {"z": 0.6, "g": 0.6} and info.bands == ("z", "g")


def test_rows_outside_their_pixel_are_refused(tmp_path: Path, tract: Tract, client: Client) -> None:
    (first, _), (_, other) = grid_rows(tract).items()
    with pytest.raises(CutoutError, match="outside the pixel"):
        build_cutouts(
            {first: other}, store=tmp_path / "c.zarr", config=_config(tract), client=client
        )
    with pytest.raises(CutoutError, match="no rows given"):
        build_cutouts(
            {first: other},
            store=tmp_path / "c.zarr",
            config=_config(tract),
            client=client,
            pixels=[HealpixPixel(3, 7)],
        )
