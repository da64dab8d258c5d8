"""Coadd tiles for the images tests, written with astropy alone (not by lensflow).

Two layouts: the patches of one tract, sharing one TAN projection (CRPIX shifted by whole
pixels), fpack-compressed losslessly (GZIP_2 without quantisation) so stamps can be compared
exactly; and bricks, each with its own tangent point, holding Gaussian point sources.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from astropy.io import fits
from astropy.wcs import WCS
from hats.pixel_math.spatial_index import SPATIAL_INDEX_COLUMN, spatial_index_to_healpix
from scipy.special import erf

from lensflow.images import Rows
from lensflow.layout import healpix_29, leaf_path, write_catalog_metadata
from lensflow.sky import HealpixPixel

SCALE_ARCSEC = 0.2


def tan_wcs(
    ra: float, dec: float, *, crpix: tuple[float, float], scale: float = SCALE_ARCSEC
) -> WCS:
    """A north-up, east-left TAN WCS with tangent point (ra, dec) at FITS pixel `crpix`."""
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [ra, dec]
    wcs.wcs.crpix = list(crpix)
    wcs.wcs.cd = np.diag([-scale / 3600.0, scale / 3600.0])
    return wcs


def write_tile(
    path: Path,
    image: np.ndarray,
    wcs: WCS,
    *,
    mask: np.ndarray | None = None,
    compressed: bool = True,
    tile_shape: tuple[int, int] | None = None,
    extra: dict[str, float] | None = None,
) -> Path:
    """One tile file: an empty primary HDU, the image (EXTNAME IMAGE), optionally MASK.

    Compressed: fpack-style tiles of whole rows, or of `tile_shape` (rows, columns).
    """
    header = wcs.to_header()
    for key, value in (extra or {}).items():
        header[key] = value
    image = np.asarray(image, dtype=np.float32)
    if compressed:
        hdu: fits.ImageHDU | fits.CompImageHDU = fits.CompImageHDU(
            image,
            header=header,
            name="IMAGE",
            compression_type="GZIP_2",
            quantize_level=0.0,
            tile_shape=tile_shape,
        )
    else:
        hdu = fits.ImageHDU(image, header=header, name="IMAGE")
    hdus: list[fits.hdu.base._BaseHDU] = [fits.PrimaryHDU(), hdu]
    if mask is not None:
        mask = np.asarray(mask, dtype=np.int32)
        hdus.append(
            fits.CompImageHDU(
                mask, header=header, name="MASK", compression_type="RICE_1", tile_shape=tile_shape
            )
            if compressed
            else fits.ImageHDU(mask, header=header, name="MASK")
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    fits.HDUList(hdus).writeto(path, overwrite=True)
    return path


@dataclass(frozen=True)
class Tract:
    """Patches of one tract: the tract's WCS and full pixel arrays, and each patch's origin."""

    wcs: WCS
    pixels: dict[str, np.ndarray]  # band -> float32 (H, W) over the whole tract
    mask: np.ndarray  # int32 (H, W)
    origins: dict[tuple[int, int], tuple[int, int]]  # patch (i, j) -> tract pixel (x0, y0)
    patch: int  # patch side, pixels
    folder: Path

    def file(self, band: str, i: int, j: int) -> Path:
        return self.folder / f"calexp-{band}-{i},{j}.fits.fz"


def write_tract(
    folder: Path,
    *,
    bands: tuple[str, ...] = ("g", "r"),
    patches: int = 2,
    patch: int = 80,
    overlap: int = 10,
    centre: tuple[float, float] = (150.0, 2.0),
    masked: tuple[tuple[int, int, int], ...] = (),
    nan: tuple[tuple[int, int], ...] = (),
    layout: str = "rows",
    seed: int = 1,
) -> Tract:
    """patches x patches overlapping patches of one TAN tract, one file per band and patch.

    Pixel values are drawn once over the tract, so overlapping patches hold equal pixels.
    `masked` lists (x, y, bits) tract pixels whose mask is set, `nan` (x, y) pixels set to NaN.
    `layout`: "rows" (fpack's compression tiles of whole rows), "blocks" (16 x 16 tiles) or
    "plain" (uncompressed).
    """
    step = patch - overlap
    side = step * (patches - 1) + patch
    tract_wcs = tan_wcs(*centre, crpix=(side / 2 + 0.5, side / 2 + 0.5))
    rng = np.random.default_rng(seed)
    pixels = {band: rng.normal(10.0, 3.0, (side, side)).astype(np.float32) for band in bands}
    for x, y in nan:
        for band in bands:
            pixels[band][y, x] = np.nan
    mask = np.zeros((side, side), dtype=np.int32)
    for x, y, bits in masked:
        mask[y, x] = bits
    origins = {(i, j): (i * step, j * step) for i in range(patches) for j in range(patches)}
    tract = Tract(tract_wcs, pixels, mask, origins, patch, Path(folder))
    for (i, j), (x0, y0) in origins.items():
        wcs = tract_wcs.deepcopy()
        wcs.wcs.crpix = tract_wcs.wcs.crpix - [x0, y0]
        window = (slice(y0, y0 + patch), slice(x0, x0 + patch))
        for band in bands:
            write_tile(
                tract.file(band, i, j),
                pixels[band][window],
                wcs,
                mask=mask[window],
                compressed=layout != "plain",
                tile_shape=(16, 16) if layout == "blocks" else None,
            )
    return tract


def gaussian_image(
    wcs: WCS,
    shape: tuple[int, int],
    sources: list[tuple[float, float]],
    *,
    fwhm: float = 3.0,
    flux: float = 1000.0,
) -> np.ndarray:
    """Point sources (ra, dec deg) as pixel-integrated circular Gaussians of `fwhm` pixels."""
    sigma = fwhm / (2.0 * np.sqrt(2.0 * np.log(2.0)))
    image = np.zeros(shape)
    ix, iy = np.arange(shape[1]), np.arange(shape[0])
    for ra, dec in sources:
        x, y = wcs.world_to_pixel_values(ra, dec)
        fx = erf((ix + 0.5 - x) / (np.sqrt(2) * sigma)) - erf((ix - 0.5 - x) / (np.sqrt(2) * sigma))
        fy = erf((iy + 0.5 - y) / (np.sqrt(2) * sigma)) - erf((iy - 0.5 - y) / (np.sqrt(2) * sigma))
        image += flux * np.outer(fy / 2, fx / 2)
    return image


@dataclass(frozen=True)
class Bricks:
    """Two side-by-side bricks, each with its own tangent point, overlapping by a few pixels."""

    wcs: tuple[WCS, WCS]  # east brick (holds the rows), west neighbour
    files: dict[str, tuple[Path, Path]]  # band -> (east file, west file)
    side: int


def write_bricks(
    folder: Path,
    sources: list[tuple[float, float]],
    *,
    bands: tuple[str, ...] = ("g",),
    side: int = 120,
    centre: tuple[float, float] = (210.0, 50.0),
    flux: float = 1000.0,
) -> Bricks:
    """Bricks A (tangent point `centre`) and B (west of A, tangent point ~side - 6.37 px away,
    0.41 px north), both holding the Gaussian point sources at `sources`."""
    ra0, dec0 = centre
    scale = SCALE_ARCSEC / 3600.0
    east = tan_wcs(ra0, dec0, crpix=(side / 2 + 0.5, side / 2 + 0.5))
    ra_west = ra0 - (side - 6.37) * scale / np.cos(np.radians(dec0))
    west = tan_wcs(ra_west, dec0 + 0.41 * scale, crpix=(side / 2 + 0.5, side / 2 + 0.5))
    files = {}
    for band in bands:
        pair = []
        for name, wcs in (("east", east), ("west", west)):
            image = gaussian_image(wcs, (side, side), sources, flux=flux)
            path = Path(folder) / f"brick-{name}-image-{band}.fits.fz"
            pair.append(write_tile(path, image, wcs, extra={"PSF_FWHM": 0.6}))
        files[band] = (pair[0], pair[1])
    return Bricks((east, west), files, side)


GRID_ORDER = 12
"""The HEALPix order the grid rows are split by (a few partitions over a small tract)."""


def grid_rows(tract: Tract, order: int = GRID_ORDER) -> dict[HealpixPixel, Rows]:
    """Rows on a grid over the tract (a few off its edge or masked), split by HEALPix pixel."""
    gx, gy = np.meshgrid(np.arange(1, 150, 20.3), np.arange(15, 140, 20.3))
    ra, dec = tract.wcs.pixel_to_world_values(gx.ravel(), gy.ravel())
    ids = np.arange(ra.size, dtype=np.int64) * 7 + (1 << 40)
    pixel = spatial_index_to_healpix(healpix_29(ra, dec), target_order=order)
    return {
        HealpixPixel(order, int(p)): Rows(ids[pixel == p], ra[pixel == p], dec[pixel == p])
        for p in np.unique(pixel)
    }


def write_rows_catalog(root: Path, rows: dict[HealpixPixel, Rows]) -> Path:
    """A HATS catalog (objectId, ra, dec, _healpix_29) of the rows, one leaf per pixel."""
    for pixel, part in rows.items():
        table = pa.table({"objectId": part.ids, "ra": part.ra, "dec": part.dec})
        table = table.append_column(SPATIAL_INDEX_COLUMN, pa.array(healpix_29(part.ra, part.dec)))
        leaf_path(root, pixel).parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table.sort_by(SPATIAL_INDEX_COLUMN), leaf_path(root, pixel))
    total = sum(r.ids.size for r in rows.values())
    write_catalog_metadata(
        root, name="survey", pixels=list(rows), ra_column="ra", dec_column="dec", total_rows=total
    )
    return root
