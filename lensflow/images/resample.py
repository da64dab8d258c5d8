"""Resampling a tile with another projection onto a stamp's grid (reproject_exact).

Used where a stamp reaches beyond the tile that holds its centre into tiles with their own
tangent points (Legacy Surveys bricks). reproject_exact splits each input pixel's flux over the
output pixels it overlaps on the sphere: a point source keeps its flux to ~1e-5 and its centroid
to ~0.001 pixel, and the PSF widens less than under the adaptive (Gaussian-kernel) resampler.
Pixel values are flux per pixel (nJy); tiles must share the pixel scale (checked when a store
is built), so no area rescaling is needed.
"""

from __future__ import annotations

import numpy as np
from astropy.wcs import WCS
from reproject import reproject_exact

from lensflow.images.projection import pixel_to_sky, shifted, sky_to_pixel

COVERED = 0.999
"""Summed footprint above which a stamp pixel counts as fully covered by resampled tiles."""


def grid_outline(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Points along the outer edge of a pixel grid of `shape` (rows, columns): x, y, 0-based."""
    rows, cols = shape
    xs = np.linspace(-0.5, cols - 0.5, max(2, cols // 8 + 2))
    ys = np.linspace(-0.5, rows - 0.5, max(2, rows // 8 + 2))
    x = np.concatenate([xs, np.full_like(ys, cols - 0.5), xs[::-1], np.full_like(ys, -0.5)])
    y = np.concatenate([np.full_like(xs, -0.5), ys, np.full_like(xs, rows - 0.5), ys[::-1]])
    return x, y


def source_window(
    grid_wcs: WCS, shape: tuple[int, int], tile_wcs: WCS, *, ny: int, nx: int, margin: int = 2
) -> tuple[slice, slice] | None:
    """The window of a tile (rows, columns) that covers a grid, or None if they miss."""
    ra, dec = pixel_to_sky(grid_wcs, *grid_outline(shape))
    x, y = sky_to_pixel(tile_wcs, ra, dec)
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        return None
    xa, xb = max(int(np.floor(x.min())) - margin, 0), min(int(np.ceil(x.max())) + margin + 1, nx)
    ya, yb = max(int(np.floor(y.min())) - margin, 0), min(int(np.ceil(y.max())) + margin + 1, ny)
    if xa >= xb or ya >= yb:
        return None
    return slice(ya, yb), slice(xa, xb)


class Resampled:
    """A grid's pixels accumulated from resampled tile windows: sum of value x footprint, and
    footprint (the fraction of each grid pixel the windows cover)."""

    def __init__(self, grid_wcs: WCS, shape: tuple[int, int]) -> None:
        self.grid_wcs = grid_wcs
        self.shape = shape
        self.weighted = np.zeros(shape)
        self.footprint = np.zeros(shape)

    def add(self, data: np.ndarray, tile_wcs: WCS, window: tuple[slice, slice]) -> None:
        """Resample a tile window (float64 (rows, cols)) onto the grid and accumulate it."""
        rows, cols = window
        window_wcs = shifted(tile_wcs, int(cols.start), int(rows.start))
        values, footprint = reproject_exact((data, window_wcs), self.grid_wcs, shape_out=self.shape)
        covered = footprint > 0
        self.weighted[covered] += values[covered] * footprint[covered]
        self.footprint += footprint

    def covered(self) -> np.ndarray:
        """True where resampled tiles cover a grid pixel fully (bool (rows, cols))."""
        return self.footprint >= COVERED

    def values(self) -> np.ndarray:
        """The footprint-weighted mean of the resampled windows (float64 (rows, cols))."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.weighted / self.footprint
