"""The mock sky: a HATS catalog hats, lsdb and lensflow open, its cutouts, truth and config."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from distributed import Client
from hats.pixel_math.healpix_shim import radec2pix

from lensflow.catalog import open_catalog, read_partition
from lensflow.config import ScanConfig
from lensflow.cutouts import list_groups, open_store, partition_group, read_group
from lensflow.cuts import check_columns, parse_cuts
from lensflow.errors import SimulationError
from lensflow.layout import healpix_29
from lensflow.simulate.mock_sky import ID_OFFSET, MockSky, make_mock_sky
from lensflow.surveys import survey_profile

LSST = survey_profile("lsst")


def test_the_catalog_opens_with_lensflow(mock_sky: MockSky) -> None:
    catalog = open_catalog(mock_sky.catalog)
    assert catalog.path == mock_sky.catalog
    assert catalog.pixels == tuple(sorted(mock_sky.pixels))
    assert len({p.order for p in catalog.pixels}) > 1, "partitions come at mixed orders"
    assert (catalog.ra_column, catalog.dec_column) == ("raStack", "decStack")
    assert catalog.total_rows == 3_000 and not catalog.stray_files
    rows = sum(read_partition(p, catalog=catalog, columns=[]).rows_read for p in catalog.pixels)
    assert rows == 3_000


def test_the_catalog_opens_with_lsdb(mock_sky: MockSky) -> None:
    lsdb = pytest.importorskip("lsdb")
    frame = lsdb.read_hats(mock_sky.catalog).compute()
    truth = pq.read_table(mock_sky.truth, columns=["id"])["id"].to_numpy()
    assert len(frame) == 3_000
    assert np.array_equal(np.sort(frame["objID"].to_numpy()), np.sort(truth))


def test_every_row_lies_in_its_pixel(mock_sky: MockSky) -> None:
    catalog = open_catalog(mock_sky.catalog)
    for pixel in catalog.pixels:
        table = read_partition(pixel, catalog=catalog, columns=["raStack", "decStack"]).table
        ra, dec = table["raStack"].to_numpy(), table["decStack"].to_numpy()
        index = table["_healpix_29"].to_numpy()
        assert np.all(radec2pix(pixel.order, ra, dec) == pixel.pixel), f"pixel {pixel}"
        assert np.array_equal(index, healpix_29(ra, dec))
        assert np.all(np.diff(index) >= 0), "rows in spatial index order"


def test_ids_and_lenses_agree_with_the_truth(mock_sky: MockSky) -> None:
    truth = pq.read_table(mock_sky.truth).to_pandas()
    ids = pq.read_table(mock_sky.catalog / "dataset", columns=["objID"])["objID"].to_numpy()
    assert ids.dtype == np.int64 and len(np.unique(ids)) == ids.size == 3_000
    assert ids.min() >= ID_OFFSET > 2**53
    assert np.array_equal(np.sort(ids), np.sort(truth["id"].to_numpy()))
    lenses = truth.loc[truth["is_lens"], "id"].to_numpy()
    assert np.array_equal(np.sort(mock_sky.lens_ids), np.sort(lenses)) and lenses.size == 12
    assert set(truth.loc[truth["is_lens"], "class"]) == {"lens"}
    assert truth.loc[truth["is_lens"], "has_cutout"].all()


def test_the_cutouts_are_those_the_truth_lists(mock_sky: MockSky) -> None:
    info = open_store(mock_sky.cutouts)
    assert info.bands == tuple(LSST.bands)
    assert info.cutout_size == LSST.cutout_size
    assert info.pixel_scale_arcsec == pytest.approx(LSST.pixel_scale_arcsec)
    truth = pq.read_table(mock_sky.truth, columns=["id", "has_cutout"]).to_pandas()
    groups = list_groups(mock_sky.cutouts)
    assert set(groups) <= {partition_group(p) for p in mock_sky.pixels}
    catalog = open_catalog(mock_sky.catalog)
    stored = []
    for pixel in mock_sky.pixels:
        if partition_group(pixel) not in groups:
            continue
        ids, images = read_group(mock_sky.cutouts, partition_group(pixel))
        in_pixel = read_partition(pixel, catalog=catalog, columns=["objID"]).table["objID"]
        assert np.isin(ids, in_pixel.to_numpy()).all(), f"cutouts of {pixel} lie in it"
        size = info.cutout_size
        assert images.shape == (ids.size, len(info.bands), size, size)
        assert np.isfinite(images).all()
        stored.append(ids)
    expected = truth.loc[truth["has_cutout"], "id"].to_numpy()
    assert np.array_equal(np.sort(np.concatenate(stored)), np.sort(expected))
    assert 0 < expected.size < 3_000


def test_the_scan_config_fits_the_catalog(mock_sky: MockSky) -> None:
    config = ScanConfig.from_toml(mock_sky.config)
    assert config.catalog.path == mock_sky.catalog.resolve()
    assert config.cutouts.path == mock_sky.cutouts.resolve()
    catalog = open_catalog(config.catalog.path)
    assert set(config.catalog.columns.mapped().values()) <= set(catalog.schema.names)
    check_columns(parse_cuts(config.cuts.expression), catalog.schema, where=str(catalog.path))


def test_the_catalog_carries_morphology_measured_on_pixels(mock_sky: MockSky) -> None:
    frame = pq.read_table(mock_sky.catalog / "dataset").to_pandas()
    truth = pq.read_table(mock_sky.truth, columns=["id", "class"]).to_pandas()
    frame = frame.merge(truth, left_on="objID", right_on="id")
    bright = frame["rKronMag"] < 22.5
    stars, lenses = frame[bright & (frame["class"] == "star")], frame[frame["class"] == "lens"]
    galaxies = frame[bright & frame["class"].isin(["elliptical", "spiral", "disc_face_on"])]
    assert len(stars) > 20 and len(galaxies) > 100 and len(lenses) == 12
    star_excess = (stars["rPSFMag"] - stars["rKronMag"]).to_numpy()
    assert abs(np.median(star_excess)) < 0.01
    assert np.median(stars["rMomentRadius"]) < 0.05
    assert np.mean(stars["extendedness"] == 0.0) > 0.8
    assert np.mean(galaxies["extendedness"] == 1.0) > 0.95
    assert np.median(galaxies["rPSFMag"] - galaxies["rKronMag"]) > 0.3
    # a lens: blue arcs around a red deflector, larger in g than in i
    assert np.median(lenses["gMomentRadius"] - lenses["iMomentRadius"]) > 0.1
    assert (lenses["extendedness"] == 1.0).all()
    for band in LSST.catalog_bands:
        assert np.isfinite(frame.loc[bright, f"{band}MomentRadius"]).all()
    config = ScanConfig.from_toml(mock_sky.config)
    mapped = config.catalog.columns.mapped()
    assert (mapped["psfmag_g"], mapped["size_z"]) == ("gPSFMag", "zMomentRadius")


def test_an_existing_sky_is_never_overwritten(mock_sky: MockSky, dask_client: Client) -> None:
    before = sorted(p.name for p in mock_sky.root.iterdir())
    with pytest.raises(SimulationError, match="already holds a mock sky"):
        make_mock_sky(mock_sky.root, n_sources=10, n_lenses=1, seed=1, client=dask_client)
    assert sorted(p.name for p in mock_sky.root.iterdir()) == before


@pytest.mark.parametrize(("sources", "lenses"), [(0, 0), (10, 11), (10, -1)])
def test_impossible_counts_are_refused(
    tmp_path: Path, dask_client: Client, sources: int, lenses: int
) -> None:
    with pytest.raises(SimulationError, match=rf"lenses \({lenses}\) <= sources \({sources}\)"):
        make_mock_sky(
            tmp_path / "sky", n_sources=sources, n_lenses=lenses, seed=1, client=dask_client
        )
    assert not (tmp_path / "sky").exists()


@pytest.fixture(scope="module")
def hsc_sky(tmp_path_factory: pytest.TempPathFactory, dask_client: Client) -> MockSky:
    """A small mock sky of the hsc profile: 1,000 sources, 3 lenses."""
    return make_mock_sky(
        tmp_path_factory.mktemp("hsc") / "sky",
        n_sources=1_000,
        n_lenses=3,
        seed=5,
        survey=survey_profile("hsc"),
        client=dask_client,
    )


def test_an_hsc_sky_has_five_band_cutouts_at_its_pixel_scale(hsc_sky: MockSky) -> None:
    info = open_store(hsc_sky.cutouts)
    assert info.bands == ("g", "r", "i", "z", "y")
    assert info.pixel_scale_arcsec == pytest.approx(0.168)
    assert (info.units, info.zero_point_ab, info.cutout_size) == ("nJy", 31.4, 64)
    assert dict(info.psf_fwhm_arcsec) == pytest.approx(
        {"g": 0.79, "r": 0.75, "i": 0.61, "z": 0.68, "y": 0.68}
    )
    ids, images = read_group(hsc_sky.cutouts, list_groups(hsc_sky.cutouts)[0])
    assert images.shape == (ids.size, 5, 64, 64) and np.isfinite(images).all()
    truth = pq.read_table(hsc_sky.truth).to_pandas()
    assert truth["is_lens"].sum() == 3 and truth.loc[truth["is_lens"], "has_cutout"].all()


def test_an_hsc_sky_names_its_columns_as_hsc_does(hsc_sky: MockSky) -> None:
    catalog = open_catalog(hsc_sky.catalog)
    assert (catalog.ra_column, catalog.dec_column) == ("ra", "dec")
    names = set(catalog.schema.names)
    assert {"object_id", "ra", "dec", "i_extendedness_value"} <= names
    for band in "grizy":
        assert {f"{band}_cmodel_mag", f"{band}_cmodel_magerr", f"{band}_psfflux_mag"} <= names
        assert f"{band}_sdssshape_radius" in names
    assert not any("KronMag" in name for name in names)
    ids = pq.read_table(hsc_sky.catalog / "dataset", columns=["object_id"])["object_id"]
    assert ids.type == "int64" and len(ids) == 1_000


def test_an_hsc_sky_scan_config_fits_its_catalog(hsc_sky: MockSky) -> None:
    config = ScanConfig.from_toml(hsc_sky.config)
    mapped = config.catalog.columns.mapped()
    assert mapped["id"] == "object_id" and mapped["mag_y"] == "y_cmodel_mag"
    assert mapped["magerr_z"] == "z_cmodel_magerr" and mapped["psfmag_y"] == "y_psfflux_mag"
    assert mapped["size_g"] == "g_sdssshape_radius"
    assert config.cuts.expression.startswith("r_cmodel_mag < 22.5")
    catalog = open_catalog(config.catalog.path)
    assert set(mapped.values()) <= set(catalog.schema.names)
    check_columns(parse_cuts(config.cuts.expression), catalog.schema, where=str(catalog.path))
