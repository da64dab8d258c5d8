"""Building a cutout store from coadd tiles on a Dask cluster: one task per catalog partition.

Beside the store `S` lives its build folder `S.build/`: the tile index (`tiles.parquet`), a done
marker per partition (`partitions/`) and the build report (`report.json`). A rerun skips the
partitions marked done with the same images settings and tile set.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distributed import Client, as_completed

from lensflow.catalog import require_pixel
from lensflow.config import ImagesConfig
from lensflow.cutouts import partition_group
from lensflow.errors import CutoutError, LensflowError
from lensflow.images.build import PartitionReport, Rows, build_partition, read_marker, write_marker
from lensflow.images.index import HeaderMap, TileIndex, tile_index
from lensflow.images.partitions import CatalogRows, RowSource, check_rows, partition_tiles
from lensflow.images.store import prepare_store
from lensflow.images.tiles import TileFile, TileHeader, read_tile_header
from lensflow.io import canonical_hash, claim_folder, write_text
from lensflow.sky import HealpixPixel, pixel_key

logger = logging.getLogger(__name__)

Progress = Callable[[int, int, PartitionReport | None], None]
"""progress(done, total, report): once at the start (report None), then per finished partition."""


@dataclass(frozen=True)
class BuildPaths:
    """The build folder beside a store and what it holds."""

    store: Path

    @property
    def folder(self) -> Path:
        return self.store.with_name(f"{self.store.name}.build")

    @property
    def index(self) -> Path:
        return self.folder / "tiles.parquet"

    @property
    def markers(self) -> Path:
        return self.folder / "partitions"

    @property
    def report(self) -> Path:
        return self.folder / "report.json"


@dataclass(frozen=True)
class BuildReport:
    """Every partition's report (built now or skipped as done) and the tiles that failed."""

    store: Path
    partitions: dict[str, PartitionReport]  # "K/P" -> report
    skipped: tuple[str, ...]  # partitions already done before this run
    bad_tiles: dict[str, str]  # tile path -> "reason: message"
    seconds: float

    @property
    def failed(self) -> list[str]:
        return sorted(k for k, r in self.partitions.items() if not r.ok)

    def totals(self) -> dict[str, Any]:
        """Rows, stamps written, rejected rows (counts and ids) per reason, over the partitions."""
        rejected: dict[str, int] = {}
        ids: dict[str, list[int]] = {}
        for report in self.partitions.values():
            for reason, count in report.rejected.items():
                rejected[reason] = rejected.get(reason, 0) + count
                ids.setdefault(reason, []).extend(report.rejected_ids.get(reason, []))
        return {
            "partitions": len(self.partitions),
            "failed": self.failed,
            "rows": sum(r.rows for r in self.partitions.values()),
            "written": sum(r.written for r in self.partitions.values()),
            "rejected": rejected,
            "rejected_ids": {k: sorted(v) for k, v in ids.items()},
            "bad_tiles": dict(self.bad_tiles),
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "store": str(self.store),
            "seconds": self.seconds,
            "skipped": list(self.skipped),
            "totals": self.totals(),
            "partitions": {k: r.to_json() for k, r in sorted(self.partitions.items())},
        }


def _build_task(
    pixel: HealpixPixel,
    source: CatalogRows | Rows,
    *,
    store: Path,
    index: TileIndex,
    config: ImagesConfig,
    markers: Path,
    fingerprint: str,
) -> PartitionReport:
    """Run on a worker: read the rows, build the partition, then write its marker."""
    start = time.perf_counter()
    try:
        rows = source.read(pixel) if isinstance(source, CatalogRows) else source
        report = build_partition(
            pixel, rows=rows, store=store, index=index, config=config, fingerprint=fingerprint
        )
    except (LensflowError, OSError) as exc:
        error = f"pixel {pixel_key(pixel)}: {exc}"
        return PartitionReport(pixel, "failed", seconds=time.perf_counter() - start, error=error)
    write_marker(markers, report)
    return report


def build_fingerprint(config: ImagesConfig, index: TileIndex) -> str:
    """What decides a partition's stamps: the images settings and the tile set."""
    settings = config.model_dump(mode="json", exclude={"max_open_tiles", "storage_options"})
    return canonical_hash({"images": settings, "tiles": index.signature})


def build_cutouts(
    rows: RowSource,
    *,
    store: Path,
    config: ImagesConfig,
    client: Client,
    pixels: Sequence[HealpixPixel] | None = None,
    max_in_flight: int = 64,
    progress: Progress | None = None,
    force: bool = False,
) -> BuildReport:
    """Cut the stamps of every partition's rows into `store`, one Dask task per partition.

    `rows` is a catalog (read on the workers) or arrays per pixel. At most `max_in_flight`
    tasks run at once; partitions already marked done (same settings and tiles) are skipped
    unless `force`. Writes the build report (JSON) beside the store and returns it.
    """
    start = time.perf_counter()
    store = Path(store)
    paths = BuildPaths(store)
    claim_folder(store.parent, what="cutout store's folder (--output)")
    claim_folder(paths.folder, what="build folder beside the store")
    index = tile_index(config, path=paths.index, read_headers=_cluster_headers(client, config))
    prepare_store(store, index=index, config=config)
    fingerprint = build_fingerprint(config, index)
    run_key = canonical_hash([fingerprint, str(store.resolve())])[:12]  # unique per store
    chosen = list(pixels) if pixels is not None else _source_pixels(rows)
    reports: dict[str, PartitionReport] = {}
    for pixel in chosen:
        marker = None if force else read_marker(paths.markers, pixel)
        group_there = (store / partition_group(pixel)).is_dir()
        if marker is not None and marker.ok and marker.fingerprint == fingerprint and group_there:
            reports[pixel_key(pixel)] = marker
    skipped = tuple(reports)
    todo = [p for p in chosen if pixel_key(p) not in reports]
    for pixel in todo:
        if isinstance(rows, CatalogRows):
            require_pixel(rows.catalog, pixel)
        elif pixel not in rows:
            raise CutoutError(f"pixel {pixel_key(pixel)}: no rows given for it")
        else:
            check_rows(pixel, rows[pixel])
    if progress is not None:
        progress(len(reports), len(chosen), None)
    logger.info("%s: %d partitions to build, %d done before", store, len(todo), len(skipped))

    def submit(pixel: HealpixPixel) -> Any:
        source = rows if isinstance(rows, CatalogRows) else rows[pixel]
        return client.submit(
            _build_task,
            pixel,
            source,
            key=f"cutouts-{pixel.order}-{pixel.pixel}-{run_key}",
            pure=False,
            store=store,
            index=partition_tiles(index, pixel, size=config.size),
            config=config,
            markers=paths.markers,
            fingerprint=fingerprint,
        )

    reports |= _run(
        todo,
        submit,
        max_in_flight=max_in_flight,
        done=len(reports),
        total=len(chosen),
        progress=progress,
    )
    report = BuildReport(store, reports, skipped, index.bad_tiles(), time.perf_counter() - start)
    write_text(paths.report, json.dumps(report.to_json(), indent=1) + "\n")
    return report


HEADERS_PER_TASK = 256


def _read_headers(files: Sequence[TileFile], *, config: ImagesConfig) -> list[TileHeader]:
    return [read_tile_header(f, config=config) for f in files]


def _cluster_headers(client: Client, config: ImagesConfig) -> HeaderMap:
    """Read tile headers on the cluster, HEADERS_PER_TASK files per task, order kept."""

    def read(files: Sequence[TileFile]) -> list[TileHeader]:
        chunks = [files[i : i + HEADERS_PER_TASK] for i in range(0, len(files), HEADERS_PER_TASK)]
        futures = client.map(_read_headers, chunks, config=config, pure=False)
        return [header for chunk in client.gather(futures) for header in chunk]

    return read


def _source_pixels(rows: RowSource) -> list[HealpixPixel]:
    return list(rows.catalog.pixels) if isinstance(rows, CatalogRows) else sorted(rows)


def _run(
    todo: Iterable[HealpixPixel],
    submit: Callable[[HealpixPixel], Any],
    *,
    max_in_flight: int,
    done: int,
    total: int,
    progress: Progress | None,
) -> dict[str, PartitionReport]:
    """Keep at most `max_in_flight` partition tasks running; the report of each, by "K/P"."""
    reports: dict[str, PartitionReport] = {}
    waiting = iter(todo)
    pixel_of: dict[str, HealpixPixel] = {}
    running = as_completed()
    for pixel in waiting:
        future = submit(pixel)
        pixel_of[future.key] = pixel
        running.add(future)
        if len(pixel_of) >= max_in_flight:
            break
    for future in running:
        pixel = pixel_of[future.key]
        try:
            report = future.result()
        except Exception as exc:  # noqa: BLE001  a crashed worker or task: record, go on
            report = PartitionReport(pixel, "failed", error=f"pixel {pixel_key(pixel)}: {exc}")
        future.release()
        reports[pixel_key(pixel)] = report
        if not report.ok:
            logger.warning("%s", report.error)
        if progress is not None:
            progress(done + len(reports), total, report)
        following = next(waiting, None)
        if following is not None:
            nxt = submit(following)
            pixel_of[nxt.key] = following
            running.add(nxt)
    return reports
