"""`lensflow plan`: what a scan will read, before any model runs.

Rows per partition come from the Parquet footers (no data read); with `exact`, a cuts-only pass
on the cluster counts the rows that pass the cut (and, with a [sky] region, those of them
inside it), so a survey team can tune cuts on any catalog without models or cutouts. With a
region, only the partitions it touches are listed, and only those are ever opened.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa
from distributed import Client

from lensflow.catalog import (
    Catalog,
    CatalogInputs,
    open_parquet,
    partition_files,
    read_partition,
)
from lensflow.cuts import Cut
from lensflow.errors import CatalogError, LensflowError
from lensflow.regions import Region
from lensflow.sky import HealpixPixel, pixel_key


@dataclass(frozen=True)
class PlanRow:
    """One partition of a plan; rows_in_region counts the rows after cuts inside [sky]."""

    pixel: HealpixPixel
    rows: int
    rows_after_cuts: int | None = None
    error: str | None = None
    rows_in_region: int | None = None


def footer_rows(pixel: HealpixPixel, *, catalog: Catalog) -> int:
    """Rows in a partition according to its files' footers; CatalogError names a broken file."""
    total = 0
    for file in partition_files(catalog, pixel):
        try:
            total += open_parquet(file).metadata.num_rows
        except (OSError, pa.ArrowException) as exc:
            raise CatalogError(
                f"pixel {pixel_key(pixel)}: {file}: unreadable footer ({exc})"
            ) from exc
    return total


def count_after_cuts(
    pixel: HealpixPixel,
    *,
    catalog: Catalog,
    cut: Cut,
    region: Region | None = None,
    coordinates: Sequence[str] = (),
) -> PlanRow:
    """Read a partition with the cut pushed down and count what passes (a plan task).

    With a region, also count the rows after cuts inside it; `coordinates` name the ra and
    dec columns it tests.
    """
    try:
        read = read_partition(pixel, catalog=catalog, columns=list(coordinates), cut=cut)
        after = read.table.num_rows
        inside = None
        if region is not None:
            ra, dec = coordinates
            inside = region.filter(read.table, ra=ra, dec=dec).num_rows
    except LensflowError as exc:
        return PlanRow(pixel, rows=0, error=str(exc))
    return PlanRow(pixel, rows=read.rows_read, rows_after_cuts=after, rows_in_region=inside)


def plan(
    catalog: Catalog,
    *,
    cut: Cut,
    client: Client | None = None,
    region: Region | None = None,
    coordinates: Sequence[str] = (),
) -> list[PlanRow]:
    """One row per partition: rows, and rows after cuts when a client runs the exact pass.

    The catalog's partitions are those listed (open_inputs prunes them to a region); with a
    region, the exact pass also counts the rows after cuts inside it.
    """
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
        region=region,
        coordinates=tuple(coordinates) if region is not None else (),
        key=[f"plan-{p.order}-{p.pixel}" for p in catalog.pixels],
    )
    return list(client.gather(futures))


def plan_inputs(inputs: CatalogInputs, *, client: Client | None = None) -> list[PlanRow]:
    """The plan of opened inputs (see plan)."""
    return plan(
        inputs.catalog,
        cut=inputs.cut,
        client=client,
        region=inputs.region,
        coordinates=inputs.coordinates,
    )
