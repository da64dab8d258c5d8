"""`lensflow plan`: rows per partition from the footers, and rows after cuts on the cluster."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from distributed import Client

from lensflow.catalog import Catalog, open_catalog, read_partition
from lensflow.config import ScanConfig
from lensflow.cuts import Cut, parse_cuts
from lensflow.layout import leaf_path
from lensflow.scan.plan import PlanRow, plan
from lensflow.simulate.mock_sky import MockSky
from lensflow.sky import pixel_key


@pytest.fixture(scope="module")
def sky_cut(mock_sky: MockSky) -> Cut:
    return parse_cuts(ScanConfig.from_toml(mock_sky.config).cuts.expression)


@pytest.fixture
def damaged(mock_sky: MockSky, tmp_path: Path) -> tuple[Catalog, Path]:
    """A copy of the sky's catalog whose second partition is not Parquet; and that file."""
    catalog = open_catalog(Path(shutil.copytree(mock_sky.catalog, tmp_path / "catalog")))
    leaf = leaf_path(catalog.path, catalog.pixels[1])
    leaf.write_bytes(b"PAR1 not a parquet file PAR1")
    return catalog, leaf


def _by_pixel(rows: list[PlanRow]) -> dict[str, PlanRow]:
    return {pixel_key(r.pixel): r for r in rows}


def test_footers_give_every_partitions_rows(mock_sky: MockSky, sky_cut: Cut) -> None:
    catalog = open_catalog(mock_sky.catalog)
    rows = plan(catalog, cut=sky_cut)
    assert [r.pixel for r in rows] == list(catalog.pixels)
    for row in rows:
        assert row.rows == pq.read_metadata(leaf_path(catalog.path, row.pixel)).num_rows
        assert row.rows_after_cuts is None and row.error is None
    assert sum(r.rows for r in rows) == 3_000


def test_the_exact_pass_counts_rows_after_cuts(
    mock_sky: MockSky, sky_cut: Cut, dask_client: Client
) -> None:
    catalog = open_catalog(mock_sky.catalog)
    rows = plan(catalog, cut=sky_cut, client=dask_client)
    assert [r.pixel for r in rows] == list(catalog.pixels)
    for row in rows:
        read = read_partition(row.pixel, catalog=catalog, columns=[], cut=sky_cut)
        assert (row.rows, row.rows_after_cuts, row.error) == (
            read.rows_read,
            read.table.num_rows,
            None,
        )
    assert 0 < sum(r.rows_after_cuts or 0 for r in rows) < 3_000


def _assert_one_broken_row(rows: list[PlanRow], catalog: Catalog, leaf: Path) -> None:
    by_pixel = _by_pixel(rows)
    bad = pixel_key(catalog.pixels[1])
    assert len(rows) == len(catalog.pixels)
    assert all(r.error is None and r.rows > 0 for k, r in by_pixel.items() if k != bad)
    error = by_pixel[bad].error
    assert by_pixel[bad].rows == 0 and error is not None
    assert bad in error and leaf.name in error


def test_a_broken_partition_is_a_row_naming_its_file_in_the_exact_pass(
    damaged: tuple[Catalog, Path], sky_cut: Cut, dask_client: Client
) -> None:
    catalog, leaf = damaged
    _assert_one_broken_row(plan(catalog, cut=sky_cut, client=dask_client), catalog, leaf)


def test_a_broken_partition_is_a_row_naming_its_file_in_the_footer_pass(
    damaged: tuple[Catalog, Path], sky_cut: Cut
) -> None:
    catalog, leaf = damaged
    _assert_one_broken_row(plan(catalog, cut=sky_cut), catalog, leaf)
