"""The scan driver: plan the partitions, run their task chains, record every outcome.

Each partition is a task chain keyed by its pixel: on a cluster with GPU workers two tasks
(select-K-P on any worker, classify-K-P asking for GPU=1), without them one (scan-K-P doing
both, so a partition pays for one task and its survivors never leave their worker). Small
partitions (fewer rows than `cluster.rows_per_task`, by the catalog's _metadata) share a chain
(select-K-P+N, scan-K-P+N), each still with its own outcome and marker. At most
`cluster.max_in_flight` chains are in flight, so the scheduler's memory stays flat for a sky of
any size. A chain that raises (a worker killed too often) is recorded as failed, its partitions
run again one per chain, and the scan goes on. Before the first chain, the workers are warmed (lensflow.scan.warm).
"""

from __future__ import annotations

import difflib
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from distributed import Client, Future, as_completed

from lensflow.candidates import finish_candidate_catalog
from lensflow.catalog import Catalog, catalog_files, open_inputs, require_pixel
from lensflow.cluster import has_gpu_workers
from lensflow.config import ColumnMap, ScanConfig
from lensflow.cutouts import open_store
from lensflow.ensemble import check_ensemble_inputs
from lensflow.errors import ClusterError, MissingColumnError, PixelError
from lensflow.io import canonical_hash, claim_folder
from lensflow.modelling import scan_modelling
from lensflow.registry import default_manifest_path, load_manifest
from lensflow.scan.lock import acquire
from lensflow.scan.stages import (
    Failure,
    PartitionResult,
    ScanContext,
    classify_partitions,
    failure_result,
    scan_partitions,
    select_partitions,
    shared_context,
)
from lensflow.scan.state import (
    fingerprint_parts,
    prepare_scan_dir,
    read_marker,
    read_markers,
    write_manifest,
)
from lensflow.scan.tasks import chain_groups
from lensflow.scan.warm import warm_stages, warm_workers
from lensflow.sky import HealpixPixel, PlainPixel, pixel_key

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


def build_context(
    config: ScanConfig, *, forced: Sequence[HealpixPixel] = (), lock: bool = True
) -> ScanContext:
    """Check every input before any task runs: catalog, cut, region, columns, cutouts, models.

    The column map and the columns the photometry gate reads (named by the models' manifest)
    are checked against the catalog's schema, and the ensemble's and the modelling networks'
    bands, size and units against the cutout store, before the output folder is touched. Then
    the folder is locked (the context holds the lock until `run_context` ends) and claimed;
    `forced` pixels (a rerun) may have changed catalog files.
    """
    inputs = open_inputs(config)
    catalog = inputs.catalog
    manifest = load_manifest(config.models.manifest, precision=config.ensemble.precision)
    features = manifest.photometry.features
    source = config.models.manifest or default_manifest_path()
    needed_by = f"photometry model {manifest.photometry.name!r} of {source}"
    config.catalog.columns.require(features, needed_by=needed_by)
    check_mapped_columns(config.catalog.columns, catalog=catalog)
    store = open_store(config.cutouts.path)
    check_ensemble_inputs(manifest, store)
    modelling = scan_modelling(
        config.models.manifest, enabled=config.modelling.enabled, store=store
    )
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
    modelling_min_score = (
        config.modelling.min_score if config.modelling.min_score is not None else ensemble_threshold
    )
    parts = fingerprint_parts(
        config,
        catalog=catalog,
        manifest=manifest,
        store=store,
        photometry_threshold=photometry_threshold,
        ensemble_threshold=ensemble_threshold,
        region=inputs.region,
        modelling=modelling,
        modelling_min_score=modelling_min_score,
    )
    output = config.output.path
    claim_folder(output, what="scan folder (--output)")
    held = acquire(output) if lock else None
    try:
        prepare_scan_dir(
            output,
            config,
            parts,
            files=catalog_files(catalog),
            forced=[pixel_key(p) for p in forced],
        )
    except BaseException:
        if held is not None:
            held.release()
        raise
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
        modelling=modelling,
        modelling_min_score=modelling_min_score,
        lock=held,
    )


def check_mapped_columns(columns: ColumnMap, *, catalog: Catalog) -> None:
    """Refuse a column map naming a column the catalog's schema lacks, with the nearest names."""
    names = list(catalog.schema.names)
    problems = []
    for key, column in columns.mapped().items():
        if column not in names:
            close = difflib.get_close_matches(column, names, n=3, cutoff=0.6)
            hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
            problems.append(f"{key} = {column!r}{hint}")
    if problems:
        raise MissingColumnError(
            f"[catalog.columns] {'; '.join(problems)}: no such column in the schema of "
            f"{catalog.path}; it has {sorted(names)}"
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
    context = build_context(config, forced=pixels or ())
    return run_context(context, client=client, pixels=pixels, progress=progress)


def run_context(
    context: ScanContext,
    *,
    client: Client,
    pixels: Sequence[HealpixPixel] | None = None,
    progress: ProgressHook | None = None,
) -> ScanOutcome:
    """Run a scan whose inputs build_context has checked (before any cluster was started).

    The folder's lock is released however this ends; Ctrl-C (KeyboardInterrupt) cancels the
    partitions in flight, writes the manifest of those finished and re-raises, so the scan
    resumes where it stopped.
    """
    try:
        return _run_locked(context, client=client, pixels=pixels, progress=progress)
    finally:
        if context.lock is not None:
            context.lock.release()


def _run_locked(
    context: ScanContext,
    *,
    client: Client,
    pixels: Sequence[HealpixPixel] | None,
    progress: ProgressHook | None,
) -> ScanOutcome:
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
    try:
        failed, lost = _run_chains(client, context, todo, progress, limit=None)
        if lost:  # a worker death also kills its neighbours' tasks: each alone, once more
            logger.warning("%d partitions lost their worker; running them again alone", len(lost))
            failed += _run_chains(client, context, lost, None, limit=1)[0] - len(lost)
    except KeyboardInterrupt:
        write_manifest(context.output, read_markers(context.output))
        logger.warning("interrupted: finished partitions are kept; rerun the scan to resume")
        raise
    except ClusterError:
        write_manifest(context.output, read_markers(context.output))
        raise
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

    Writers name their temp files `.NAME.PID-THREAD.tmp` and remove them unless the process dies
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
    *,
    limit: int | None,
) -> tuple[int, list[HealpixPixel]]:
    """Run the partitions' chains, at most `limit` (else max_in_flight) at once.

    With a limit (the reruns of lost partitions), every partition gets a chain of its own.
    Returns how many failed and the pixels whose chain died with its worker (KilledWorker).
    """
    total = len(todo)
    if progress:
        progress(0, total, None)
    if not todo:
        return 0, []
    run = uuid.uuid4().hex[:8]  # a key per run, so a rerun never meets a finished key
    # A task's result, not scattered data: when every worker holding it has died (a poison
    # pixel kills them all), the scheduler computes it again instead of cancelling every chain.
    shared = client.submit(shared_context, context.stages(), key=f"context-{run}", pure=False)
    if limit is None:  # workers joining later (or restarted) run the plugin when they join
        plugin = warm_stages(
            context.manifest, cutouts=context.config.cutouts.path, modelling=context.modelling
        )
        logger.info("workers warmed in %.2f s", warm_workers(client, plugin))
    workers = client.scheduler_info(n_workers=-1)["workers"]
    gpu = has_gpu_workers(workers)
    resources = {"GPU": 1} if gpu else None
    if gpu:
        logger.info("GPU workers present: the ensemble step asks for GPU=1")
    threads = sum(int(w.get("nthreads", 1)) for w in workers.values())
    queue = list(reversed(chain_groups(context, todo, threads=threads, alone=limit is not None)))
    limit = limit or context.config.cluster.max_in_flight
    lost: list[HealpixPixel] = []
    group_of: dict[str, list[HealpixPixel]] = {}
    chains: dict[str, tuple[Future[Any], Future[Any]]] = {}
    running = as_completed()

    def submit(group: list[HealpixPixel]) -> None:
        first = group[0]
        more = f"+{len(group) - 1}" if len(group) > 1 else ""
        name = f"{first.order}-{first.pixel}{more}-{run}"
        plain = [PlainPixel(p.order, p.pixel) for p in group]  # workers never import hats
        if gpu:
            selected = client.submit(
                select_partitions, plain, context=shared, key=f"select-{name}", pure=False
            )
            classified = client.submit(
                classify_partitions,
                selected,
                context=shared,
                key=f"classify-{name}",
                resources=resources,
                pure=False,
            )
        else:
            selected = classified = client.submit(
                scan_partitions, plain, context=shared, key=f"scan-{name}", pure=False
            )
        group_of[classified.key] = group
        chains[classified.key] = (selected, classified)
        running.add(classified)

    for _ in range(min(limit, len(queue))):
        submit(queue.pop())
    failed = finished = 0
    try:
        for future in running:
            group = group_of.pop(future.key)
            chains.pop(future.key, None)
            try:
                results = chain_outcomes(
                    future, group, output=context.output, fingerprint=context.fingerprint
                )
            except Exception as exc:  # noqa: BLE001  KilledWorker or a crashed task: record, go on
                if client.status != "running":  # the scheduler is gone: no chain can finish
                    raise ClusterError(
                        f"lost the Dask scheduler mid-scan ({type(exc).__name__}: {exc}); "
                        "finished partitions are recorded: run the scan again to resume"
                    ) from None
                lost += group
                results = [
                    failure_result(
                        Failure(p, f"pixel {pixel_key(p)}: {type(exc).__name__}: {exc}", "worker"),
                        context=context,
                    )
                    for p in group
                ]
            finally:
                future.release()
            for result in results:
                finished += 1
                failed += not result.ok
                if progress:
                    progress(finished, total, result)
            if queue:
                submit(queue.pop())
    except KeyboardInterrupt:
        in_flight = sum(len(group) for group in group_of.values())
        logger.warning("interrupted with %d partitions in flight; cancelling", in_flight)
        client.cancel([f for chain in chains.values() for f in chain])
        raise
    return failed, lost


def chain_outcomes(
    future: Future[Any], group: list[HealpixPixel], *, output: Path, fingerprint: str
) -> list[PartitionResult]:
    """A chain's outcomes, pixel by pixel: the markers it wrote into the scan folder `output`.

    A finished chain's result stays on its worker, unfetched: its markers say the same, and
    reading them costs the driver and the workers no messages. Where one is missing or not of
    this scan's `fingerprint` (a folder the driver sees late), its result is fetched; a chain
    that failed raises its error.
    """
    if future.status == "finished":
        markers = [read_marker(output, p) for p in group]
        if all(m is not None and m.fingerprint == fingerprint for m in markers):
            return [PartitionResult(p, m) for p, m in zip(group, markers, strict=True) if m]
    outcome: list[PartitionResult] = future.result()
    return [replace(r, pixel=p) for r, p in zip(outcome, group, strict=True)]
