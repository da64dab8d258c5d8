"""HATS catalogs: open one (or an lsdb collection), read a partition with the cut pushed down.

hats reads the layout (properties, partition_info.csv, _common_metadata); lensflow adds the
checks hats and lsdb leave out: listed pixels must have files and must not overlap, every file's
schema must match the catalog's for the columns read, and every row must lie in its pixel.
Writing (the mock sky, the candidate tables) goes through the same layout and hats' own writers.

A catalog may also be a URL (`https://...`, `s3://...`): hats opens it through fsspec, and the
partition files are read through the same filesystem with the same checks. Over plain HTTP
hats needs only the files it names (properties, partition_info.csv, dataset/_common_metadata);
the stray-file check needs directory listings and is skipped where the server gives none.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import hats
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq
from hats.catalog.catalog_collection import CatalogCollection
from hats.io import paths
from hats.pixel_math.spatial_index import (
    SPATIAL_INDEX_COLUMN,
    compute_spatial_index,
    spatial_index_to_healpix,
)
from upath import UPath

from lensflow.config import PlanConfig
from lensflow.cuts import Cut, check_columns, parse_cuts
from lensflow.errors import CatalogError, ConfigError, MissingColumnError, PixelError, SchemaError
from lensflow.locations import Location, location, missing_bucket, remote, remote_problem
from lensflow.regions import Region, build_region
from lensflow.sky import HealpixPixel, pixel_key

logger = logging.getLogger(__name__)

READ_BATCH_ROWS = 262_144
"""Rows per streamed batch: a worker holds the cut survivors, not the whole partition."""


@dataclass(frozen=True)
class Catalog:
    """A HATS catalog as lensflow reads it."""

    path: Location  # the catalog folder (in a collection: the main catalog's); or a URL
    name: str
    ra_column: str | None
    dec_column: str | None
    pixels: tuple[HealpixPixel, ...]
    schema: pa.Schema
    npix_suffix: str
    total_rows: int | None
    stray_files: tuple[Location, ...]

    def file_of(self, pixel: HealpixPixel) -> Location:
        """The Parquet file (or folder of files, where npix_suffix is "/") of a pixel."""
        file = paths.pixel_catalog_file(self.path, pixel, npix_suffix=self.npix_suffix)
        return file if remote(self.path) is not None else Path(str(file))


@dataclass(frozen=True)
class PartitionRead:
    """One partition's rows that pass the cut, and how many rows its files hold."""

    pixel: HealpixPixel
    table: pa.Table
    rows_read: int


def open_catalog(
    path: str | Path | UPath, *, storage_options: dict[str, Any] | None = None
) -> Catalog:
    """Open a HATS catalog or collection folder (or URL), checking its pixels, listing strays.

    `storage_options` configure a URL's filesystem (fsspec's keys, e.g. endpoint_url, anon).
    """
    where = location(path, storage_options)
    url = remote(where)
    if url is None and not where.is_dir():
        raise CatalogError(f"{where}: no catalog folder here")
    try:
        opened = hats.read_hats(where, read_moc=False)
    except Exception as exc:  # hats raises FileNotFoundError, ValueError, pydantic errors
        if url is not None:
            raise CatalogError(_remote_failure(url, exc)) from exc
        raise CatalogError(
            f"{where}: not a HATS catalog (hats.properties, partition_info.csv and dataset/ "
            f"expected): {exc}"
        ) from exc
    if isinstance(opened, CatalogCollection):
        opened = opened.main_catalog
    info = opened.catalog_info
    if opened.schema is None:
        raise CatalogError(f"{where}: no dataset/_common_metadata; cannot check file schemas")
    pixels = tuple(sorted(opened.get_healpix_pixels()))
    _check_no_overlap(where, pixels)
    base = opened.catalog_base_dir
    catalog_dir = base if url is not None else Path(str(base))
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


def _remote_failure(path: UPath, exc: Exception) -> str:
    """Why hats could not open a URL: hats says only "failed", so the server is asked again."""
    bucket = missing_bucket(path)
    if bucket is not None:
        return f"{path}: bucket {bucket!r} does not exist"
    for name in ("hats.properties", "properties", "collection.properties"):
        try:
            path.fs.info(f"{path.path.rstrip('/')}/{name}")
        except Exception as cause:  # noqa: BLE001  unreachable, denied: described, not raised
            problem = remote_problem(str(path), cause)
            if problem.endswith(": not found"):
                continue
            return problem
        return f"{path}: not a HATS catalog ({exc})"
    return (
        f"{path}: no HATS catalog here (none of hats.properties, properties, collection.properties)"
    )


def _check_no_overlap(path: Location, pixels: Sequence[HealpixPixel]) -> None:
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


def _stray_files(catalog: Catalog) -> list[Location]:
    url = remote(catalog.path)
    if url is not None:
        return _remote_stray_files(catalog, url)
    dataset = Path(str(catalog.path)) / "dataset"
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


def _remote_stray_files(catalog: Catalog, root: UPath) -> list[Location]:
    """The stray files of a remote catalog, from one listing; none where it cannot be listed."""
    fs = root.fs
    try:
        found = fs.find(f"{root.path.rstrip('/')}/dataset")
    except Exception as exc:  # noqa: BLE001  e.g. an HTTP server without directory listings
        logger.debug("%s: dataset/ not listed (%s); stray files not checked", root, exc)
        return []
    expected = {unquote(str(catalog.file_of(p))).rstrip("/") for p in catalog.pixels}
    stray: list[Location] = []
    for key in found:
        url = unquote(fs.unstrip_protocol(key))
        name = url.rsplit("/", 1)[-1]
        if name.startswith(("_", ".")) or url in expected or url.rsplit("/", 1)[0] in expected:
            continue
        stray.append(location(url, dict(root.storage_options)))
    return sorted(stray, key=str)


def require_pixel(catalog: Catalog, pixel: HealpixPixel) -> None:
    """Refuse a pixel the catalog does not list."""
    if pixel not in catalog.pixels:
        raise PixelError(
            f"pixel {pixel_key(pixel)} is not a partition of {catalog.path} "
            f"({len(catalog.pixels)} partitions, orders "
            f"{min(p.order for p in catalog.pixels)}-{max(p.order for p in catalog.pixels)}); "
            "`lensflow plan` lists them"
        )


def partition_files(catalog: Catalog, pixel: HealpixPixel) -> list[Location]:
    """The Parquet files of a listed pixel; a listed pixel without a file is an error."""
    require_pixel(catalog, pixel)
    target = catalog.file_of(pixel)
    files: list[Location]
    url = remote(target)
    if url is not None:
        files = _remote_files(url, folder=catalog.npix_suffix == "/")
    elif target.is_dir():
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


def _remote_files(target: UPath, *, folder: bool) -> list[Location]:
    """A remote pixel's files: the file itself (one HEAD or metadata request), or the listing
    of its folder; a remote folder is never tested by listing a file (HTTP would download it)."""
    fs, key = target.fs, target.path
    try:
        if folder:
            listed = sorted(k for k in fs.find(key) if str(k).endswith(".parquet"))
            options = dict(target.storage_options)
            return [location(fs.unstrip_protocol(k), options) for k in listed]
        return [target] if fs.info(key).get("type") == "file" else []
    except FileNotFoundError:
        return []


def open_parquet(file: Location) -> pq.ParquetFile:
    """A Parquet file opened for streamed reads; for a URL, an fsspec file read by range.

    pre_buffer would read every column chunk of the file up front; buffered reads of 1 MiB
    keep a worker's memory at one batch of a partition of any size.
    """
    url = remote(file)
    if url is not None:  # a file object: pyarrow's own check of the path would list it (HTTP)
        return pq.ParquetFile(url.fs.open(url.path, "rb"), pre_buffer=False, buffer_size=1 << 20)
    return pq.ParquetFile(file, pre_buffer=False, buffer_size=1 << 20)


def check_file_schema(
    file: Location, schema: pa.Schema, columns: Sequence[str], *, pixel: HealpixPixel
) -> pq.ParquetFile:
    """Open a partition file and check its schema for the columns to be read.

    pyarrow's dataset layer would null-fill a missing column and cast a drifted one silently,
    so the file's own footer is compared with the catalog's schema, column by column.
    """
    where = f"pixel {pixel_key(pixel)}, file {file}"
    try:
        parquet = open_parquet(file)
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


def _check_rows_in_pixel(table: pa.Table, pixel: HealpixPixel, *, file: Location) -> None:
    index = table.column(SPATIAL_INDEX_COLUMN).to_numpy(zero_copy_only=False)
    outside = spatial_index_to_healpix(index, target_order=pixel.order) != pixel.pixel
    if outside.any():
        raise CatalogError(
            f"pixel {pixel_key(pixel)}, file {file}: {int(outside.sum())} rows have a "
            f"{SPATIAL_INDEX_COLUMN} outside the pixel (first {int(index[outside][0])}); "
            "the catalog is mis-partitioned"
        )


def inside_pixel(
    ra: npt.NDArray[np.float64], dec: npt.NDArray[np.float64], pixel: HealpixPixel
) -> npt.NDArray[np.bool_]:
    """True where (ra, dec), degrees (N,), lie in `pixel`, by the coordinates themselves.

    The order-29 index is computed from ra/dec as hats partitions rows and then coarsened to
    the pixel's order, so a row on a pixel boundary falls where hats-import put it; the stored
    `_healpix_29` is not consulted. Coordinates must be finite and in range.
    """
    if ra.size == 0:
        return np.zeros(0, dtype=bool)
    index = compute_spatial_index(ra, dec)
    inside: npt.NDArray[np.bool_] = (
        spatial_index_to_healpix(index, target_order=pixel.order) == pixel.pixel
    )
    return inside


def catalog_files(catalog: Catalog) -> dict[str, tuple[Location, str]]:
    """The scanned partitions' files: name under dataset/ -> (file, pixel key).

    A listed pixel without a file is named by `partition_files` (CatalogError).
    """
    base = str(catalog.path).rstrip("/") + "/dataset/"
    files = {}
    for pixel in catalog.pixels:
        for file in partition_files(catalog, pixel):
            text = str(file)
            files[text.removeprefix(base)] = (file, pixel_key(pixel))
    return files


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
    catalog = open_catalog(config.catalog.path, storage_options=config.catalog.storage_options)
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
