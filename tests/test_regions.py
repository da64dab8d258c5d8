"""Sky regions on the mock sky: the partitions kept and the rows kept, against references."""

from __future__ import annotations

from pathlib import Path

import astropy.units as u
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from astropy.coordinates import SkyCoord
from hats.pixel_math.spatial_index import compute_spatial_index, spatial_index_to_healpix
from mocpy import MOC

from lensflow.catalog import Catalog, open_catalog, read_partition
from lensflow.config import SkyConfig
from lensflow.errors import ConfigError
from lensflow.regions import Region, build_region, read_moc
from lensflow.simulate.mock_sky import MockSky
from lensflow.sky import pixel_key

COLUMNS = ["objID", "raStack", "decStack", "_healpix_29"]


@pytest.fixture(scope="module")
def catalog(mock_sky: MockSky) -> Catalog:
    return open_catalog(mock_sky.catalog)


@pytest.fixture(scope="module")
def whole(mock_sky: MockSky) -> pa.Table:
    """Every row of the mock sky, read at once without lensflow's reader."""
    return pq.read_table(mock_sky.catalog / "dataset", columns=COLUMNS)


def _depth(catalog: Catalog) -> int:
    return max(p.order for p in catalog.pixels)


def _found(catalog: Catalog, region: Region) -> set[int]:
    """Ids the region keeps, reading only the partitions it keeps."""
    ids: set[int] = set()
    for pixel in region.keep(catalog.pixels):
        table = read_partition(pixel, catalog=catalog, columns=COLUMNS[:3]).table
        ids |= set(region.filter(table, ra="raStack", dec="decStack")["objID"].to_pylist())
    return ids


def _ids(whole: pa.Table, mask: np.ndarray) -> set[int]:
    return set(whole["objID"].to_numpy()[mask].tolist())


def _coords(whole: pa.Table) -> SkyCoord:
    return SkyCoord(whole["raStack"].to_numpy() * u.deg, whole["decStack"].to_numpy() * u.deg)


def test_a_cone_keeps_exactly_the_rows_within_its_radius(catalog: Catalog, whole: pa.Table) -> None:
    region = build_region(SkyConfig(cone=(150.6, 2.4, 0.7)), depth=_depth(catalog))
    kept = region.keep(catalog.pixels)
    assert 0 < len(kept) < len(catalog.pixels)
    separation = _coords(whole).separation(SkyCoord(150.6 * u.deg, 2.4 * u.deg)).deg
    expected = _ids(whole, separation <= 0.7)
    assert len(expected) > 50
    assert _found(catalog, region) == expected


def test_a_polygon_keeps_exactly_the_rows_inside_it(catalog: Catalog, whole: pa.Table) -> None:
    vertices = [(149.2, 1.0), (150.8, 0.6), (151.4, 2.2), (150.0, 3.1)]
    region = build_region(SkyConfig(polygon=tuple(vertices)), depth=_depth(catalog))
    assert 0 < len(region.keep(catalog.pixels)) < len(catalog.pixels)
    reference = MOC.from_polygon_skycoord(SkyCoord(vertices, unit="deg"), max_depth=20)
    coords = _coords(whole)
    expected = _ids(whole, reference.contains_lonlat(coords.ra, coords.dec))
    assert len(expected) > 50
    assert _found(catalog, region) == expected


def test_a_pixel_list_keeps_the_rows_in_its_pixels_at_any_order(
    catalog: Catalog, whole: pa.Table
) -> None:
    first, second = catalog.pixels[0], catalog.pixels[-1]
    child = (second.order + 1, second.pixel * 4 + 2)  # a quarter of a partition
    names = (pixel_key(first), f"{child[0]}/{child[1]}")
    region = build_region(SkyConfig(pixels=names), depth=_depth(catalog))
    assert region.keep(catalog.pixels) == (first, second)
    index = whole["_healpix_29"].to_numpy()
    mask = spatial_index_to_healpix(index, target_order=first.order) == first.pixel
    mask |= spatial_index_to_healpix(index, target_order=child[0]) == child[1]
    assert _found(catalog, region) == _ids(whole, mask)


def test_a_moc_file_keeps_the_rows_in_its_cells(
    catalog: Catalog, whole: pa.Table, tmp_path: Path
) -> None:
    moc = MOC.from_cone(lon=149.5 * u.deg, lat=1.5 * u.deg, radius=0.6 * u.deg, max_depth=9)
    moc.save(tmp_path / "field.fits", format="fits")
    region = build_region(SkyConfig(moc=tmp_path / "field.fits"), depth=_depth(catalog))
    assert region.identity["moc"] == str(tmp_path / "field.fits")
    assert len(region.identity["sha256"]) == 64
    coords = _coords(whole)
    expected = _ids(whole, moc.contains_lonlat(coords.ra, coords.dec))
    assert len(expected) > 20
    assert _found(catalog, region) == expected


def test_a_region_away_from_the_sky_keeps_no_partition(catalog: Catalog) -> None:
    region = build_region(SkyConfig(cone=(10.0, -40.0, 1.0)), depth=_depth(catalog))
    assert region.keep(catalog.pixels) == ()


def test_rows_without_usable_coordinates_are_left_for_the_scan_to_count() -> None:
    ra = np.array([150.0, 150.1, np.nan, 150.0, 170.0])
    dec = np.array([2.0, 2.1, 2.0, 95.0, 2.0])
    index = compute_spatial_index(np.nan_to_num(ra, nan=150.0), np.clip(dec, -90, 90))
    table = pa.table({"ra": ra, "dec": dec, "_healpix_29": index})
    for sky in (
        SkyConfig(cone=(150.0, 2.0, 1.0)),
        SkyConfig(polygon=((149.0, 1.0), (151.0, 1.0), (151.0, 3.0), (149.0, 3.0))),
    ):
        region = build_region(sky, depth=5)
        assert region.contains(table, ra="ra", dec="dec").tolist() == [True] * 4 + [False]


def test_unreadable_moc_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"sky\.moc: .*absent\.fits: no such MOC file"):
        read_moc(tmp_path / "absent.fits")
    (tmp_path / "bad.fits").write_bytes(b"SIMPLE  = not a fits file")
    with pytest.raises(ConfigError, match=r"bad\.fits: not a MOC FITS file"):
        read_moc(tmp_path / "bad.fits")
