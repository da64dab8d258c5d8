"""`lensflow plan`: what a scan will read, before any model runs.

Rows per partition come from the Parquet footers (no data read); with `exact`, a cuts-only pass
on the cluster counts the rows that pass the cut, so a survey team can tune cuts on any
catalog without models or cutouts.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq
from distributed import Client

from lensflow.catalog import Catalog, partition_files, read_partition
from lensflow.cuts import Cut
from lensflow.errors import CatalogError, LensflowError
from lensflow.sky import HealpixPixel, pixel_key


@dataclass(frozen=True)
class PlanRow:
    pixel: HealpixPixel
    rows: int
    rows_after_cuts: int | None = None
    error: str | None = None


def footer_rows(pixel: HealpixPixel, *, catalog: Catalog) -> int:
    """Rows in a partition according to its files' footers; CatalogError names a broken file."""
    total = 0
    for file in partition_files(catalog, pixel):
        try:
            total += pq.ParquetFile(file).metadata.num_rows
        except (OSError, pa.ArrowException) as exc:
            raise CatalogError(
                f"pixel {pixel_key(pixel)}: {file}: unreadable footer ({exc})"
            ) from exc
    return total


def count_after_cuts(pixel: HealpixPixel, *, catalog: Catalog, cut: Cut) -> PlanRow:
    """Read a partition with the cut pushed down and count what passes (a plan task)."""
    try:
        read = read_partition(pixel, catalog=catalog, columns=[], cut=cut)
    except LensflowError as exc:
        return PlanRow(pixel, rows=0, error=str(exc))
    return PlanRow(pixel, rows=read.rows_read, rows_after_cuts=read.table.num_rows)


def plan(catalog: Catalog, *, cut: Cut, client: Client | None = None) -> list[PlanRow]:
    """One row per partition: rows, and rows after cuts when a client runs the exact pass."""
    if client is None:
        rows = []
        for pixel in catalog.pixels:
            try:
                rows.append(PlanRow(pixel, rows=footer_rows(pixel, catalog=catalog)))
            except LensflowError as exc:  # shown, not fatal
                rows.append(PlanRow(pixel, rows=0, error=str(exc)))
        return rows
    [shared] = client.scatter([catalog], broadcast=True, hash=False)
    futures = client.map(
        count_after_cuts,
        list(catalog.pixels),
        catalog=shared,
        cut=cut,
        key=[f"plan-{p.order}-{p.pixel}" for p in catalog.pixels],
    )
    return list(client.gather(futures))
