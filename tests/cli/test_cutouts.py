"""`lensflow cutouts build` from coadd tiles: the report, resuming, a missing [images]."""

from __future__ import annotations

import json
from pathlib import Path

from distributed import Client
from typer.testing import CliRunner

from lensflow.cli import app
from lensflow.errors import USER_ERRORS
from lensflow.simulate.mock_sky import MockSky

runner = CliRunner()


def test_cutouts_build_from_tiles_then_resume(tmp_path: Path, dask_client: Client) -> None:
    from tests.images import grid_rows, write_rows_catalog, write_tract

    tract = write_tract(tmp_path / "tract", masked=((95, 95, 1),))
    rows = grid_rows(tract)
    write_rows_catalog(tmp_path / "catalog", rows)
    config = tmp_path / "build.toml"
    config.write_text(
        '[catalog]\npath = "catalog"\n[catalog.columns]\nid = "objectId"\nra = "ra"\n'
        'dec = "dec"\n[cutouts]\npath = "cutouts.zarr"\n[images]\n'
        'tiles = "tract/calexp-{band}-*.fits.fz"\nbands = ["g", "r"]\nsize = 16\n'
        "psf_fwhm_arcsec = { g = 0.8, r = 0.7 }\n"
    )
    args = ["cutouts", "build", str(config), "--scheduler", dask_client.scheduler.address]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    report = json.loads((tmp_path / "cutouts.zarr.build" / "report.json").read_text())
    totals = report["totals"]
    assert totals["rows"] == sum(r.ids.size for r in rows.values())
    assert f"{totals['written']:,} stamps of {totals['rows']:,} rows" in first.output
    assert "masked 1" in first.output and "edge" in first.output
    again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    assert f"({len(rows)} already done, 0 failed)" in again.output


def test_cutouts_build_needs_an_images_section(mock_sky: MockSky) -> None:
    result = runner.invoke(app, ["cutouts", "build", str(mock_sky.config)])
    assert result.exit_code in USER_ERRORS
    assert "no [images] section" in result.output
