"""A scan restricted to a [sky] region, and the inputs a scan checks before any task runs."""

from __future__ import annotations

from pathlib import Path

import astropy.units as u
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from astropy.coordinates import SkyCoord
from distributed import Client
from typer.testing import CliRunner

from lensflow.catalog import open_catalog, read_partition
from lensflow.cli import app
from lensflow.config import ScanConfig, SkyConfig
from lensflow.cuts import parse_cuts
from lensflow.errors import ConfigError, MissingColumnError, PixelError, ScanStateError
from lensflow.layout import leaf_path
from lensflow.scan import run_scan
from lensflow.scan.run import build_context, run_context
from lensflow.scan.state import Marker, funnel_totals, read_markers, write_marker
from lensflow.simulate.mock_sky import MockSky
from lensflow.sky import pixel_key
from lensflow.testing import copy_sky, sky_config

runner = CliRunner()
CONE = (150.6, 2.4, 0.7)


def _separation(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    """Degrees from the centre of CONE, by astropy."""
    coords = SkyCoord(ra * u.deg, dec * u.deg)
    return np.asarray(coords.separation(SkyCoord(CONE[0] * u.deg, CONE[1] * u.deg)).deg)


def _with_sky(config: ScanConfig, **sky: object) -> ScanConfig:
    return config.model_copy(update={"sky": SkyConfig(**sky)})  # type: ignore[arg-type]


def test_a_cone_scan_reads_only_its_partitions_and_counts_rows_inside(
    mock_sky: MockSky, dask_client: Client, tmp_path: Path
) -> None:
    sky = copy_sky(mock_sky, tmp_path / "sky")
    config = _with_sky(sky_config(sky, tmp_path / "scan"), cone=CONE)
    kept = build_context(config).catalog.pixels
    outside = [p for p in sky.pixels if p not in kept]
    assert kept and outside
    for pixel in outside:  # a read of any of these would fail its partition
        leaf_path(sky.catalog, pixel).write_bytes(b"PAR1 not a parquet file PAR1")

    outcome = run_scan(config, client=dask_client)
    assert (outcome.failed, outcome.ran, outcome.exit_status) == (0, len(kept), 0)
    markers = read_markers(tmp_path / "scan")
    assert sorted(m.pixel for m in markers) == sorted(pixel_key(p) for p in kept)

    catalog = open_catalog(mock_sky.catalog)
    cut = parse_cuts(config.cuts.expression)
    whole = pa.concat_tables(
        read_partition(p, catalog=catalog, columns=["raStack", "decStack"], cut=cut).table
        for p in catalog.pixels
    )
    inside = _separation(whole["raStack"].to_numpy(), whole["decStack"].to_numpy()) <= CONE[2]
    totals = funnel_totals(markers)
    assert totals["rows_in_region"] == int(inside.sum()) > 0
    assert totals["rows_read"] == sum(
        pq.read_metadata(leaf_path(catalog.path, p)).num_rows for p in kept
    )
    for m in markers:
        assert m.rows_in_region is not None
        assert m.rows_read >= m.rows_after_cuts >= m.rows_in_region >= m.rows_after_photometry
        set_aside = m.rejected.get("bad_coordinates", 0) + m.rejected.get("missing_magnitude", 0)
        assert m.rows_in_region >= m.rows_after_photometry + set_aside
        table = pq.read_table(tmp_path / "scan" / str(m.output), columns=["ra", "dec"])
        if table.num_rows:
            assert (_separation(table["ra"].to_numpy(), table["dec"].to_numpy()) <= CONE[2]).all()

    again = run_scan(config, client=dask_client)
    assert (again.ran, again.skipped) == (0, len(kept))


def test_a_changed_region_is_refused_on_resume_with_the_difference(
    mock_sky: MockSky, tmp_path: Path
) -> None:
    config = sky_config(mock_sky, tmp_path / "scan")
    build_context(_with_sky(config, cone=CONE))
    # a partition has run (a folder where none has accepts a changed config)
    write_marker(tmp_path / "scan", Marker(pixel=pixel_key(mock_sky.pixels[0]), status="failed"))
    with pytest.raises(ScanStateError, match=r"sky: was \{'cone': \[150\.6, 2\.4, 0\.7\]\}, now"):
        build_context(_with_sky(config, cone=(150.6, 2.4, 0.5)))
    with pytest.raises(ScanStateError, match=r"sky: was .*, now None"):
        build_context(config)
    pixel = pixel_key(build_context(_with_sky(config, cone=CONE)).catalog.pixels[0])
    with pytest.raises(ScanStateError, match=r"sky: was .*'pixels'"):
        build_context(_with_sky(config, pixels=(pixel,)))


def test_a_scan_of_the_whole_sky_keeps_its_fingerprint(mock_sky: MockSky, tmp_path: Path) -> None:
    """No [sky] adds nothing to the fingerprint, so scans made before regions still resume."""
    context = build_context(sky_config(mock_sky, tmp_path / "scan"))
    assert context.region is None and context.catalog.pixels == tuple(sorted(mock_sky.pixels))
    record = (tmp_path / "scan" / "fingerprint.json").read_text()
    assert '"sky"' not in record


def _columns_changed(mock_sky: MockSky, tmp_path: Path, **changes: str | None) -> ScanConfig:
    raw = sky_config(mock_sky, tmp_path / "scan").to_toml_dict()
    columns = raw["catalog"]["columns"]
    for key, value in changes.items():
        if value is None:
            columns.pop(key)
        else:
            columns[key] = value
    return ScanConfig.from_dict(raw, base=tmp_path)


@pytest.mark.parametrize(
    "changes",
    [{"mag_z": None}, {"mag_z": None, "mag_y": "zKronMag"}],
)
def test_the_magnitudes_the_models_need_are_checked_before_any_task(
    mock_sky: MockSky, tmp_path: Path, changes: dict[str, str | None]
) -> None:
    config = _columns_changed(mock_sky, tmp_path, **changes)
    with pytest.raises(ConfigError, match=r"has no mag_z; photometry model '.+' of .+needs it"):
        build_context(config)
    assert not (tmp_path / "scan").exists()


def test_a_mapped_column_the_catalog_lacks_is_refused_before_any_task(
    mock_sky: MockSky, tmp_path: Path
) -> None:
    config = _columns_changed(mock_sky, tmp_path, mag_r="rKronMg")
    with pytest.raises(
        MissingColumnError, match=r"mag_r = 'rKronMg' \(did you mean 'rKronMag'.*no such column"
    ):
        build_context(config)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("[cuts]", "[cut]"), "unknown section [cut]; did you mean [cuts]?"),
        (('mag_z = "zKronMag"\n', ""), "[catalog.columns] has no mag_z; photometry model"),
        (("[output]", "[sky]\npolygon = [[1, 2], [2, 2]]\n[output]"), "at least 3 vertices"),
        (("[output]", '[sky]\npixels = ["3/768"]\n[output]'), "pixel 768 does not exist"),
    ],
)
def test_scan_refuses_a_mistake_in_one_line(
    mock_sky: MockSky, tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    sky = copy_sky(mock_sky, tmp_path / "sky")
    text = sky.config.read_text()
    assert change[0] in text
    sky.config.write_text(text.replace(*change, 1))
    result = runner.invoke(app, ["scan", str(sky.config), "--output", str(tmp_path / "scan")])
    assert result.exit_code == 78 and result.stdout == ""  # a config error (README table)
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert message in result.stderr
    assert not (tmp_path / "scan" / "markers").exists()


def test_a_forced_pixel_outside_the_region_is_refused(mock_sky: MockSky, tmp_path: Path) -> None:
    config = _with_sky(sky_config(mock_sky, tmp_path / "scan"), cone=CONE)
    context = build_context(config)
    outside = next(p for p in mock_sky.pixels if p not in context.catalog.pixels)
    with pytest.raises(PixelError, match=r"not a partition .*\[sky\] cone \(150\.6, 2\.4\)"):
        run_context(context, client=None, pixels=[outside])  # type: ignore[arg-type]
