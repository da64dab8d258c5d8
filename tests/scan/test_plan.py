"""`lensflow plan`: rows per partition from the footers, and rows after cuts on the cluster."""

from __future__ import annotations

import shutil
from pathlib import Path

import astropy.units as u
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from astropy.coordinates import SkyCoord
from distributed import Client
from typer.testing import CliRunner

from lensflow.catalog import Catalog, open_catalog, open_inputs, read_partition
from lensflow.cli import app
from lensflow.config import PlanConfig, ScanConfig, SkyConfig
from lensflow.cuts import Cut, parse_cuts
from lensflow.layout import leaf_path
from lensflow.scan.plan import PlanRow, plan, plan_inputs
from lensflow.simulate.mock_sky import MockSky
from lensflow.sky import pixel_key
from lensflow.testing import copy_sky

runner = CliRunner()


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


CONE = (150.6, 2.4, 0.7)


def _in_cone_after_cuts(mock_sky: MockSky, cut: Cut) -> int:
    """Rows of the whole sky that pass the cut and lie in CONE, by astropy's separation."""
    catalog = open_catalog(mock_sky.catalog)
    tables = [
        read_partition(p, catalog=catalog, columns=["raStack", "decStack"], cut=cut).table
        for p in catalog.pixels
    ]
    table = pa.concat_tables(tables)
    coords = SkyCoord(table["raStack"].to_numpy() * u.deg, table["decStack"].to_numpy() * u.deg)
    centre = SkyCoord(CONE[0] * u.deg, CONE[1] * u.deg)
    return int((coords.separation(centre).deg <= CONE[2]).sum())


def _with_cone(path: Path) -> PlanConfig:
    config = PlanConfig.from_toml(path)
    return config.model_copy(update={"sky": SkyConfig(cone=CONE)})


def test_a_region_plans_only_its_partitions_and_never_opens_the_others(
    mock_sky: MockSky, sky_cut: Cut, tmp_path: Path, dask_client: Client
) -> None:
    sky = copy_sky(mock_sky, tmp_path / "sky")
    inputs = open_inputs(_with_cone(sky.config))
    kept = set(inputs.catalog.pixels)
    assert inputs.region is not None and 0 < len(kept) < len(sky.pixels)
    outside = [p for p in sky.pixels if p not in kept]
    for pixel in outside:  # any read of these would fail
        leaf_path(sky.catalog, pixel).write_bytes(b"PAR1 not a parquet file PAR1")
    footers = plan_inputs(inputs)
    assert {r.pixel for r in footers} == kept and all(r.error is None for r in footers)
    exact = plan_inputs(inputs, client=dask_client)
    assert {r.pixel for r in exact} == kept and all(r.error is None for r in exact)
    for row in exact:
        assert row.rows >= (row.rows_after_cuts or 0) >= (row.rows_in_region or 0)
    assert sum(r.rows_in_region or 0 for r in exact) == _in_cone_after_cuts(mock_sky, sky_cut)
    assert "in cone (150.6, 2.4) radius 0.7 deg" in inputs.title


def test_plan_prints_only_the_partitions_the_region_keeps(
    mock_sky: MockSky, tmp_path: Path, dask_client: Client
) -> None:
    sky = copy_sky(mock_sky, tmp_path / "sky")
    sky.config.write_text(sky.config.read_text() + f"\n[sky]\ncone = {list(CONE)}\n")
    kept = {pixel_key(p) for p in open_inputs(PlanConfig.from_toml(sky.config)).catalog.pixels}
    address = dask_client.scheduler.address
    result = runner.invoke(app, ["plan", str(sky.config), "--exact", "--scheduler", address])
    assert result.exit_code == 0, result.output
    listed = {key for key in (pixel_key(p) for p in sky.pixels) if f" {key} " in result.output}
    assert listed == kept
    assert f"{len(kept)} partitions" in result.output and "in region" in result.output


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("[cuts]", "[cut]"), "unknown section [cut]; did you mean [cuts]?"),
        (("id = ", "ids = "), "unknown key catalog.columns.ids; did you mean catalog.columns.id?"),
        (("[output]", "[sky]\ncone = [150, 95, 1]\n[output]"), "sky.cone: declination must be"),
        (("[output]", "[sky]\ncone = [10, -40, 1]\n[output]"), "touches none of the"),
        (("[output]", '[sky]\nmoc = "absent.fits"\n[output]'), "absent.fits: no such MOC file"),
    ],
)
def test_plan_refuses_a_mistake_in_one_line(
    mock_sky: MockSky, tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    sky = copy_sky(mock_sky, tmp_path / "sky")
    sky.config.write_text(sky.config.read_text().replace(*change, 1))
    result = runner.invoke(app, ["plan", str(sky.config)])
    assert result.exit_code == 78 and result.stdout == ""  # a config error (README table)
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert message in result.stderr
