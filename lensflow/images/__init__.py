"""Cutout stores from survey coadd tiles (FITS with a WCS): tiles -> footprint index -> stamps.

`build_cutouts` runs one Dask task per catalog partition; `build_partition` and `cut_stamps`
are the same work on arrays, for one partition.
"""

from lensflow.images.build import PartitionReport, Rows, build_partition
from lensflow.images.driver import BuildPaths, BuildReport, build_cutouts
from lensflow.images.index import TileIndex, locate, tile_index
from lensflow.images.partitions import CatalogRows
from lensflow.images.stamps import REASONS, Stamps, cut_stamps

__all__ = [
    "REASONS",
    "BuildPaths",
    "BuildReport",
    "CatalogRows",
    "PartitionReport",
    "Rows",
    "Stamps",
    "TileIndex",
    "build_cutouts",
    "build_partition",
    "cut_stamps",
    "locate",
    "tile_index",
]
