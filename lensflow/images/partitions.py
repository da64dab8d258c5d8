"""A partition's rows and the tiles its stamps can touch.

Rows come from a HATS catalog (read on the worker, with an optional cut) or as arrays per pixel;
the tiles are those whose footprint meets the HEALPix pixel widened by one stamp, so a task
carries a few tiles of the index, not all of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import cdshealpix.nested
import numpy as np
import pyarrow as pa
from hats.pixel_math.spatial_index import spatial_index_to_healpix

from lensflow.catalog import Catalog, read_partition
from lensflow.cuts import Cut
from lensflow.errors import CutoutError
from lensflow.images.build import Rows
from lensflow.images.index import TileIndex
from lensflow.layout import healpix_29
from lensflow.regions import Region, unit_vectors
from lensflow.sky import HealpixPixel, pixel_key


@dataclass(frozen=True)
class CatalogRows:
    """Rows read on the workers from a HATS catalog's partitions: id, ra, dec, an optional cut
    and an optional sky region (rows outside it are outside the build)."""

    catalog: Catalog
    id_column: str
    ra_column: str
    dec_column: str
    cut: Cut | None = None
    region: Region | None = None

    def read(self, pixel: HealpixPixel) -> Rows:
        """One partition's rows that pass the cut (ids kept int64, never through float)."""
        columns = [self.id_column, self.ra_column, self.dec_column]
        table = read_partition(pixel, catalog=self.catalog, columns=columns, cut=self.cut).table
        if self.region is not None:
            table = self.region.filter(table, ra=self.ra_column, dec=self.dec_column)
        ids = table[self.id_column]
        if not pa.types.is_integer(ids.type):
            raise CutoutError(f"{self.catalog.path}: id column {self.id_column!r} is {ids.type}")
        return Rows(
            ids=ids.cast(pa.int64()).to_numpy(zero_copy_only=False),
            ra=table[self.ra_column].to_numpy(zero_copy_only=False).astype(np.float64),
            dec=table[self.dec_column].to_numpy(zero_copy_only=False).astype(np.float64),
        )


RowSource = CatalogRows | Mapping[HealpixPixel, Rows]


def pixel_cap(pixel: HealpixPixel) -> tuple[np.ndarray, float]:
    """A cap holding a HEALPix pixel: centre unit vector (3,), radius (rad)."""
    ipix = np.array([pixel.pixel], dtype=np.uint64)
    lon, lat = cdshealpix.nested.healpix_to_lonlat(ipix, pixel.order)
    centre = unit_vectors(np.asarray(lon.deg), np.asarray(lat.deg))[0]
    edge_lon, edge_lat = cdshealpix.nested.vertices(ipix, pixel.order, step=4)
    edge = unit_vectors(np.asarray(edge_lon.deg).ravel(), np.asarray(edge_lat.deg).ravel())
    return centre, float(np.arccos(np.clip(edge @ centre, -1.0, 1.0)).max()) * 1.02


def partition_tiles(index: TileIndex, pixel: HealpixPixel, *, size: int) -> TileIndex:
    """The tiles a partition's stamps can touch: those meeting the pixel widened by a stamp."""
    centre, radius = pixel_cap(pixel)
    pad = np.radians(size * np.nanmax(index.pixel_scale, initial=0.0) / 3600.0)
    return index.subset(index.near(centre, radius + pad))


def check_rows(pixel: HealpixPixel, rows: Rows) -> None:
    ra, dec = np.asarray(rows.ra, dtype=np.float64), np.asarray(rows.dec, dtype=np.float64)
    sky = np.isfinite(ra) & np.isfinite(dec) & (np.abs(dec) <= 90.0)
    where = spatial_index_to_healpix(healpix_29(ra[sky], dec[sky]), target_order=pixel.order)
    outside = int((where != pixel.pixel).sum())
    if outside:
        raise CutoutError(
            f"pixel {pixel_key(pixel)}: {outside} of the rows given lie outside the pixel; "
            "give each partition only its own rows"
        )
