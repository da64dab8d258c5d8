"""The cutout store's root attributes for stamps cut from coadd tiles: made once, then checked.

Bands in the configured order, the tiles' pixel scale (from their WCS), units nJy with AB zero
point 31.4, the PSF FWHM per band (from the config, else from the tiles' headers) and the size.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from lensflow.config import ImagesConfig
from lensflow.cutouts import create_store, open_store
from lensflow.errors import CutoutError, ImageError
from lensflow.images.index import TileIndex
from lensflow.images.tiles import PSF_KEYWORDS
from lensflow.units import NJY_ZERO_POINT_AB

SCALE_TOLERANCE = 1e-3
"""Relative spread of pixel scales over the tiles that still counts as one scale."""


def pixel_scale(index: TileIndex) -> float:
    """The tiles' common pixel scale (arcsec); refuses tiles of different scales."""
    scales = index.pixel_scale[index.usable & np.isfinite(index.pixel_scale)]
    if scales.size == 0:
        raise ImageError("no readable tile with a celestial WCS; see the tile errors in the index")
    low, high = float(scales.min()), float(scales.max())
    if high / low - 1.0 > SCALE_TOLERANCE:
        raise ImageError(
            f"the tiles' pixel scales range from {low:.6f} to {high:.6f} arcsec; one store needs "
            "one pixel scale: cut tiles of different scales into different stores"
        )
    return float(np.median(scales))


def psf_fwhm(index: TileIndex, config: ImagesConfig) -> dict[str, float]:
    """PSF FWHM per band (arcsec): the config's, else the median of the tiles' header values."""
    given = config.psf_fwhm_arcsec or {}
    fwhm: dict[str, float] = {}
    for band in config.bands:
        if band in given:
            fwhm[band] = float(given[band])
            continue
        values = index.psf_fwhm[(index.band == band) & index.usable]
        values = values[np.isfinite(values)]
        if values.size == 0:
            raise ImageError(
                f"no PSF FWHM for band {band!r}: set images.psf_fwhm_arcsec.{band} (arcsec) in "
                f"the config, or give its tiles a header keyword {' / '.join(PSF_KEYWORDS)}"
            )
        fwhm[band] = float(np.median(values))
    return fwhm


def prepare_store(store: Path, *, index: TileIndex, config: ImagesConfig) -> None:
    """Create the store with its root attributes, or check an existing one's against them."""
    scale, fwhm = pixel_scale(index), psf_fwhm(index, config)
    store = Path(store)
    if not store.exists():
        create_store(
            store,
            bands=config.bands,
            pixel_scale_arcsec=scale,
            psf_fwhm_arcsec=fwhm,
            cutout_size=config.size,
            zero_point_ab=NJY_ZERO_POINT_AB,
            units="nJy",
        )
        return
    info = open_store(store)
    expected = {
        "bands": tuple(config.bands),
        "cutout_size": config.size,
        "units": "nJy",
        "pixel_scale_arcsec": scale,
        "psf_fwhm_arcsec": fwhm,
    }
    found = {
        "bands": info.bands,
        "cutout_size": info.cutout_size,
        "units": info.units,
        "pixel_scale_arcsec": info.pixel_scale_arcsec,
        "psf_fwhm_arcsec": dict(info.psf_fwhm_arcsec),
    }
    differ = [key for key in expected if not _same(expected[key], found[key])]
    if differ:
        raise CutoutError(
            f"{store}: the store holds {[f'{k}={found[k]}' for k in differ]} but these images "
            f"give {[f'{k}={expected[k]}' for k in differ]}; build into a new path or remove it"
        )


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b
