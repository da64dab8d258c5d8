"""Sky regions: which partitions a cone, polygon, MOC or pixel list touches, and which rows.

A region is covered by HEALPix cells (a MOC, built by hats' own `region_to_moc` helpers as
lsdb's searches build it) down to the catalog's deepest partition order, and a partition that
no cell overlaps is pruned before any of its files is opened (hats' `filter_by_moc`). Rows of
the partitions kept are tested one by one: a cone by great-circle distance (the haversine test
of hats' and lsdb's cone search), a polygon by the side of each great-circle edge (the test of
lsdb's polygon search), a MOC or a pixel list by the row's own `_healpix_29` index at the
region's cells. Rows whose coordinates cannot be used (NaN, |dec| > 90) are kept by a cone or a
polygon, so a scan counts them as rejected rather than losing them as outside.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from hats.pixel_math.region_to_moc import cone_to_moc, pixel_list_to_moc, polygon_to_moc
from hats.pixel_math.spatial_index import SPATIAL_INDEX_COLUMN, SPATIAL_INDEX_ORDER
from hats.pixel_tree.moc_filter import filter_by_moc
from hats.pixel_tree.pixel_tree import PixelTree
from hats.search.region_search import cone_filter
from mocpy import MOC

from lensflow.config import SkyConfig
from lensflow.errors import ConfigError
from lensflow.io import file_digest
from lensflow.sky import HealpixPixel, parse_pixel, usable_coordinates


def unit_vectors(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    """(N, 3) unit vectors of positions ra, dec in degrees."""
    ra_rad, dec_rad = np.radians(ra), np.radians(dec)
    cos_dec = np.cos(dec_rad)
    vectors: np.ndarray = np.stack(
        [cos_dec * np.cos(ra_rad), cos_dec * np.sin(ra_rad), np.sin(dec_rad)], axis=-1
    )
    return vectors


@dataclass(frozen=True, eq=False)
class Region:
    """A sky region as a scan uses it: cells that cover it, and an exact test for rows.

    coverage: (K, 2) int64 [start, end) ranges of order-29 indices of the covering cells.
    cone: ra, dec in degrees and radius in arcsec; normals: (V, 3) edge normals of a polygon,
    pointing inwards. `identity` is what the scan's fingerprint records of the region.
    """

    kind: str
    label: str
    coverage: np.ndarray
    identity: dict[str, Any] = field(default_factory=dict)
    cone: tuple[float, float, float] | None = None
    normals: np.ndarray | None = None

    def keep(self, pixels: Sequence[HealpixPixel]) -> tuple[HealpixPixel, ...]:
        """The partitions that some covering cell overlaps, in the given order."""
        if not pixels:
            return ()
        cells = MOC.from_depth29_ranges(SPATIAL_INDEX_ORDER, self.coverage.astype(np.uint64))
        kept = filter_by_moc(PixelTree.from_healpix(list(pixels)), cells).get_healpix_pixels()
        names = {(int(p.order), int(p.pixel)) for p in kept}
        return tuple(p for p in pixels if (p.order, p.pixel) in names)

    def contains(self, table: pa.Table, *, ra: str, dec: str) -> np.ndarray:
        """Which rows of `table` lie in the region: bool (N,).

        `ra`, `dec` name the coordinate columns (degrees); the table also holds `_healpix_29`.
        """
        if self.cone is None and self.normals is None:
            index = table[SPATIAL_INDEX_COLUMN].to_numpy(zero_copy_only=False).astype(np.int64)
            return _in_ranges(index, self.coverage)
        ra_deg = table[ra].to_numpy(zero_copy_only=False).astype(np.float64)
        dec_deg = table[dec].to_numpy(zero_copy_only=False).astype(np.float64)
        if self.cone is not None:
            frame = pd.DataFrame({"ra": ra_deg, "dec": dec_deg}, index=np.arange(ra_deg.size))
            columns = SimpleNamespace(ra_column="ra", dec_column="dec")
            inside = np.zeros(ra_deg.size, dtype=bool)
            inside[cone_filter(frame, *self.cone, columns).index.to_numpy()] = True
        else:
            assert self.normals is not None
            inside = (unit_vectors(ra_deg, dec_deg) @ self.normals.T >= 0.0).all(axis=1)
        kept: np.ndarray = inside | ~usable_coordinates(ra_deg, dec_deg)
        return kept

    def filter(self, table: pa.Table, *, ra: str, dec: str) -> pa.Table:
        """The rows of `table` inside the region (see contains)."""
        return table.filter(pa.array(self.contains(table, ra=ra, dec=dec)))


def _in_ranges(index: np.ndarray, ranges: np.ndarray) -> np.ndarray:
    """Whether each order-29 index lies in one of the sorted, disjoint [start, end) ranges."""
    if not len(ranges):
        return np.zeros(index.size, dtype=bool)
    slot = np.searchsorted(ranges[:, 0], index, side="right") - 1
    return (slot >= 0) & (index < ranges[slot.clip(0), 1])  # type: ignore[no-any-return]


def build_region(sky: SkyConfig, *, depth: int) -> Region:
    """The region a [sky] section names, covered by cells down to HEALPix order `depth`.

    `depth` is the deepest partition order of the catalog searched, as in hats' own filters.
    """
    kind = sky.kind
    if sky.cone is not None:
        ra, dec, radius = sky.cone
        cells = cone_to_moc(ra, dec, radius * 3600.0, depth)
        return _region(
            kind,
            f"cone ({ra:g}, {dec:g}) radius {radius:g} deg",
            cells,
            {"cone": list(sky.cone)},
            cone=(ra, dec, radius * 3600.0),
        )
    if sky.polygon is not None:
        vertices = [tuple(v) for v in sky.polygon]
        corners = unit_vectors(*np.asarray(vertices, dtype=np.float64).T)
        normals = np.cross(corners, np.roll(corners, -1, axis=0))
        normals *= np.sign(normals[0] @ corners[2])
        return _region(
            kind,
            f"polygon of {len(vertices)} vertices",
            polygon_to_moc(vertices, depth),
            {"polygon": [list(v) for v in vertices]},
            normals=normals,
        )
    if sky.moc is not None:
        path = Path(sky.moc)
        return _region(
            kind,
            f"MOC {path.name}",
            read_moc(path),
            {"moc": str(path), "sha256": file_digest(path)},
        )
    assert sky.pixels is not None
    cells = pixel_list_to_moc([parse_pixel(name) for name in sky.pixels])
    return _region(kind, f"pixels {', '.join(sky.pixels)}", cells, {"pixels": list(sky.pixels)})


def _region(kind: str, label: str, cells: MOC, identity: dict[str, Any], **test: Any) -> Region:
    coverage = np.asarray(cells.to_depth29_ranges, dtype=np.int64).reshape(-1, 2)
    if not len(coverage):
        raise ConfigError(f"sky.{kind}: the {label} covers no sky")
    return Region(kind=kind, label=label, coverage=coverage, identity=identity, **test)


def read_moc(path: Path) -> MOC:
    """A MOC from its FITS file; ConfigError names the file when it is absent or not a MOC."""
    if not path.is_file():
        raise ConfigError(f"sky.moc: {path}: no such MOC file")
    try:
        return MOC.from_fits(str(path))
    except Exception as exc:  # mocpy and astropy raise OSError, ValueError, KeyError, ...
        raise ConfigError(f"sky.moc: {path}: not a MOC FITS file ({exc})") from exc
