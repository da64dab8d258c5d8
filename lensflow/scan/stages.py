"""The two stages of a partition's task chain.

`select_partition` reads a partition with the cut pushed down and gates it with the photometry
MLP (any worker); `classify_partition` scores the survivors' cutouts with the ensemble (a GPU
worker where there is one), models the lenses of those scoring at least the modelling
min_score (when the scan runs the modelling networks) and writes the candidate file, then the
marker. A rerun of one pixel
is these two calls; `select_partitions` and `classify_partitions` run several small partitions
in one task, each with its own outcome and marker; `scan_partitions` runs both stages in one
task where no GPU worker waits for the second.

The driver ships a `StageContext` to the workers, not the `ScanContext` it built: the catalog as
a handle, the cut as its compiled expression, the models by path and sha256 (the manifest). A
worker importing this module imports neither hats nor matplotlib, pandas or the cut grammar.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lensflow.candidates import candidate_table, write_candidates
from lensflow.catalog import CatalogHandle, RowFilter, dataset_name, read_partition
from lensflow.cutouts import partition_group
from lensflow.ensemble import ENSEMBLE, P_LENS
from lensflow.errors import LensflowError
from lensflow.layout import leaf_path
from lensflow.photometry import photometry_features, score_photometry
from lensflow.scan.blocks import score_survivors
from lensflow.scan.state import Marker, file_fingerprint, write_marker
from lensflow.sky import (
    SPATIAL_INDEX_COLUMN,
    PixelLike,
    inside_pixel,
    pixel_key,
    usable_coordinates,
)

if TYPE_CHECKING:
    from lensflow.catalog import Catalog
    from lensflow.config import ScanConfig
    from lensflow.cuts import Cut
    from lensflow.modelling import ModellingModels
    from lensflow.regions import Region
    from lensflow.registry import ModelManifest
    from lensflow.scan.lock import ScanLock

logger = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class StageContext:
    """What a partition's tasks need, shipped to each worker once: small, and free of hats.

    `features` pairs each photometry feature (the model's order) with its catalog column;
    `modelling` (None: not run; its files by path and sha256, without training records) models
    the candidates whose ensemble score is at least `modelling_min_score`.
    """

    catalog: CatalogHandle
    id_column: str
    ra_column: str
    dec_column: str
    features: tuple[tuple[str, str], ...]
    row_filter: RowFilter
    manifest: ModelManifest
    photometry_threshold: float
    ensemble_threshold: float
    fingerprint: str
    output: Path
    cutouts: Path
    io_retries: int
    batch_size: int
    gpu_batch_size: int
    prior_lens_rate: float
    region: Region | None = None
    modelling: ModellingModels | None = None
    modelling_min_score: float = 0.5

    @property
    def read_columns(self) -> list[str]:
        """The catalog columns a partition's read decodes (besides the cut's)."""
        return [self.id_column, self.ra_column, self.dec_column, *(c for _, c in self.features)]


@dataclass(frozen=True)
class ScanContext:
    """Everything the driver checked before a scan: config, catalog, cut, models, thresholds.

    Tasks get `stages` of it (a StageContext); a stage called with a ScanContext (a rerun of one
    pixel, a test) makes that itself.
    """

    config: ScanConfig
    catalog: Catalog
    cut: Cut
    manifest: ModelManifest
    photometry_threshold: float
    ensemble_threshold: float
    fingerprint: str
    output: Path
    region: Region | None = None  # None: every partition of the catalog, every row
    modelling: ModellingModels | None = None  # None: the lens-modelling networks are not run
    modelling_min_score: float = 0.5
    lock: ScanLock | None = field(default=None, compare=False, repr=False)  # the driver's only

    def stages(self) -> StageContext:
        """The part of this context a partition's tasks need."""
        columns = self.config.catalog.columns
        mapped = columns.mapped()
        features = tuple((name, mapped[name]) for name in self.manifest.photometry.features)
        read = [columns.id, columns.ra, columns.dec, *(c for _, c in features), *self.cut.columns]
        return StageContext(
            catalog=self.catalog.handle(read),
            id_column=columns.id,
            ra_column=columns.ra,
            dec_column=columns.dec,
            features=features,
            row_filter=RowFilter.of(self.cut),
            manifest=self.manifest.for_inference(),
            photometry_threshold=self.photometry_threshold,
            ensemble_threshold=self.ensemble_threshold,
            fingerprint=self.fingerprint,
            output=self.output,
            cutouts=self.config.cutouts.path,
            io_retries=self.config.cluster.io_retries,
            batch_size=self.config.ensemble.batch_size,
            gpu_batch_size=self.config.ensemble.gpu_batch_size,
            prior_lens_rate=self.config.ensemble.prior_lens_rate,
            region=self.region,
            modelling=None if self.modelling is None else self.modelling.for_inference(),
            modelling_min_score=self.modelling_min_score,
        )


AnyContext = ScanContext | StageContext


def shared_context(context: StageContext) -> StageContext:
    """The tasks' context as a task result every chain depends on (a task of this module, so
    a worker computing it imports the stages, never the driver)."""
    return context


def _stage(context: AnyContext) -> StageContext:
    return context.stages() if isinstance(context, ScanContext) else context


@dataclass(frozen=True)
class Survivors:
    """A partition's rows that passed the cuts and the photometry gate, with the funnel counts."""

    pixel: PixelLike
    table: pa.Table  # id, ra, dec, _healpix_29, photometry_score
    rows_read: int
    rows_after_cuts: int
    rejected: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    attempts: int = 1
    rows_in_region: int | None = None  # rows after cuts inside [sky]; None without a region
    files: dict[str, str] = field(default_factory=dict)  # catalog files read -> their digests


@dataclass(frozen=True)
class PartitionResult:
    """How a partition ended: its marker (done or failed)."""

    pixel: PixelLike
    marker: Marker

    @property
    def ok(self) -> bool:
        return self.marker.status == "done"


@dataclass(frozen=True)
class Failure:
    """A stage error that travels down the chain to the driver instead of being retried."""

    pixel: PixelLike
    error: str
    kind: str
    attempts: int = 1


def _with_io_retries(call: Callable[[], T], *, retries: int, pixel: PixelLike) -> tuple[T, int]:
    """Run a stage, retrying I/O errors (transient reads) but never bad input."""
    attempt = 0
    while True:
        attempt += 1
        try:
            return call(), attempt
        except LensflowError:
            raise
        except OSError as exc:
            if attempt > retries:
                raise
            logger.warning("pixel %s: I/O error (%s), retry %d", pixel_key(pixel), exc, attempt)
            time.sleep(min(2.0**attempt * 0.1, 5.0))


def select_partitions(
    pixels: Sequence[PixelLike], *, context: AnyContext
) -> list[Survivors | Failure]:
    """select_partition for each of several (small) partitions, in one task."""
    stage = _stage(context)
    return [select_partition(pixel, context=stage) for pixel in pixels]


def classify_partitions(
    selected: Sequence[Survivors | Failure], *, context: AnyContext
) -> list[PartitionResult]:
    """classify_partition for each partition of a select_partitions task, in one task."""
    stage = _stage(context)
    return [classify_partition(survivors, context=stage) for survivors in selected]


def scan_partitions(pixels: Sequence[PixelLike], *, context: AnyContext) -> list[PartitionResult]:
    """Both stages of several partitions in one task (a cluster without GPU workers)."""
    stage = _stage(context)
    return classify_partitions(select_partitions(pixels, context=stage), context=stage)


def select_partition(pixel: PixelLike, *, context: AnyContext) -> Survivors | Failure:
    """Read one partition with its cut pushed down and gate it with the photometry MLP."""
    start = time.perf_counter()
    stage = _stage(context)
    try:
        survivors, attempts = _with_io_retries(
            lambda: _select(pixel, stage), retries=stage.io_retries, pixel=pixel
        )
    except LensflowError as exc:
        return Failure(pixel, str(exc), "bad_input")
    except OSError as exc:
        return Failure(pixel, f"pixel {pixel_key(pixel)}: I/O error: {exc}", "io", attempts=1)
    seconds = {**survivors.seconds, "select": time.perf_counter() - start}
    return replace(survivors, seconds=seconds, attempts=attempts)


def _select(pixel: PixelLike, context: StageContext) -> Survivors:
    start = time.perf_counter()
    read = read_partition(
        pixel, catalog=context.catalog, columns=context.read_columns, cut=context.row_filter
    )
    # What the marker says this partition read, so that a resume knows a changed file by its
    # content; each task digests its own files, the driver none (lensflow.scan.state).
    files = {dataset_name(context.catalog, f): file_fingerprint(f) for f in read.files}
    read_seconds = time.perf_counter() - start
    table = read.table
    rows_after_cuts = table.num_rows
    rows_in_region = None
    if context.region is not None:  # rows outside are outside the scan, not rejected
        table = context.region.filter(table, ra=context.ra_column, dec=context.dec_column)
        rows_in_region = table.num_rows
    rejected: dict[str, int] = {}
    if table.num_rows:
        survivors = _gate(pixel, table, context, rejected)
    else:  # nothing passed the cut: no gate to run
        survivors = _survivor_table(table, context, np.zeros(0, bool), np.empty(0), np.empty(0))
    logger.info(
        "pixel %s: %d rows, %d pass cuts, %d pass photometry",
        pixel_key(pixel),
        read.rows_read,
        rows_after_cuts,
        survivors.num_rows,
    )
    seconds = {"read": read_seconds, "gate": time.perf_counter() - start - read_seconds}
    return Survivors(
        pixel=pixel,
        table=survivors,
        rows_read=read.rows_read,
        rows_after_cuts=rows_after_cuts,
        rejected={k: v for k, v in rejected.items() if v},
        seconds=seconds,
        rows_in_region=rows_in_region,
        files=files,
    )


def _gate(
    pixel: PixelLike, table: pa.Table, context: StageContext, rejected: dict[str, int]
) -> pa.Table:
    """Count unusable rows by reason (into `rejected`) and keep those the photometry MLP passes."""
    ra = table[context.ra_column].to_numpy(zero_copy_only=False).astype(np.float64)
    dec = table[context.dec_column].to_numpy(zero_copy_only=False).astype(np.float64)
    good_coords = usable_coordinates(ra, dec)
    rejected["bad_coordinates"] = int((~good_coords).sum())
    inside = np.zeros(len(ra), dtype=bool)  # rows whose ra/dec lie outside the file's pixel
    inside[good_coords] = inside_pixel(ra[good_coords], dec[good_coords], pixel)
    rejected["outside_pixel"] = int((good_coords & ~inside).sum())
    good_coords &= inside

    values = {name: feature_values(table[column]) for name, column in context.features}
    names = context.manifest.photometry.features
    features = photometry_features(values, names)
    finite = np.isfinite(features)
    usable = good_coords & finite.all(axis=1)
    magnitudes = np.array([name.startswith(("mag_", "magerr_", "psfmag_")) for name in names])
    magnitude_ok = finite[:, magnitudes].all(axis=1)
    rejected["missing_magnitude"] = int((good_coords & ~magnitude_ok).sum())
    rejected["missing_morphology"] = int((good_coords & magnitude_ok & ~usable).sum())

    scores = np.full(table.num_rows, np.nan, dtype=np.float32)
    if usable.any():
        scores[usable] = score_photometry(features[usable], manifest=context.manifest)
    keep = usable & (scores >= context.photometry_threshold)
    return _survivor_table(table, context, keep, ra, dec, scores)


def feature_values(column: pa.ChunkedArray) -> np.ndarray:
    """A catalog column as the gate's float32 (N,), NaN where null.

    Numbers go through numpy (nulls become NaN on the way), several times faster than a
    pyarrow cast and fill per column; other types are cast by pyarrow.
    """
    if pa.types.is_floating(column.type) or pa.types.is_integer(column.type):
        return np.asarray(column.to_numpy(), dtype=np.float32)
    filled: np.ndarray = pc.fill_null(column.cast(pa.float32()), np.nan).to_numpy()
    return filled


def _survivor_table(
    table: pa.Table,
    context: StageContext,
    keep: np.ndarray,
    ra: np.ndarray,
    dec: np.ndarray,
    scores: np.ndarray | None = None,
) -> pa.Table:
    """id, ra, dec, _healpix_29, photometry_score of the rows kept (bool (N,))."""
    kept_rows = pa.array(np.flatnonzero(keep), pa.int64())
    score = np.empty(0, np.float32) if scores is None else scores[keep]
    return pa.table(
        {
            "id": table[context.id_column].take(kept_rows).cast(pa.int64()),
            "ra": pa.array(ra[keep], pa.float64()),
            "dec": pa.array(dec[keep], pa.float64()),
            SPATIAL_INDEX_COLUMN: table[SPATIAL_INDEX_COLUMN].take(kept_rows),
            "photometry_score": pa.array(score, pa.float32()),
        }
    )


def classify_partition(survivors: Survivors | Failure, *, context: AnyContext) -> PartitionResult:
    """Score the survivors' cutouts with the ensemble; write the candidates, then the marker."""
    stage = _stage(context)
    if isinstance(survivors, Failure):
        return failure_result(survivors, context=stage)
    start = time.perf_counter()
    try:
        marker, attempts = _with_io_retries(
            lambda: _classify(survivors, stage),
            retries=stage.io_retries,
            pixel=survivors.pixel,
        )
    except LensflowError as exc:
        return failure_result(Failure(survivors.pixel, str(exc), "bad_input"), context=stage)
    except OSError as exc:
        error = f"pixel {pixel_key(survivors.pixel)}: I/O error: {exc}"
        return failure_result(Failure(survivors.pixel, error, "io"), context=stage)
    seconds = {**marker.seconds, "classify": time.perf_counter() - start}
    marker = replace(marker, seconds=seconds, attempts=attempts)
    write_marker(stage.output, marker)
    return PartitionResult(survivors.pixel, marker)


def _classify(survivors: Survivors, context: StageContext) -> Marker:
    pixel = survivors.pixel
    table = survivors.table
    ids = table["id"].to_numpy()
    members = [m.name for m in context.manifest.ensemble.members]
    scored = score_survivors(ids, group=partition_group(pixel), context=context)
    rejected = {**survivors.rejected, **scored.rejected}
    found_ids, scores = scored.ids, scored.scores
    modelled = time.perf_counter()
    order = np.argsort(ids)
    rows = order[np.searchsorted(ids[order], found_ids)]
    candidates = candidate_table(
        ids=found_ids,
        ra=table["ra"].to_numpy()[rows],
        dec=table["dec"].to_numpy()[rows],
        healpix_29=table[SPATIAL_INDEX_COLUMN].to_numpy()[rows],
        photometry_score=table["photometry_score"].to_numpy()[rows],
        member_scores={m: scores[m] for m in members},
        ensemble_score=scores[ENSEMBLE],
        model_versions=context.manifest.versions(),
        fingerprint=context.fingerprint,
        p_lens=scores.get(P_LENS),
        lens_model=scored.lens_model,
    )
    path, digest = write_candidates(candidates, root=context.output, pixel=pixel)
    above = int((scores[ENSEMBLE] >= context.ensemble_threshold).sum())
    logger.info(
        "pixel %s: %d cutouts scored, %d above threshold", pixel_key(pixel), len(found_ids), above
    )
    seconds = {**survivors.seconds, **scored.seconds, "write": time.perf_counter() - modelled}
    return Marker(
        pixel=pixel_key(pixel),
        status="done",
        rows_read=survivors.rows_read,
        rows_after_cuts=survivors.rows_after_cuts,
        rows_in_region=survivors.rows_in_region,
        rows_after_photometry=survivors.table.num_rows,
        candidates=above,
        rejected=rejected,
        seconds=seconds,
        attempts=survivors.attempts,
        output=str(path.relative_to(context.output)),
        sha256=digest,
        fingerprint=context.fingerprint,
        worker=_worker_address(),
        files=survivors.files,
    )


def _worker_address() -> str | None:
    """The address of the Dask worker running this task, None outside a worker."""
    from distributed import get_worker

    try:
        return str(get_worker().address)
    except ValueError:
        return None


def failure_result(failure: Failure, *, context: AnyContext) -> PartitionResult:
    """Record a failed partition's marker; the scan goes on with the rest.

    A candidate file of an earlier run of the partition (a forced rerun that failed) is removed
    with its done marker, so that the candidate catalog holds only done partitions.
    """
    stale = leaf_path(context.output, failure.pixel)
    try:
        stale.unlink(missing_ok=True)
    except OSError as exc:  # a read-only folder: the marker still says failed
        logger.warning("pixel %s: could not remove %s (%s)", pixel_key(failure.pixel), stale, exc)
    marker = Marker(
        pixel=pixel_key(failure.pixel),
        status="failed",
        error=failure.error,
        error_kind=failure.kind,
        attempts=failure.attempts,
        fingerprint=context.fingerprint,
    )
    write_marker(context.output, marker)
    logger.error("pixel %s failed: %s", pixel_key(failure.pixel), failure.error)
    return PartitionResult(failure.pixel, marker)
