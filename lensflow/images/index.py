"""The footprint index of a set of coadd tiles: built once, kept as Parquet, reused while unchanged.

One row per tile: band, file, HDUs, shape, WCS (header text), projection key, sky corners and a
bounding cap (centre unit vector, radius) for a quick "could this tile hold that position" test
before the WCS is asked. The index is rebuilt when any tile's name, size or mtime changes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from astropy.wcs import WCS

from lensflow.config import ImagesConfig
from lensflow.images.projection import (
    pixel_scale_arcsec,
    pixel_to_sky,
    projection_key,
    sky_to_pixel,
    wcs_from_text,
)
from lensflow.images.tiles import TileFile, TileHeader, find_tiles, read_tile_header
from lensflow.io import canonical_hash, write_parquet
from lensflow.regions import unit_vectors

logger = logging.getLogger(__name__)

INDEX_VERSION = 1
_SIGNATURE_KEY = b"lensflow.tiles.signature"
_EDGE_SAMPLES = 9  # points per tile edge used to bound its footprint


@dataclass(frozen=True)
class TileIndex:
    """Footprints of T tiles: every field is an array of length T (row t is tile t)."""

    band: np.ndarray  # str
    path: np.ndarray  # str
    hdu: np.ndarray  # int64
    mask_hdu: np.ndarray  # int64, -1 where the tile has no mask
    ny: np.ndarray  # int64, image rows
    nx: np.ndarray  # int64, image columns
    wcs_text: np.ndarray  # str, "" where no WCS could be read
    projection: np.ndarray  # str, equal for tiles differing only by an integer CRPIX offset
    crpix: np.ndarray  # float64 (T, 2), FITS CRPIX1, CRPIX2
    corner_ra: np.ndarray  # float64 (T, 4), deg, pixel corners (-0.5, -0.5) counter-clockwise
    corner_dec: np.ndarray  # float64 (T, 4), deg
    centre: np.ndarray  # float64 (T, 3), unit vector of the tile's central pixel
    radius: np.ndarray  # float64, rad: the cap around centre that holds the tile; -1 if unknown
    pixel_scale: np.ndarray  # float64, arcsec (mean of the two sides); NaN if unknown
    psf_fwhm: np.ndarray  # float64, arcsec from a header keyword; NaN if none
    reason: np.ndarray  # str, "" for a usable tile, else why it cannot be read
    error: np.ndarray  # str, the message for an unusable tile
    signature: str = ""

    def __len__(self) -> int:
        return int(self.band.shape[0])

    def subset(self, keep: np.ndarray) -> TileIndex:
        """The tiles selected by a boolean mask or index array, same signature."""
        arrays = {
            f.name: getattr(self, f.name)[keep] for f in fields(self) if f.name != "signature"
        }
        return replace(self, **arrays)

    @property
    def usable(self) -> np.ndarray:
        """True for tiles that can be read (bool (T,))."""
        return np.asarray(self.reason == "", dtype=bool)

    def near(self, centre: np.ndarray, radius: float) -> np.ndarray:
        """True for tiles whose cap meets the cap (centre unit vector, radius rad) (bool (T,))."""
        separation = np.arccos(np.clip(self.centre @ centre, -1.0, 1.0))
        return np.asarray((self.radius >= 0) & (separation <= self.radius + radius), dtype=bool)

    def bad_tiles(self) -> dict[str, str]:
        """Tiles that cannot be read: path -> "reason: message"."""
        bad = ~self.usable
        return {
            str(p): f"{r}: {e}"
            for p, r, e in zip(self.path[bad], self.reason[bad], self.error[bad], strict=True)
        }

    def to_table(self) -> pa.Table:
        """The index as a Parquet-ready table, its signature in the schema metadata."""
        columns: dict[str, pa.Array] = {}
        for f in fields(self):
            if f.name == "signature":
                continue
            values = getattr(self, f.name)
            columns[f.name] = pa.array(values.tolist() if values.ndim > 1 else values)
        table = pa.table(columns)
        return table.replace_schema_metadata({_SIGNATURE_KEY: self.signature.encode()})

    @classmethod
    def from_table(cls, table: pa.Table) -> TileIndex:
        """Rebuild an index from `to_table`'s table."""
        arrays: dict[str, np.ndarray] = {}
        for f in fields(cls):
            if f.name == "signature":
                continue
            column = table[f.name].to_pylist()
            width = {"crpix": 2, "corner_ra": 4, "corner_dec": 4, "centre": 3}.get(f.name)
            if width is not None:
                arrays[f.name] = np.asarray(column, dtype=np.float64).reshape(len(column), width)
            elif pa.types.is_string(table[f.name].type):
                arrays[f.name] = np.asarray(column, dtype=object)
            else:
                arrays[f.name] = np.asarray(column)
        signature = (table.schema.metadata or {}).get(_SIGNATURE_KEY, b"").decode()
        return cls(**arrays, signature=signature)


def tiles_signature(files: Sequence[TileFile], config: ImagesConfig) -> str:
    """A hash of the tile set (band, path, size, mtime) and of the settings the index reads."""
    return canonical_hash(
        {
            "version": INDEX_VERSION,
            "hdu": config.hdu,
            "mask_hdu": config.mask_hdu,
            "files": [[f.band, f.path, f.size, f.mtime_ns] for f in files],
        }
    )


def _footprint(header: TileHeader) -> dict[str, object]:
    """Geometry of one tile from its WCS; unknown (NaN, radius -1) where there is none."""
    if not header.wcs_text:
        return {
            "projection": "",
            "crpix": [np.nan, np.nan],
            "corner_ra": [np.nan] * 4,
            "corner_dec": [np.nan] * 4,
            "centre": [0.0, 0.0, 0.0],
            "radius": -1.0,
            "pixel_scale": np.nan,
        }
    wcs = wcs_from_text(header.wcs_text)
    nx, ny = header.nx, header.ny
    corners_x = np.array([-0.5, nx - 0.5, nx - 0.5, -0.5])
    corners_y = np.array([-0.5, -0.5, ny - 0.5, ny - 0.5])
    steps = np.linspace(0.0, 1.0, _EDGE_SAMPLES)
    edge_x = np.concatenate(
        [corners_x[i] + (corners_x[(i + 1) % 4] - corners_x[i]) * steps for i in range(4)]
    )
    edge_y = np.concatenate(
        [corners_y[i] + (corners_y[(i + 1) % 4] - corners_y[i]) * steps for i in range(4)]
    )
    ra, dec = pixel_to_sky(wcs, edge_x, edge_y)
    centre_ra, centre_dec = pixel_to_sky(wcs, np.array([(nx - 1) / 2]), np.array([(ny - 1) / 2]))
    centre = unit_vectors(centre_ra, centre_dec)[0]
    radius = float(np.arccos(np.clip(unit_vectors(ra, dec) @ centre, -1.0, 1.0)).max())
    corner_ra, corner_dec = pixel_to_sky(wcs, corners_x, corners_y)
    return {
        "projection": projection_key(wcs),
        "crpix": list(wcs.wcs.crpix),
        "corner_ra": list(corner_ra),
        "corner_dec": list(corner_dec),
        "centre": list(centre),
        "radius": radius * 1.01 + 1e-8,
        "pixel_scale": float(np.mean(pixel_scale_arcsec(wcs))),
    }


def index_from_headers(headers: Sequence[TileHeader], *, signature: str) -> TileIndex:
    """Assemble the index of tiles whose headers were read."""
    rows = [_footprint(h) for h in headers]

    def column(values: list[Any], dtype: type[Any]) -> np.ndarray:
        return np.array(values, dtype=dtype)

    return TileIndex(
        band=column([h.file.band for h in headers], object),
        path=column([h.file.path for h in headers], object),
        hdu=column([h.hdu for h in headers], np.int64),
        mask_hdu=column([h.mask_hdu for h in headers], np.int64),
        ny=column([h.ny for h in headers], np.int64),
        nx=column([h.nx for h in headers], np.int64),
        wcs_text=column([h.wcs_text for h in headers], object),
        projection=column([r["projection"] for r in rows], object),
        crpix=column([r["crpix"] for r in rows], np.float64).reshape(-1, 2),
        corner_ra=column([r["corner_ra"] for r in rows], np.float64).reshape(-1, 4),
        corner_dec=column([r["corner_dec"] for r in rows], np.float64).reshape(-1, 4),
        centre=column([r["centre"] for r in rows], np.float64).reshape(-1, 3),
        radius=column([r["radius"] for r in rows], np.float64),
        pixel_scale=column([r["pixel_scale"] for r in rows], np.float64),
        psf_fwhm=column([h.psf_fwhm_arcsec for h in headers], np.float64),
        reason=column([h.reason for h in headers], object),
        error=column([h.error for h in headers], object),
        signature=signature,
    )


HeaderMap = Callable[[Sequence[TileFile]], list[TileHeader]]
"""Reads the headers of a list of tile files, in order (e.g. spread over a cluster)."""


def tile_index(
    config: ImagesConfig, *, path: Path, read_headers: HeaderMap | None = None
) -> TileIndex:
    """The index of the configured tiles: read from `path` if the tile set is unchanged, else
    rebuilt from the tiles' headers (through `read_headers`, default here, one file after
    another) and written there (Parquet, atomically)."""
    files = find_tiles(config)
    signature = tiles_signature(files, config)
    path = Path(path)
    if path.is_file():
        try:
            stored = TileIndex.from_table(pq.read_table(path))
        except (pa.ArrowException, KeyError, ValueError, OSError) as exc:
            logger.warning("%s: unreadable tile index (%s); rebuilding it", path, exc)
        else:
            if stored.signature == signature:
                logger.info("%s: tile set unchanged, index of %d tiles reused", path, len(stored))
                return stored
            logger.info("%s: tile set changed; rebuilding the index", path)
    if read_headers is None:
        headers = [read_tile_header(f, config=config) for f in files]
    else:
        headers = read_headers(files)
    index = index_from_headers(headers, signature=signature)
    write_parquet(path, index.to_table())
    bad = int((~index.usable).sum())
    logger.info("%s: indexed %d tiles (%d unusable)", path, len(index), bad)
    return index


def locate(
    index: TileIndex,
    tiles: np.ndarray,
    ra: np.ndarray,
    dec: np.ndarray,
    *,
    wcs_of: Callable[[int], WCS],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The tile among `tiles` holding each position, farthest from that tile's edge.

    ra, dec (N,) deg. Returns tile (N,) int64 (-1: none holds it) and the position's pixel
    x, y (N,) float64 in that tile (0-based, pixel centres at integers; NaN where none).
    """
    n = ra.shape[0]
    best = np.full(n, -1, dtype=np.int64)
    depth = np.full(n, -np.inf)
    x, y = np.full(n, np.nan), np.full(n, np.nan)
    vectors = unit_vectors(ra, dec)
    for t in np.asarray(tiles, dtype=np.int64):
        rows = np.flatnonzero(vectors @ index.centre[t] >= np.cos(min(index.radius[t], np.pi)))
        if rows.size == 0 or index.radius[t] < 0:
            continue
        px, py = sky_to_pixel(wcs_of(int(t)), ra[rows], dec[rows])
        nx, ny = float(index.nx[t]), float(index.ny[t])
        with np.errstate(invalid="ignore"):
            margin = np.minimum.reduce([px + 0.5, nx - 0.5 - px, py + 0.5, ny - 0.5 - py])
            inside = np.isfinite(margin) & (margin >= 0) & (px < nx - 0.5) & (py < ny - 0.5)
        better = inside & (margin > depth[rows])
        chosen = rows[better]
        best[chosen], depth[chosen] = t, margin[better]
        x[chosen], y[chosen] = px[better], py[better]
    return best, x, y
