"""A mock sky's images as coadd patches of one tract: fpack-compressed FITS, one per band and patch.

The tract is one TAN projection at the survey's pixel scale covering every source with a margin;
its patches are PATCH_PIXELS squares that overlap their neighbours by 2 x PATCH_MARGIN pixels and
share the tract's projection (each patch's CRPIX is the tract's, shifted by whole pixels), as a
survey's coadd patches do. Each source's noiseless scene (at the survey's nominal seeing) is
added into the tract at its position, so neighbours overlap as on a real sky; then per band one
field of Gaussian sky noise of the profile's sky sigma and the sources' own Poisson noise.
Positions are snapped to pixel corners, where a cutout's centre lies, so a stamp cut around a
catalog position shows its source as the mock cutouts do. Pixels are in the survey's coadd unit
(counts of its AB zero point for HSC), with PSF_FWHM (arcsec) and FLUXMAG0 in every header.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS
from frozendict import frozendict

from lensflow.io import write_atomic
from lensflow.surveys import Survey
from lensflow.units import unit_factor

if TYPE_CHECKING:
    from distributed import Client

    from lensflow.simulate.scene import Scene

DENSITY_PER_ARCMIN2 = 40.0
"""Sources per square arcmin of a tiled mock sky (a deep survey's galaxies to r ~ 25)."""

PATCH_PIXELS = 1000
PATCH_MARGIN = 50
QUANTIZE_LEVEL = 16.0
"""fpack quantisation: steps of 1/16 of each tile's noise sigma (dithered), fine for photometry."""

SNAP_NUDGE = 1e-3
"""Pixels past the corner, so the pixel holding a snapped position is never in doubt."""

COADDS = "coadds"
TILE_GLOB = "coadds/*/calexp-{band}-*.fits.fz"
RENDER_CHUNK = 200

SceneOf = Callable[[str, float, int, int, Survey], "Scene"]
"""A source's scene from (kind, r magnitude, id, seed, survey)."""


def field_radius_deg(n_sources: int) -> float:
    """The radius of the disc that holds n_sources at DENSITY_PER_ARCMIN2 (degrees)."""
    return math.sqrt(n_sources / DENSITY_PER_ARCMIN2 / math.pi) / 60.0


@dataclass(frozen=True)
class Tract:
    """The tract's projection (0-based pixels of the whole canvas) and its size."""

    wcs: WCS
    nx: int
    ny: int

    def pixels(self, ra: np.ndarray, dec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x, y = self.wcs.all_world2pix(ra, dec, 0)
        return np.asarray(x), np.asarray(y)

    def patches(self) -> list[tuple[str, slice, slice]]:
        """Each patch's name ("i,j") and its rows and columns of the tract."""
        out = []
        for j in range(math.ceil(self.ny / PATCH_PIXELS)):
            for i in range(math.ceil(self.nx / PATCH_PIXELS)):
                rows = _span(j, self.ny)
                cols = _span(i, self.nx)
                out.append((f"{i},{j}", rows, cols))
        return out


def _span(k: int, n: int) -> slice:
    return slice(
        max(0, k * PATCH_PIXELS - PATCH_MARGIN), min(n, (k + 1) * PATCH_PIXELS + PATCH_MARGIN)
    )


def make_tract(
    ra: np.ndarray, dec: np.ndarray, *, centre: tuple[float, float], survey: Survey
) -> Tract:
    """A TAN tract about `centre` (deg) holding every position with a cutout and margin around."""
    scale = survey.pixel_scale_arcsec / 3600.0
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.cunit = ["deg", "deg"]
    wcs.wcs.crval = list(centre)
    wcs.wcs.cdelt = [-scale, scale]
    wcs.wcs.crpix = [1.0, 1.0]
    x, y = wcs.all_world2pix(ra, dec, 0)
    pad = survey.cutout_size + PATCH_MARGIN
    x_lo, y_lo = math.floor(np.min(x)) - pad, math.floor(np.min(y)) - pad
    nx = math.ceil(np.max(x)) + pad - x_lo
    ny = math.ceil(np.max(y)) + pad - y_lo
    wcs.wcs.crpix = [1.0 - x_lo, 1.0 - y_lo]
    return Tract(wcs, int(nx), int(ny))


def snap(tract: Tract, ra: np.ndarray, dec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions moved to the nearest pixel corner (plus SNAP_NUDGE), as (ra, dec) in degrees."""
    x, y = tract.pixels(ra, dec)
    x = np.floor(x) + 0.5 + SNAP_NUDGE
    y = np.floor(y) + 0.5 + SNAP_NUDGE
    ra_s, dec_s = tract.wcs.all_pix2world(x, y, 0)
    return np.asarray(ra_s) % 360.0, np.asarray(dec_s)


def image_unit(survey: Survey) -> str:
    """The [images] unit of the survey's coadds: "nJy", "nanomaggy" or "zero_point:ZP"."""
    if survey.coadd_units in ("nJy", "nanomaggy"):
        return survey.coadd_units
    return f"zero_point:{survey.coadd_zero_point_ab:g}"


def images_section(survey: Survey) -> dict[str, Any]:
    """The scan config's [images] section for the patches (PSF FWHM from their headers)."""
    return {
        "tiles": TILE_GLOB,
        "bands": list(survey.bands),
        "unit": image_unit(survey),
        "size": survey.cutout_size,
    }


def _render_chunk(
    scene_of: SceneOf,
    kinds: np.ndarray,
    mags_r: np.ndarray,
    ids: np.ndarray,
    seed: int,
    survey: Survey,
) -> np.ndarray:
    """Noiseless stamps float32 (k, bands, n, n) in nJy at nominal seeing (a Dask task)."""
    from lensflow.simulate.scene import noiseless_image

    n = survey.cutout_size
    out = np.empty((ids.size, len(survey.bands), n, n), dtype=np.float32)
    for k, (kind, mag_r, object_id) in enumerate(zip(kinds, mags_r, ids, strict=True)):
        scene = scene_of(str(kind), float(mag_r), int(object_id), seed, survey)
        nominal = dataclasses.replace(scene, seeing=frozendict())
        out[k] = noiseless_image(nominal, survey=survey)
    return out


def render_tract(
    client: Client,
    tract: Tract,
    scene_of: SceneOf,
    sources: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    *,
    seed: int,
    survey: Survey,
) -> np.ndarray:
    """The tract's noiseless sky float32 (bands, ny, nx) in nJy: every source's scene added at
    its (snapped) position. sources: kinds, r magnitudes, ids, ra, dec."""
    from distributed import as_completed

    kinds, mags_r, ids, ra, dec = sources
    n = survey.cutout_size
    x, y = tract.pixels(ra, dec)
    x0 = np.rint(x - SNAP_NUDGE - 0.5 * (n - 1)).astype(np.int64)
    y0 = np.rint(y - SNAP_NUDGE - 0.5 * (n - 1)).astype(np.int64)
    canvas = np.zeros((len(survey.bands), tract.ny, tract.nx), dtype=np.float32)
    futures = {
        client.submit(
            _render_chunk,
            scene_of,
            kinds[a : a + RENDER_CHUNK],
            mags_r[a : a + RENDER_CHUNK],
            ids[a : a + RENDER_CHUNK],
            seed,
            survey,
            key=f"render-tract-{survey.name}-{seed}-{a}",
            pure=False,
        ): a
        for a in range(0, ids.size, RENDER_CHUNK)
    }
    for future in as_completed(futures):
        a = futures[future]
        for k, stamp in enumerate(future.result(), start=a):
            canvas[:, y0[k] : y0[k] + n, x0[k] : x0[k] + n] += stamp
        future.release()
    return canvas


def add_noise(canvas: np.ndarray, *, seed: int, survey: Survey) -> None:
    """Add, in place, each band's sky noise field and the sources' Poisson noise (nJy)."""
    for b, band in enumerate(survey.bands):
        rng = np.random.default_rng((seed, 7, b))
        signal = np.maximum(canvas[b], 0.0) / np.float32(survey.gain(band))
        sigma = np.sqrt(signal + np.float32(survey.sky_sigma_njy[band] ** 2))
        canvas[b] += sigma * rng.standard_normal(canvas[b].shape, dtype=np.float32)


def write_patches(out: Path, tract: Tract, canvas: np.ndarray, *, survey: Survey) -> list[Path]:
    """Write every band of every patch: OUT/coadds/<patch>/calexp-<band>-<patch>.fits.fz."""
    per_unit = unit_factor(image_unit(survey))  # nJy per pixel unit
    written = []
    for number, (patch, rows, cols) in enumerate(tract.patches()):
        wcs = tract.wcs.deepcopy()
        wcs.wcs.crpix = [wcs.wcs.crpix[0] - cols.start, wcs.wcs.crpix[1] - rows.start]
        for b, band in enumerate(survey.bands):
            header = wcs.to_header()
            header["BUNIT"] = image_unit(survey)
            header["FLUXMAG0"] = 10.0 ** (0.4 * survey.coadd_zero_point_ab), "flux of mag 0"
            header["PSF_FWHM"] = survey.psf_fwhm_arcsec[band], "PSF FWHM, arcsec"
            header["FILTER"] = band
            header["PATCH"] = patch
            data = np.ascontiguousarray(canvas[b, rows, cols] / np.float32(per_unit))
            hdu = fits.CompImageHDU(
                data,
                header=header,
                compression_type="RICE_1",
                quantize_level=QUANTIZE_LEVEL,
                quantize_method=2,  # SUBTRACTIVE_DITHER_2: exact zeros stay zero
                dither_seed=1 + number * len(survey.bands) + b,
            )
            path = Path(out) / COADDS / patch / f"calexp-{band}-{patch}.fits.fz"
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, fits.HDUList([fits.PrimaryHDU(), hdu]).writeto)
            written.append(path)
    return written


def write_tiles(
    out: Path,
    client: Client,
    tract: Tract,
    scene_of: SceneOf,
    sources: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    seed: int,
    survey: Survey,
) -> list[Path]:
    """Render the sources into the tract, add the noise, write the patches (see write_patches)."""
    canvas = render_tract(client, tract, scene_of, sources, seed=seed, survey=survey)
    add_noise(canvas, seed=seed, survey=survey)
    return write_patches(out, tract, canvas, survey=survey)
