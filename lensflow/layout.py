"""The HATS layout as writers make it: leaf paths, the spatial index, catalog metadata.

The mock sky, the candidate tables and HATS exports are written here; hats' own writers make
partition_info.csv, dataset/_metadata, _common_metadata and hats.properties, so lsdb and hats
open what lensflow writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lensflow.sky import SPATIAL_INDEX_COLUMN, PixelLike, leaf_name

if TYPE_CHECKING:  # hats is imported where metadata is written, never by a worker writing a leaf
    from hats.pixel_math import HealpixPixel


def leaf_path(root: Path, pixel: PixelLike) -> Path:
    """Where a pixel's Parquet file goes under a catalog folder (Norder=K/Dir=D/Npix=P.parquet)."""
    return Path(root) / "dataset" / leaf_name(pixel)


def healpix_29(ra_deg: np.ndarray, dec_deg: np.ndarray) -> np.ndarray:
    """The order-29 NESTED spatial index of each position (int64), as hats computes it."""
    from hats.pixel_math.spatial_index import compute_spatial_index

    return np.asarray(compute_spatial_index(ra_deg, dec_deg), dtype=np.int64)


def write_catalog_metadata(
    root: Path,
    *,
    name: str,
    pixels: Sequence[HealpixPixel],
    ra_column: str,
    dec_column: str,
    total_rows: int | None = None,
) -> int:
    """Write partition_info.csv, dataset/_metadata, _common_metadata and hats.properties.

    The leaves must already be in place. total_rows None: the rows of the leaves' footers, as
    hats counts them while it writes _metadata. Returns the total rows.
    """
    from hats.catalog import PartitionInfo, TableProperties
    from hats.io import paths
    from hats.io.parquet_metadata import write_parquet_metadata

    partition_info = PartitionInfo.from_healpix(sorted(pixels))
    partition_info.write_to_file(paths.get_partition_info_pointer(root))
    counted = write_parquet_metadata(root)
    total_rows = counted if total_rows is None else total_rows
    properties = TableProperties(
        catalog_name=name,
        catalog_type="object",
        total_rows=total_rows,
        ra_column=ra_column,
        dec_column=dec_column,
        healpix_column=SPATIAL_INDEX_COLUMN,
        healpix_order=29,
        hats_order=partition_info.get_highest_order(),
        moc_sky_fraction=f"{partition_info.calculate_fractional_coverage():0.5f}",
    )
    properties.to_properties_file(root)
    return int(total_rows)
