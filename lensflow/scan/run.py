"""The scan driver: plan the partitions, run their task chains, record every outcome.

Each partition is a chain of two tasks keyed by its pixel (select-K-P, classify-K-P); at most
`cluster.max_in_flight` chains are in flight, so the scheduler's memory stays flat for a sky
of any size. A chain that raises (a worker killed too often) is recorded as failed and the
scan goes on.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from distributed import Client, as_completed

from lensflow.candidates import finish_candidate_catalog
from lensflow.catalog import Catalog, open_inputs, require_pixel
from lensflow.cluster import has_gpu_workers
from lensflow.config import ColumnMap, ScanConfig
from lensflow.cutouts import open_store
from lensflow.ensemble import check_ensemble_inputs
from lensflow.errors import MissingColumnError, PixelError
from lensflow.io import canonical_hash
from lensflow.registry import default_manifest_path, load_manifest
from lensflow.scan.stages import (
    Failure,
    PartitionResult,
    ScanContext,
    classify_partition,
    failure_result,
    select_partition,
)
from lensflow.scan.state import (
    fingerprint_parts,
    prepare_scan_dir,
    read_marker,
    read_markers,
    write_manifest,
)
from lensflow.sky import HealpixPixel, pixel_key

logger = logging.getLogger(__name__)

ProgressHook = Callable[[int, int, PartitionResult | None], None]
"""Called with (finished, total, result) as partitions finish; result None at the start."""


@dataclass(frozen=True)
class ScanOutcome:
    """What a scan run did."""

    output: Path
    ran: int
    skipped: int
    failed: int
    seconds: float

    @property
    def exit_status(self) -> int:
        """0 when every partition is done, 2 when some failed."""
        return 2 if self.failed else 0


def build_context(config: ScanConfig) -> ScanContext:
    """Check every input before any task runs: catalog, cut, region, columns, cutouts, models.

    The columns the photometry gate reads are named by the models' manifest and must be mapped
    and present in the catalog; the ensemble's bands, size and units must fit the cutout store.
    """
    inputs = open_inputs(config)
    catalog = inputs.catalog
    manifest = load_manifest(config.models.manifest)
    features = manifest.photometry.features
    source = config.models.manifest or default_manifest_path()
    needed_by = f"photometry model {manifest.photometry.name!r} of {source}"
    config.catalog.columns.require(features, needed_by=needed_by)
    check_mapped_columns(config.catalog.columns, ["id", "ra", "dec", *features], catalog=catalog)
    store = open_store(config.cutouts.path)
    check_ensemble_inputs(manifest, store)
    photometry_threshold = (
        config.photometry.threshold
        if config.photometry.threshold is not None
        else manifest.photometry.threshold
    )
    ensemble_threshold = (
        config.ensemble.threshold
        if config.ensemble.threshold is not None
        else manifest.ensemble.threshold
    )
    parts = fingerprint_parts(
        config,
        catalog=catalog,
        manifest=manifest,
        store=store,
        photometry_threshold=photometry_threshold,
        ensemble_threshold=ensemble_threshold,
        region=inputs.region,
    )
    output = config.output.path
    prepare_scan_dir(output, config, parts)
    return ScanContext(
        config=config,
        catalog=catalog,
        cut=inputs.cut,
        manifest=manifest,
        photometry_threshold=photometry_threshold,
        ensemble_threshold=ensemble_threshold,
        fingerprint=canonical_hash(parts),
        output=output,
        region=inputs.region,
    )


def check_mapped_columns(columns: ColumnMap, names: Sequence[str], *, catalog: Catalog) -> None:
    """Refuse a column map whose entries for `names` are not columns of the catalog."""
    mapped = columns.mapped()
    for name in names:
        if mapped[name] not in catalog.schema.names:
            raise MissingColumnError(
                f"[catalog.columns] {name} = {mapped[name]!r}: no such column in {catalog.path}; "
                f"it has {sorted(catalog.schema.names)}"
            )


def pending_pixels(context: ScanContext) -> tuple[list[HealpixPixel], int]:
    """Partitions to run (no done marker with its file in place) and how many are done."""
    todo, done = [], 0
    for pixel in context.catalog.pixels:
        marker = read_marker(context.output, pixel)
        if (
            marker is not None
            and marker.status == "done"
            and marker.fingerprint == context.fingerprint
            and marker.output is not None
            and (context.output / marker.output).is_file()
        ):
            done += 1
        else:
            todo.append(pixel)
    return todo, done


def run_scan(
    config: ScanConfig,
    *,
    client: Client,
    pixels: Sequence[HealpixPixel] | None = None,
    progress: ProgressHook | None = None,
) -> ScanOutcome:
    """Scan the catalog (or only `pixels`, forced) on the client's cluster; resumable."""
    return run_context(build_context(config), client=client, pixels=pixels, progress=progress)


def run_context(
    context: ScanContext,
    *,
    client: Client,
    pixels: Sequence[HealpixPixel] | None = None,
    progress: ProgressHook | None = None,
) -> ScanOutcome:
    """Run a scan whose inputs build_context has checked (before any cluster was started)."""
    start = time.perf_counter()
    if pixels is None:
        todo, skipped = pending_pixels(context)
    else:
        for pixel in pixels:
            try:
                require_pixel(context.catalog, pixel)
            except PixelError as exc:
                if context.region is None:
                    raise
                label = context.region.label
                raise PixelError(f"{exc} (those the scan's [sky] {label} touches)") from None
        todo, skipped = list(pixels), 0
    if skipped:
        logger.info("resuming: %d partitions already done, %d to run", skipped, len(todo))
    failed = _run_chains(client, context, todo, progress)
    remove_stale_temporaries(context.output)
    markers = read_markers(context.output)
    write_manifest(context.output, markers)
    finish_candidate_catalog(context.output, [m.order_pixel for m in markers if m.status == "done"])
    return ScanOutcome(
        output=context.output,
        ran=len(todo),
        skipped=skipped,
        failed=failed,
        seconds=time.perf_counter() - start,
    )


def remove_stale_temporaries(output: Path) -> int:
    """Delete temp files a killed writer left behind; every task of this scan has finished.

    Writers name their temp files `.NAME.PID.tmp` and remove them unless the process dies
    between write and rename (a worker killed mid-write). Returns how many were removed.
    """
    stale = [p for p in output.rglob(".*.tmp") if p.is_file()]
    for path in stale:
        path.unlink(missing_ok=True)
    if stale:
        logger.info("removed %d temp files left by killed writers", len(stale))
    return len(stale)


def rerun_scan(
    scan_dir: Path,
    pixels: Sequence[HealpixPixel],
    *,
    client: Client,
    progress: ProgressHook | None = None,
) -> ScanOutcome:
    """Run chosen partitions of an existing scan again, whatever their markers say."""
    from lensflow.scan.state import load_scan_config

    config = load_scan_config(scan_dir)
    config = config.model_copy(
        update={"output": config.output.model_copy(update={"path": scan_dir.resolve()})}
    )
    return run_scan(config, client=client, pixels=pixels, progress=progress)


def _run_chains(
    client: Client,
    context: ScanContext,
    todo: list[HealpixPixel],
    progress: ProgressHook | None,
) -> int:
    total = len(todo)
    if progress:
        progress(0, total, None)
    if not todo:
        return 0
    [shared] = client.scatter([context], broadcast=True, hash=False)
    gpu = has_gpu_workers(client)
    resources = {"GPU": 1} if gpu else None
    if gpu:
        logger.info("GPU workers present: the ensemble step asks for GPU=1")
    limit = context.config.cluster.max_in_flight
    queue = list(reversed(todo))
    pixel_of = {}
    running = as_completed()
    run = uuid.uuid4().hex[:8]  # a key per run, so a rerun never meets a finished key

    def submit(pixel: HealpixPixel) -> None:
        name = f"{pixel.order}-{pixel.pixel}-{run}"
        selected = client.submit(
            select_partition, pixel, context=shared, key=f"select-{name}", pure=False
        )
        classified = client.submit(
            classify_partition,
            selected,
            context=shared,
            key=f"classify-{name}",
            resources=resources,
            pure=False,
        )
        pixel_of[classified.key] = pixel
        running.add(classified)

    for _ in range(min(limit, len(queue))):
        submit(queue.pop())
    failed = 0
    for finished, future in enumerate(running, start=1):
        pixel = pixel_of.pop(future.key)
        try:
            result: PartitionResult = future.result()
        except Exception as exc:  # noqa: BLE001  KilledWorker or a crashed task: record, go on
            error = f"pixel {pixel_key(pixel)}: {type(exc).__name__}: {exc}"
            result = failure_result(Failure(pixel, error, "worker"), context=context)
        finally:
            future.release()
        failed += not result.ok
        if progress:
            progress(finished, total, result)
        if queue:
            submit(queue.pop())
    return failed
