"""A tiled mock sky: HSC-like coadd patches that open with astropy, share one projection, cover
every source, and cut into stamps whose flux matches the truth."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from lensflow.catalog import open_catalog
from lensflow.config import PlanConfig
from lensflow.cutouts import open_store, partition_group, read_group
from lensflow.images import CatalogRows, build_cutouts
from lensflow.layout import leaf_path
from lensflow.simulate import tiles
from lensflow.simulate.mock_sky import MockSky, _source_scene, make_mock_sky
from lensflow.surveys import survey_profile

if TYPE_CHECKING:
    from distributed import Client

HSC = survey_profile("hsc")


@pytest.fixture(scope="module")
def tiled_sky(tmp_path_factory: pytest.TempPathFactory, dask_client: Client) -> MockSky:
    out = tmp_path_factory.mktemp("tiled") / "sky"
    return make_mock_sky(
        out, n_sources=200, n_lenses=2, seed=5, survey=HSC, client=dask_client, tiles=True
    )


def _catalog(sky: MockSky) -> pd.DataFrame:
    frames = [pd.read_parquet(leaf_path(sky.catalog, pixel)) for pixel in sky.pixels]
    return pd.concat(frames, ignore_index=True)


def _patch_files(sky: MockSky) -> list[Path]:
    return sorted((sky.root / tiles.COADDS).glob("*/calexp-*-*.fits.fz"))


def test_the_patches_open_with_astropy_and_share_one_projection(tiled_sky: MockSky) -> None:
    files = _patch_files(tiled_sky)
    patches = {f.parent.name for f in files}
    assert len(files) == len(patches) * len(HSC.bands) and len(patches) >= 2
    crpix: list[np.ndarray] = []
    first: WCS | None = None
    for path in files:
        with fits.open(path) as hdul:
            hdu = hdul[1]
            assert isinstance(hdu, fits.CompImageHDU) and hdu.data.dtype == np.float32
            header = hdu.header
            band = header["FILTER"]
            assert path.name == f"calexp-{band}-{path.parent.name}.fits.fz"
            assert header["PSF_FWHM"] == HSC.psf_fwhm_arcsec[band]
            wcs = WCS(header)
        assert list(wcs.wcs.ctype) == ["RA---TAN", "DEC--TAN"]
        if first is None:
            first = wcs
        assert np.allclose(wcs.wcs.crval, first.wcs.crval)
        assert np.allclose(wcs.wcs.cdelt, first.wcs.cdelt)
        crpix.append(wcs.wcs.crpix - first.wcs.crpix)
    steps = np.asarray(crpix)
    assert np.array_equal(steps, np.rint(steps))  # whole pixels between patches


def test_every_source_lies_inside_a_patch(tiled_sky: MockSky) -> None:
    catalog = _catalog(tiled_sky)
    ra, dec = catalog["ra"].to_numpy(), catalog["dec"].to_numpy()
    inside = np.zeros(len(catalog), dtype=bool)
    for path in _patch_files(tiled_sky):
        with fits.open(path) as hdul:
            header = hdul[1].header
        x, y = WCS(header).all_world2pix(ra, dec, 0)
        inside |= (x >= 0) & (x < header["NAXIS1"] - 1) & (y >= 0) & (y < header["NAXIS2"] - 1)
    assert inside.all()


def test_the_scan_config_names_the_patches(tiled_sky: MockSky) -> None:
    config = PlanConfig.from_toml(tiled_sky.config)
    assert config.images is not None and config.cutouts is not None
    assert config.images.bands == list(HSC.bands) and config.images.unit == "zero_point:27"
    assert not (tiled_sky.root / "cutouts.zarr").exists()


def _isolated_bright_stars(catalog: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """Stars of r < 22.5 whose neighbours within 16 arcsec (two 10.75-arcsec stamps touch out to
    15.2 arcsec, corner to corner) hold under 1 % of their r flux."""
    merged = catalog.merge(truth, left_on="object_id", right_on="id")
    ra, dec = np.radians(merged["ra"].to_numpy()), np.radians(merged["dec"].to_numpy())
    dx = (ra[:, None] - ra[None, :]) * np.cos(dec[:, None])
    separation = np.degrees(np.hypot(dx, dec[:, None] - dec[None, :])) * 3600.0
    np.fill_diagonal(separation, np.inf)
    flux = 10.0 ** (-0.4 * merged["true_mag_r"].to_numpy())
    alone = (separation < 16.0) @ flux < 0.01 * flux
    bright = (merged["class"] == "star").to_numpy() & (merged["true_mag_r"] < 22.5).to_numpy()
    return merged[alone & bright]


def test_stamps_cut_from_the_patches_hold_the_truths_flux(
    tiled_sky: MockSky, dask_client: Client
) -> None:
    """Per band, a bright isolated star's stamp sums to the flux of its true scene (its
    noiseless light as simulated, halo included): within 1 % (its neighbours' light, under 1 %,
    and fpack's quantisation at 1/16 sigma, far below) plus 5 sigma of the sky and Poisson
    noise summed over the stamp's pixels."""
    config = PlanConfig.from_toml(tiled_sky.config)
    assert config.images is not None and config.cutouts is not None
    catalog = open_catalog(tiled_sky.catalog)
    rows = CatalogRows(catalog, id_column="object_id", ra_column="ra", dec_column="dec")
    store = config.cutouts.path
    report = build_cutouts(rows, store=store, config=config.images, client=dask_client)
    assert not report.failed
    info = open_store(store)
    assert info.bands == HSC.bands and info.pixel_scale_arcsec == pytest.approx(0.168)
    assert info.psf_fwhm_arcsec == pytest.approx(dict(HSC.psf_fwhm_arcsec))
    stamps: dict[int, np.ndarray] = {}
    for pixel in tiled_sky.pixels:
        ids, images = read_group(store, partition_group(pixel))
        stamps.update(zip(ids.tolist(), images, strict=True))
    assert len(stamps) == 200
    stars = _isolated_bright_stars(_catalog(tiled_sky), pd.read_parquet(tiled_sky.truth))
    assert len(stars) >= 2
    ids = stars["object_id"].to_numpy()
    kinds, mags = stars["class"].to_numpy(), stars["true_mag_r"].to_numpy()
    truths = tiles._render_chunk(_source_scene, kinds, mags, ids, 5, HSC)
    n = HSC.cutout_size
    for object_id, truth in zip(ids, truths, strict=True):
        image = stamps[int(object_id)]
        for b, band in enumerate(HSC.bands):
            flux = float(truth[b].sum())
            noise = n * HSC.sky_sigma_njy[band] + math.sqrt(flux / HSC.gain(band))
            assert abs(float(image[b].sum()) - flux) < 0.01 * flux + 5 * noise, (band, flux)
