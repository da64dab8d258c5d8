"""The two stages of a partition's task chain.

`select_partition` reads a partition with the cut pushed down and gates it with the photometry
MLP (any worker); `classify_partition` scores the survivors' cutouts with the ensemble (a GPU
worker where there is one) and writes the candidate file, then the marker. A rerun of one pixel
is these two calls.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from hats.pixel_math.spatial_index import SPATIAL_INDEX_COLUMN

from lensflow.candidates import candidate_table, write_candidates
from lensflow.catalog import Catalog, inside_pixel, read_partition
from lensflow.config import ScanConfig
from lensflow.cutouts import partition_group, read_cutouts
from lensflow.cuts import Cut
from lensflow.ensemble import P_LENS, score_cutouts
from lensflow.errors import LensflowError
from lensflow.photometry import photometry_features, score_photometry
from lensflow.regions import Region, usable_coordinates
from lensflow.registry import ModelManifest
from lensflow.scan.lock import ScanLock
from lensflow.scan.state import Marker, write_marker
from lensflow.sky import HealpixPixel, pixel_key

logger = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class ScanContext:
    """Everything a stage needs, built once by the driver and shipped to workers once."""

    config: ScanConfig
    catalog: Catalog
    cut: Cut
    manifest: ModelManifest
    photometry_threshold: float
    ensemble_threshold: float
    fingerprint: str
    output: Path
    region: Region | None = None  # None: every partition of the catalog, every row
    lock: ScanLock | None = field(default=None, compare=False, repr=False)  # the driver's only


@dataclass(frozen=True)
class Survivors:
    """A partition's rows that passed the cuts and the photometry gate, with the funnel counts."""

    pixel: HealpixPixel
    table: pa.Table  # id, ra, dec, _healpix_29, photometry_score
    rows_read: int
    rows_after_cuts: int
    rejected: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    attempts: int = 1
    rows_in_region: int | None = None  # rows after cuts inside [sky]; None without a region


@dataclass(frozen=True)
class PartitionResult:
    """How a partition ended: its marker (done or failed)."""

    pixel: HealpixPixel
    marker: Marker

    @property
    def ok(self) -> bool:
        return self.marker.status == "done"


@dataclass(frozen=True)
class Failure:
    """A stage error that travels down the chain to the driver instead of being retried."""

    pixel: HealpixPixel
    error: str
    kind: str
    attempts: int = 1


def _with_io_retries(call: Callable[[], T], *, retries: int, pixel: HealpixPixel) -> tuple[T, int]:
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


def select_partition(pixel: HealpixPixel, *, context: ScanContext) -> Survivors | Failure:
    """Read one partition with its cut pushed down and gate it with the photometry MLP."""
    start = time.perf_counter()
    try:
        survivors, attempts = _with_io_retries(
            lambda: _select(pixel, context), retries=context.config.cluster.io_retries, pixel=pixel
        )
    except LensflowError as exc:
        return Failure(pixel, str(exc), "bad_input")
    except OSError as exc:
        return Failure(pixel, f"pixel {pixel_key(pixel)}: I/O error: {exc}", "io", attempts=1)
    seconds = {**survivors.seconds, "select": time.perf_counter() - start}
    return replace(survivors, seconds=seconds, attempts=attempts)


def _select(pixel: HealpixPixel, context: ScanContext) -> Survivors:
    columns = context.config.catalog.columns
    mapped = columns.mapped()
    feature_columns = {name: mapped[name] for name in context.manifest.photometry.features}
    read = read_partition(
        pixel,
        catalog=context.catalog,
        columns=[columns.id, columns.ra, columns.dec, *feature_columns.values()],
        cut=context.cut,
    )
    table = read.table
    rows_after_cuts = table.num_rows
    rows_in_region = None
    if context.region is not None:  # rows outside are outside the scan, not rejected
        table = context.region.filter(table, ra=columns.ra, dec=columns.dec)
        rows_in_region = table.num_rows
    rejected: dict[str, int] = {}

    ra = table[columns.ra].to_numpy(zero_copy_only=False).astype(np.float64)
    dec = table[columns.dec].to_numpy(zero_copy_only=False).astype(np.float64)
    good_coords = usable_coordinates(ra, dec)
    rejected["bad_coordinates"] = int((~good_coords).sum())
    inside = np.zeros(len(ra), dtype=bool)  # rows whose ra/dec lie outside the file's pixel
    inside[good_coords] = inside_pixel(ra[good_coords], dec[good_coords], pixel)
    rejected["outside_pixel"] = int((good_coords & ~inside).sum())
    good_coords &= inside

    values = {
        name: pc.fill_null(table[column].cast(pa.float32()), np.nan).to_numpy()
        for name, column in feature_columns.items()
    }
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
    kept_rows = pa.array(np.flatnonzero(keep))
    survivors = pa.table(
        {
            "id": table[columns.id].take(kept_rows).cast(pa.int64()),
            "ra": pa.array(ra[keep]),
            "dec": pa.array(dec[keep]),
            SPATIAL_INDEX_COLUMN: table[SPATIAL_INDEX_COLUMN].take(kept_rows),
            "photometry_score": pa.array(scores[keep]),
        }
    )
    logger.info(
        "pixel %s: %d rows, %d pass cuts, %d pass photometry",
        pixel_key(pixel),
        read.rows_read,
        rows_after_cuts,
        int(keep.sum()),
    )
    return Survivors(
        pixel=pixel,
        table=survivors,
        rows_read=read.rows_read,
        rows_after_cuts=rows_after_cuts,
        rejected={k: v for k, v in rejected.items() if v},
        rows_in_region=rows_in_region,
    )


def classify_partition(survivors: Survivors | Failure, *, context: ScanContext) -> PartitionResult:
    """Score the survivors' cutouts with the ensemble; write the candidates, then the marker."""
    if isinstance(survivors, Failure):
        return failure_result(survivors, context=context)
    start = time.perf_counter()
    try:
        marker, attempts = _with_io_retries(
            lambda: _classify(survivors, context),
            retries=context.config.cluster.io_retries,
            pixel=survivors.pixel,
        )
    except LensflowError as exc:
        return failure_result(Failure(survivors.pixel, str(exc), "bad_input"), context=context)
    except OSError as exc:
        error = f"pixel {pixel_key(survivors.pixel)}: I/O error: {exc}"
        return failure_result(Failure(survivors.pixel, error, "io"), context=context)
    seconds = {**marker.seconds, "classify": time.perf_counter() - start}
    marker = replace(marker, seconds=seconds, attempts=attempts)
    write_marker(context.output, marker)
    return PartitionResult(survivors.pixel, marker)


def _classify(survivors: Survivors, context: ScanContext) -> Marker:
    pixel = survivors.pixel
    table = survivors.table
    rejected = dict(survivors.rejected)
    group = partition_group(pixel)
    ids = table["id"].to_numpy()
    cutouts = read_cutouts(context.config.cutouts.path, group, ids) if ids.size else None
    members = [m.name for m in context.manifest.ensemble.members]
    if cutouts is None:
        found_ids, images = np.empty(0, np.int64), np.empty((0, 0, 0, 0), np.float32)
    else:
        found_ids, images = cutouts.ids, cutouts.images
        if cutouts.missing.size:
            rejected["missing_cutout"] = int(cutouts.missing.size)
    finite = np.isfinite(images).all(axis=(1, 2, 3))
    if not finite.all():
        rejected["bad_cutout"] = int((~finite).sum())
        found_ids, images = found_ids[finite], images[finite]
    scores = score_cutouts(
        images,
        manifest=context.manifest,
        batch=context.config.ensemble.batch_size,
        prior_lens_rate=context.config.ensemble.prior_lens_rate,
    )
    order = np.argsort(ids)
    rows = order[np.searchsorted(ids[order], found_ids)]
    candidates = candidate_table(
        ids=found_ids,
        ra=table["ra"].to_numpy()[rows],
        dec=table["dec"].to_numpy()[rows],
        healpix_29=table[SPATIAL_INDEX_COLUMN].to_numpy()[rows],
        photometry_score=table["photometry_score"].to_numpy()[rows],
        member_scores={m: scores[m] for m in members},
        ensemble_score=scores["ensemble"],
        model_versions=context.manifest.versions(),
        fingerprint=context.fingerprint,
        p_lens=scores.get(P_LENS),
    )
    path, digest = write_candidates(candidates, root=context.output, pixel=pixel)
    above = int((scores["ensemble"] >= context.ensemble_threshold).sum())
    logger.info(
        "pixel %s: %d cutouts scored, %d above threshold", pixel_key(pixel), len(found_ids), above
    )
    return Marker(
        pixel=pixel_key(pixel),
        status="done",
        rows_read=survivors.rows_read,
        rows_after_cuts=survivors.rows_after_cuts,
        rows_in_region=survivors.rows_in_region,
        rows_after_photometry=survivors.table.num_rows,
        candidates=above,
        rejected=rejected,
        seconds=dict(survivors.seconds),
        attempts=survivors.attempts,
        output=str(path.relative_to(context.output)),
        sha256=digest,
        fingerprint=context.fingerprint,
        worker=_worker_address(),
    )


def _worker_address() -> str | None:
    """The address of the Dask worker running this task, None outside a worker."""
    from distributed import get_worker

    try:
        return str(get_worker().address)
    except ValueError:
        return None


def failure_result(failure: Failure, *, context: ScanContext) -> PartitionResult:
    """Record a failed partition's marker; the scan goes on with the rest."""
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
