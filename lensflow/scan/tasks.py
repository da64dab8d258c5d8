"""How a scan's pending partitions become task chains: small ones together, the rest alone.

A partition is small when the catalog's dataset/_metadata says it holds fewer rows than
[cluster] rows_per_task; consecutive small partitions share a chain (each still gets its own
outcome and marker), so a sky of many tiny partitions is not paid for in per-task overhead.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

from lensflow.locations import remote

if TYPE_CHECKING:
    from lensflow.catalog import Catalog
    from lensflow.scan.stages import ScanContext
    from lensflow.sky import HealpixPixel

logger = logging.getLogger(__name__)

METADATA_LIMIT = 64 << 20
"""The largest dataset/_metadata read for row counts (bytes); larger catalogs are not batched."""

_LEAF = re.compile(r"Norder=(\d+)/Dir=\d+/Npix=(\d+)")


def partition_rows(catalog: Catalog) -> dict[tuple[int, int], int]:
    """Rows per listed pixel, (order, pixel) -> rows, from dataset/_metadata's row groups.

    hats-import and lensflow write _metadata; a catalog without one (or with one larger than
    METADATA_LIMIT bytes, or unreadable) gives {}: its partitions' sizes are unknown.
    """
    metadata = catalog.path / "dataset" / "_metadata"
    url = remote(metadata)
    try:
        local = Path(str(metadata))
        size = url.fs.size(url.path) if url is not None else local.stat().st_size
        if size > METADATA_LIMIT:
            return {}
        with url.fs.open(url.path, "rb") if url is not None else local.open("rb") as handle:
            footer = pq.read_metadata(handle)
    except (OSError, pa.ArrowException) as exc:
        logger.debug("%s: row counts unknown (%s)", metadata, exc)
        return {}
    rows: dict[tuple[int, int], int] = {}
    for i in range(footer.num_row_groups):
        group = footer.row_group(i)
        found = _LEAF.search(group.column(0).file_path if group.num_columns else "")
        if found is not None:
            key = (int(found.group(1)), int(found.group(2)))
            rows[key] = rows.get(key, 0) + group.num_rows
    return {key: n for key, n in rows.items() if key in catalog.pixel_keys}


def task_groups(
    todo: Sequence[HealpixPixel],
    *,
    rows: dict[tuple[int, int], int],
    rows_per_task: int,
    max_pixels: int,
) -> list[list[HealpixPixel]]:
    """The pending pixels as tasks: runs of small partitions together, the others alone.

    A partition is small when the catalog says it has fewer than `rows_per_task` rows; a task
    holds consecutive small ones up to `rows_per_task` rows and `max_pixels` pixels. Unknown
    sizes (absent from `rows`) and `rows_per_task` 0 mean one pixel per task.
    """
    groups: list[list[HealpixPixel]] = []
    current: list[HealpixPixel] = []
    current_rows = 0
    for pixel in todo:
        n = rows.get((pixel.order, pixel.pixel))
        if n is None or n >= rows_per_task:
            groups.append([pixel])
            continue
        if current and (current_rows + n > rows_per_task or len(current) >= max_pixels):
            groups.append(current)
            current, current_rows = [], 0
        current.append(pixel)
        current_rows += n
    if current:
        groups.append(current)
    return groups


def chain_groups(
    context: ScanContext, todo: list[HealpixPixel], *, threads: int, alone: bool
) -> list[list[HealpixPixel]]:
    """Tasks for the pending pixels; at least four per worker thread (of the cluster's
    `threads`) while pixels last.

    The largest tasks (by the catalog's row counts) come first, so the scan does not end with
    one worker busy on a large partition while the others wait.
    """
    rows_per_task = context.config.cluster.rows_per_task
    if alone or rows_per_task == 0 or len(todo) < 2:
        return [[pixel] for pixel in todo]
    threads = max(1, threads)
    rows = partition_rows(context.catalog)
    groups = task_groups(
        todo,
        rows=rows,
        rows_per_task=rows_per_task,
        max_pixels=max(1, len(todo) // (4 * threads)),
    )
    if len(groups) < len(todo):
        logger.info("%d partitions in %d tasks (small ones together)", len(todo), len(groups))
    return largest_first(groups, rows=rows)


def largest_first(
    groups: list[list[HealpixPixel]], *, rows: dict[tuple[int, int], int]
) -> list[list[HealpixPixel]]:
    """Tasks ordered by their rows, most first (stable; unknown sizes count as 0)."""
    return sorted(groups, key=lambda g: -sum(rows.get((p.order, p.pixel), 0) for p in g))
