"""HATS catalogs: open one (or an lsdb collection), read a partition with the cut pushed down.

hats reads the layout (properties, partition_info.csv, _common_metadata); lensflow adds the
checks hats and lsdb leave out: listed pixels must have files and must not overlap, every file's
schema must match the catalog's for the columns read, and every row must lie in its pixel.
Writing (the mock sky, the candidate tables) goes through the same layout and hats' own writers.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import hats
import pyarrow as pa
import pyarrow.parquet as pq
from hats.catalog.catalog_collection import CatalogCollection
from hats.io import paths
from hats.pixel_math.spatial_index import SPATIAL_INDEX_COLUMN, spatial_index_to_healpix

from lensflow.config import PlanConfig
from lensflow.cuts import Cut, check_columns, parse_cuts
from lensflow.errors import CatalogError, ConfigError, MissingColumnError, PixelError, SchemaError
from lensflow.regions import Region, build_region
from lensflow.sky import HealpixPixel, pixel_key

logger = logging.getLogger(__name__)

READ_BATCH_ROWS = 262_144
"""Rows per streamed batch: a worker holds the cut survivors, not the whole partition."""


@dataclass(frozen=True)
class Catalog:
    """A HATS catalog as lensflow reads it."""

    path: Path  # the catalog folder (inside a collection: the main catalog's folder)
    name: str
    ra_column: str | None
    dec_column: str | None
    pixels: tuple[HealpixPixel, ...]
    schema: pa.Schema
    npix_suffix: str
    total_rows: int | None
    stray_files: tuple[Path, ...]

    def file_of(self, pixel: HealpixPixel) -> Path:
        """The Parquet file (or folder of files, where npix_suffix is "/") of a pixel."""
        return Path(str(paths.pixel_catalog_file(self.path, pixel, npix_suffix=self.npix_suffix)))


@dataclass(frozen=True)
class PartitionRead:
    """One partition's rows that pass the cut, and how many rows its files hold."""

    pixel: HealpixPixel
    table: pa.Table
    rows_read: int


def open_catalog(path: Path) -> Catalog:
    """Open a HATS catalog or collection folder, checking its pixels and listing stray files."""
    path = Path(path)
    if not path.is_dir():
        raise CatalogError(f"{path}: no catalog folder here")
    try:
        opened = hats.read_hats(path, read_moc=False)
    except Exception as exc:  # hats raises FileNotFoundError, ValueError, pydantic errors
        raise CatalogError(
            f"{path}: not a HATS catalog (hats.properties, partition_info.csv and dataset/ "
            f"expected): {exc}"
        ) from exc
    if isinstance(opened, CatalogCollection):
        opened = opened.main_catalog
    info = opened.catalog_info
    if opened.schema is None:
        raise CatalogError(f"{path}: no dataset/_common_metadata; cannot check file schemas")
    pixels = tuple(sorted(opened.get_healpix_pixels()))
    _check_no_overlap(path, pixels)
    catalog_dir = Path(str(opened.catalog_base_dir))
    catalog = Catalog(
        path=catalog_dir,
        name=info.catalog_name,
        ra_column=info.ra_column,
        dec_column=info.dec_column,
        pixels=pixels,
        schema=opened.schema,
        npix_suffix=info.npix_suffix,
        total_rows=info.total_rows,
        stray_files=(),
    )
    stray = _stray_files(catalog)
    if stray:
        logger.warning(
            "%s: %d files under dataset/ belong to no listed pixel, e.g. %s",
            catalog_dir,
            len(stray),
            stray[0],
        )
    return replace(catalog, stray_files=tuple(stray))


def _check_no_overlap(path: Path, pixels: Sequence[HealpixPixel]) -> None:
    listed = set(pixels)
    if len(listed) != len(pixels):
        raise CatalogError(f"{path}: partition_info.csv lists a pixel twice")
    for pixel in pixels:
        for delta in range(1, pixel.order + 1):
            parent = HealpixPixel(pixel.order - delta, pixel.pixel >> (2 * delta))
            if parent in listed:
                raise CatalogError(
                    f"{path}: pixels {pixel_key(pixel)} and {pixel_key(parent)} overlap; a "
                    "HATS catalog's partitions must not"
                )


def _stray_files(catalog: Catalog) -> list[Path]:
    dataset = catalog.path / "dataset"
    expected = {catalog.file_of(p).resolve() for p in catalog.pixels}
    stray = []
    for root, _dirs, files in os.walk(dataset):
        for name in files:
            if name.startswith(("_", ".")):
                continue
            file = (Path(root) / name).resolve()
            if file not in expected and file.parent not in expected:
                stray.append(file)
    return sorted(stray)


def require_pixel(catalog: Catalog, pixel: HealpixPixel) -> None:
    """Refuse a pixel the catalog does not list."""
    if pixel not in catalog.pixels:
        raise PixelError(
            f"pixel {pixel_key(pixel)} is not a partition of {catalog.path} "
            f"({len(catalog.pixels)} partitions, orders "
            f"{min(p.order for p in catalog.pixels)}-{max(p.order for p in catalog.pixels)}); "
            "`lensflow plan` lists them"
        )


def partition_files(catalog: Catalog, pixel: HealpixPixel) -> list[Path]:
    """The Parquet files of a listed pixel; a listed pixel without a file is an error."""
    require_pixel(catalog, pixel)
    target = catalog.file_of(pixel)
    if target.is_dir():
        files = sorted(f for f in target.iterdir() if f.suffix == ".parquet")
    elif target.is_file():
        files = [target]
    else:
        files = []
    if not files:
        raise CatalogError(
            f"pixel {pixel_key(pixel)}: listed in partition_info.csv but {target} does not exist"
        )
    return files


def check_file_schema(
    file: Path, schema: pa.Schema, columns: Sequence[str], *, pixel: HealpixPixel
) -> pq.ParquetFile:
    """Open a partition file and check its schema for the columns to be read.

    pyarrow's dataset layer would null-fill a missing column and cast a drifted one silently,
    so the file's own footer is compared with the catalog's schema, column by column.
    """
    where = f"pixel {pixel_key(pixel)}, file {file}"
    try:
        # pre_buffer would read every column chunk of the file up front; buffered reads of
        # 1 MiB keep a worker's memory at one batch of a partition of any size.
        parquet = pq.ParquetFile(file, pre_buffer=False, buffer_size=1 << 20)
    except pa.ArrowInvalid as exc:
        raise CatalogError(f"{where}: not a readable Parquet file ({exc})") from exc
    found = parquet.schema_arrow
    names = found.names
    for name in columns:
        count = names.count(name)
        if count == 0:
            raise MissingColumnError(
                f"{where}: no column {name!r}; the file has {sorted(set(names))}"
            )
        if count > 1:
            raise SchemaError(f"{where}: column {name!r} appears {count} times")
        expected_type = schema.field(name).type if name in schema.names else None
        actual_type = found.field(name).type
        if expected_type is not None and actual_type != expected_type:
            raise SchemaError(
                f"{where}: column {name!r} is {actual_type}, the catalog's schema says "
                f"{expected_type}"
            )
    return parquet


def read_partition(
    pixel: HealpixPixel,
    *,
    catalog: Catalog,
    columns: Sequence[str],
    cut: Cut | None = None,
) -> PartitionRead:
    """Read one partition's columns with the cut applied while decoding.

    Only the columns named and those the cut reads are decoded (projection pushdown), and the
    cut, compiled to a pyarrow expression, filters each decoded batch, so a worker holds the
    survivors rather than the partition. Row groups are not skipped by their min/max
    statistics: those leave NaN out and would drop rows a cut such as `isnan(x)` keeps.
    `columns` are catalog column names; the spatial index column is always read to check
    that each row lies in its pixel.
    """
    wanted = list(dict.fromkeys([*columns, SPATIAL_INDEX_COLUMN]))
    needed = list(dict.fromkeys([*wanted, *(cut.columns if cut else ())]))
    missing = [name for name in needed if name not in catalog.schema.names]
    if missing:
        raise MissingColumnError(
            f"{catalog.path}: no column {missing[0]!r} in the catalog's schema; it has "
            f"{sorted(catalog.schema.names)}"
        )
    expression = None if cut is None else cut.to_arrow()
    batches: list[pa.RecordBatch] = []
    rows_read = 0
    for file in partition_files(catalog, pixel):
        parquet = check_file_schema(file, catalog.schema, needed, pixel=pixel)
        rows_read += parquet.metadata.num_rows
        try:
            for batch in parquet.iter_batches(batch_size=READ_BATCH_ROWS, columns=needed):
                kept = batch if expression is None else batch.filter(expression)
                if kept.num_rows:
                    batches.append(kept.select(wanted))
        except pa.ArrowInvalid as exc:
            raise CatalogError(
                f"pixel {pixel_key(pixel)}, file {file}: cannot decode ({exc})"
            ) from exc
    schema = catalog.schema
    target = pa.schema([schema.field(name) for name in wanted])
    table = pa.Table.from_batches(batches, schema=target) if batches else target.empty_table()
    _check_rows_in_pixel(table, pixel, file=catalog.file_of(pixel))
    return PartitionRead(pixel=pixel, table=table, rows_read=rows_read)


def _check_rows_in_pixel(table: pa.Table, pixel: HealpixPixel, *, file: Path) -> None:
    index = table.column(SPATIAL_INDEX_COLUMN).to_numpy(zero_copy_only=False)
    outside = spatial_index_to_healpix(index, target_order=pixel.order) != pixel.pixel
    if outside.any():
        raise CatalogError(
            f"pixel {pixel_key(pixel)}, file {file}: {int(outside.sum())} rows have a "
            f"{SPATIAL_INDEX_COLUMN} outside the pixel (first {int(index[outside][0])}); "
            "the catalog is mis-partitioned"
        )


# --- a config's inputs: the catalog pruned to its region, the cut ---------------------------


@dataclass(frozen=True)
class CatalogInputs:
    """The catalog (its partitions pruned to the region), the cut and the region of a config."""

    catalog: Catalog
    cut: Cut
    region: Region | None
    coordinates: tuple[str, str]  # the catalog's ra and dec columns, as the config maps them

    @property
    def title(self) -> str:
        """The catalog's name, and the region searched."""
        name = self.catalog.name
        return name if self.region is None else f"{name} in {self.region.label}"


def open_inputs(config: PlanConfig) -> CatalogInputs:
    """Open the catalog, parse and check the cut, and prune the partitions to the [sky] region.

    A region that touches none of the catalog's partitions is refused: a scan of it would read
    nothing.
    """
    catalog = open_catalog(config.catalog.path)
    cut = parse_cuts(config.cuts.expression)
    check_columns(cut, catalog.schema, where=str(catalog.path))
    columns = config.catalog.columns
    region = None
    if config.sky is not None:
        depth = max((p.order for p in catalog.pixels), default=0)
        region = build_region(config.sky, depth=depth)
        kept = region.keep(catalog.pixels)
        if not kept:
            raise ConfigError(
                f"sky.{region.kind}: the {region.label} touches none of the "
                f"{len(catalog.pixels)} partitions of {catalog.path}"
            )
        catalog = replace(catalog, pixels=kept)
    return CatalogInputs(catalog, cut, region, (columns.ra, columns.dec))
