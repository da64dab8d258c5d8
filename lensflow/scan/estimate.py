"""`lensflow plan --estimate`: the funnel, wall time and core-hours of a whole scan, beforehand.

Rows per partition come from the Parquet footers (no data read). A calibration then runs
partitions through every stage on the configured cluster, into a scratch folder beside the
scan's output that is removed afterwards, three times: a few partitions chosen to span the row
counts (cold: it pays what a scan pays once, imports and ONNX sessions on fresh workers and
the context reaching them), the same again (warm), and the smallest partitions (warm: their
wall time beyond their stages, against the second run's, gives the cost of one more partition
that no stage timer sees: scheduling, markers, the manifest). Each stage's seconds are fitted as
a + b x (x: rows read for the select stage, survivors for the classify stage) and the funnel's
pass fractions pooled; every partition's expected time is laid onto the cluster's cores in the
order the scan submits them. Wall time = build (inputs checked) + start-up + that makespan +
partitions x the per-partition cost.
"""

from __future__ import annotations

import contextlib
import heapq
import shutil
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from distributed import Client

from lensflow.catalog import open_inputs
from lensflow.config import ScanConfig
from lensflow.errors import CatalogError
from lensflow.scan.plan import PlanRow, plan_inputs
from lensflow.scan.run import build_context, run_context
from lensflow.scan.state import Marker, read_markers
from lensflow.sky import HealpixPixel, pixel_key

CALIBRATION_PARTITIONS = 4
SMALL_PARTITIONS = (16, 256)
"""The smallest partitions' run: a tenth of the catalog's partitions, within these bounds; the
more partitions it has beyond the spanning run's, the closer its per-partition cost."""
SCRATCH_PREFIX = ".lensflow-estimate-"


@dataclass(frozen=True)
class Fit:
    """Seconds = intercept + slope * x (both >= 0) for one stage of one partition."""

    intercept: float
    slope: float

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.intercept + self.slope * np.asarray(x, dtype=np.float64)


@dataclass(frozen=True)
class CalibrationRun:
    """One calibration run: its wall time and each partition's funnel and stage seconds."""

    seconds: float
    pixels: tuple[str, ...]
    rows_read: tuple[int, ...]
    rows_scanned: tuple[int, ...]  # after cuts (inside [sky] where there is one)
    rows_after_photometry: tuple[int, ...]
    candidates: tuple[int, ...]
    select_seconds: tuple[float, ...]
    classify_seconds: tuple[float, ...]

    @classmethod
    def of(cls, seconds: float, markers: Sequence[Marker]) -> CalibrationRun:
        """A run's record from its wall time and its partitions' markers."""
        return cls(
            seconds=seconds,
            pixels=tuple(m.pixel for m in markers),
            rows_read=tuple(m.rows_read for m in markers),
            rows_scanned=tuple(
                m.rows_after_cuts if m.rows_in_region is None else m.rows_in_region for m in markers
            ),
            rows_after_photometry=tuple(m.rows_after_photometry for m in markers),
            candidates=tuple(m.candidates for m in markers),
            select_seconds=tuple(float(m.seconds.get("select", 0.0)) for m in markers),
            classify_seconds=tuple(float(m.seconds.get("classify", 0.0)) for m in markers),
        )

    @property
    def stage_seconds(self) -> list[float]:
        """Each partition's select + classify seconds."""
        return [s + c for s, c in zip(self.select_seconds, self.classify_seconds, strict=True)]

    def overhead(self, *, cores: int) -> float:
        """Seconds of the run beyond its stages' makespan on `cores`."""
        return self.seconds - makespan(self.stage_seconds, cores=cores)


@dataclass(frozen=True)
class Calibration:
    """The three calibration runs, and the time to check the inputs and to start the cluster."""

    first: CalibrationRun  # spanning partitions, cold
    second: CalibrationRun  # the same, warm
    small: CalibrationRun  # the smallest partitions, warm
    build_seconds: float
    cluster_start_seconds: float

    def pooled(self) -> CalibrationRun:
        """The warm runs' partitions, each once (the second run's where both ran it)."""
        seen = set(self.second.pixels)
        extra = [i for i, p in enumerate(self.small.pixels) if p not in seen]

        def join(field: str) -> tuple[Any, ...]:
            return (*getattr(self.second, field), *(getattr(self.small, field)[i] for i in extra))

        names = [f for f in CalibrationRun.__dataclass_fields__ if f != "seconds"]
        return CalibrationRun(self.second.seconds, **{f: join(f) for f in names})


@dataclass(frozen=True)
class Estimate:
    """The expected funnel, time and cost of the whole scan (counts rounded to whole rows)."""

    partitions: int
    rows_read: int
    rows_after_cuts: int
    rows_after_photometry: int
    candidates: int
    wall_seconds: float  # on a started cluster: build + start-up + stages + per partition
    start_seconds: float  # what the scan pays once
    partition_seconds: float  # wall time each partition adds beyond its stages
    stage_seconds: float  # summed over partitions: select + classify
    cluster_start_seconds: float  # starting (or joining) the cluster, measured
    cores: int
    gpus: int
    calibration: Calibration

    @property
    def core_hours(self) -> float:
        """Cores held for the scan's wall time."""
        return self.cores * self.wall_seconds / 3600

    @property
    def stage_core_hours(self) -> float:
        """Core time spent inside the stages."""
        return self.stage_seconds / 3600

    @property
    def gpu_hours(self) -> float | None:
        """GPUs held for the scan's wall time; None without GPU workers."""
        return self.gpus * self.wall_seconds / 3600 if self.gpus else None

    def summary(self) -> list[tuple[str, str]]:
        """(quantity, value) lines of the estimate, for a table."""

        def share(n: int, of: int) -> str:
            return f"{n:,} ({n / of:.2%})" if of else f"{n:,}"

        def duration(seconds: float) -> str:
            if seconds < 120:
                return f"{seconds:.1f} s"
            return f"{seconds / 3600:.2f} h" if seconds >= 7200 else f"{seconds / 60:.1f} min"

        c = self.calibration
        runs = " / ".join(f"{r.seconds:.1f}" for r in (c.first, c.second, c.small))
        return [
            ("partitions", f"{self.partitions:,}"),
            ("rows read", f"{self.rows_read:,}"),
            ("after cuts", share(self.rows_after_cuts, self.rows_read)),
            ("after photometry", share(self.rows_after_photometry, self.rows_after_cuts)),
            ("candidates", share(self.candidates, self.rows_after_photometry)),
            ("wall time (cluster started)", duration(self.wall_seconds)),
            ("  of it start-up, once", duration(self.start_seconds)),
            ("  of it per partition", f"{self.partition_seconds * 1e3:.1f} ms"),
            ("cluster start (measured)", duration(self.cluster_start_seconds)),
            (f"core-hours ({self.cores} cores x wall)", f"{self.core_hours:.3g}"),
            ("core-hours in the stages", f"{self.stage_core_hours:.3g}"),
            ("GPU-hours", "-" if self.gpu_hours is None else f"{self.gpu_hours:.3g}"),
            (
                "calibration",
                f"{len(c.first.pixels)} + {len(c.small.pixels)} partitions, runs {runs} s",
            ),
        ]

    def as_dict(self) -> dict[str, Any]:
        """Plain values for `--json`."""
        values = asdict(self)
        values.update(
            core_hours=self.core_hours,
            stage_core_hours=self.stage_core_hours,
            gpu_hours=self.gpu_hours,
        )
        return values


def partition_rows(config: ScanConfig) -> list[PlanRow]:
    """Rows of each partition a scan of `config` reads, from the footers; unreadable refused."""
    rows = plan_inputs(open_inputs(config))
    broken = [r for r in rows if r.error is not None]
    if broken:
        raise CatalogError(
            f"{len(broken)} of {len(rows)} partitions unreadable, first {broken[0].error}; "
            "`lensflow plan` lists them: fix or restore their files before estimating"
        )
    return rows


def calibration_pixels(rows: Sequence[PlanRow], *, count: int) -> list[HealpixPixel]:
    """`count` partitions spanning the row counts: the smallest, the largest, evenly between."""
    ranked = sorted(rows, key=lambda r: (r.rows, r.pixel.order, r.pixel.pixel))
    if not ranked:
        return []
    picks = np.unique(np.round(np.linspace(0, len(ranked) - 1, min(count, len(ranked)))))
    chosen = {ranked[int(i)].pixel for i in picks}
    return [r.pixel for r in rows if r.pixel in chosen]  # in the scan's own order


def fit_stage(x: Sequence[float], seconds: Sequence[float]) -> Fit:
    """Least squares seconds ~ a + b x with a, b >= 0 (a constant, or through 0, as needed)."""
    xs, ts = np.asarray(x, dtype=np.float64), np.asarray(seconds, dtype=np.float64)
    if ts.size == 0:
        return Fit(0.0, 0.0)
    if np.unique(xs).size < 2:
        return Fit(float(ts.mean()), 0.0)
    slope, intercept = np.polyfit(xs, ts, 1)
    if slope < 0:
        return Fit(float(ts.mean()), 0.0)
    if intercept < 0:
        return Fit(0.0, float((xs @ ts) / (xs @ xs)))
    return Fit(float(intercept), float(slope))


def makespan(seconds: Sequence[float], *, cores: int) -> float:
    """Wall time of tasks taken in order by `cores` slots, each by the first slot free (a scan
    submits its tasks largest first: give them in that order)."""
    slots = [0.0] * max(1, cores)
    for t in seconds:
        heapq.heappush(slots, heapq.heappop(slots) + t)
    return max(slots)


def _fraction(numerator: Sequence[int], denominator: Sequence[int]) -> float:
    below = sum(denominator)
    return sum(numerator) / below if below else 0.0


def estimate(
    rows: Sequence[PlanRow], calibration: Calibration, *, cores: int, gpus: int = 0
) -> Estimate:
    """The whole scan's funnel and time from the partitions' rows and a calibration."""
    c, warm, small = calibration.pooled(), calibration.second, calibration.small
    read = np.array([r.rows for r in rows], dtype=np.float64)
    scanned = read * _fraction(c.rows_scanned, c.rows_read)
    survivors = scanned * _fraction(c.rows_after_photometry, c.rows_scanned)
    candidates = survivors * _fraction(c.candidates, c.rows_after_photometry)
    select = fit_stage(c.rows_read, c.select_seconds)
    classify = fit_stage(c.rows_after_photometry, c.classify_seconds)
    per_partition = select(read) + classify(survivors)
    k, m = len(warm.pixels), len(small.pixels)
    extra = 0.0
    if m > k:
        extra = (small.overhead(cores=cores) - warm.overhead(cores=cores)) / (m - k)
        extra = max(0.0, extra)
    fixed = max(0.0, warm.overhead(cores=cores) - k * extra)
    start = max(0.0, calibration.first.seconds - warm.seconds) + fixed
    stages = makespan(sorted(per_partition.tolist(), reverse=True), cores=cores)  # largest first
    wall = calibration.build_seconds + start + stages + len(rows) * extra
    return Estimate(
        partitions=len(rows),
        rows_read=int(read.sum()),
        rows_after_cuts=round(float(scanned.sum())),
        rows_after_photometry=round(float(survivors.sum())),
        candidates=round(float(candidates.sum())),
        wall_seconds=wall,
        start_seconds=start,
        partition_seconds=extra,
        stage_seconds=float(per_partition.sum()),
        cluster_start_seconds=calibration.cluster_start_seconds,
        cores=cores,
        gpus=gpus,
        calibration=calibration,
    )


@contextmanager
def scratch_folder(config: ScanConfig) -> Iterator[Path]:
    """A fresh folder beside the scan's output (where workers can write), removed on exit."""
    parent = config.output.path.parent
    created = [p for p in (parent, *parent.parents) if not p.exists()]  # ours to remove
    folder = parent / f"{SCRATCH_PREFIX}{uuid.uuid4().hex[:12]}"
    folder.mkdir(parents=True)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        for made in created:  # innermost first; left alone if something else wrote there
            with contextlib.suppress(OSError):
                made.rmdir()


def _in(config: ScanConfig, output: Path) -> ScanConfig:
    return config.model_copy(update={"output": config.output.model_copy(update={"path": output})})


def _markers(folder: Path, pixels: Sequence[HealpixPixel]) -> list[Marker]:
    by_key = {m.pixel: m for m in read_markers(folder)}
    markers = [by_key.get(pixel_key(p)) for p in pixels]
    failed = [m for m in markers if m is None or m.status != "done"]
    if failed:
        first = failed[0]
        reason = "no marker" if first is None else first.error
        raise CatalogError(
            f"calibration: {len(failed)} of {len(pixels)} partitions failed ({reason}); "
            "`lensflow scan` would fail there too: fix the input first"
        )
    return [m for m in markers if m is not None]


def _cluster_resources(client: Client) -> tuple[int, int]:
    workers = client.scheduler_info(n_workers=-1)["workers"].values()
    cores = sum(int(w.get("nthreads", 1)) for w in workers)
    gpus = sum(int(w.get("resources", {}).get("GPU", 0)) for w in workers)
    return max(1, cores), gpus


def estimate_scan(
    config: ScanConfig,
    *,
    connect: Callable[[], AbstractContextManager[Client]],
    count: int = CALIBRATION_PARTITIONS,
    small: int | None = None,
) -> Estimate:
    """Estimate a scan of `config`: footers, then a calibration on the cluster `connect` gives.

    `count` partitions span the row counts, `small` are the smallest (default: a tenth of the
    partitions, within SMALL_PARTITIONS). Every input is checked
    (as `lensflow scan` checks it) before the cluster is started; the calibration's scratch
    folder is removed however this ends.
    """
    rows = partition_rows(config)
    spanning = calibration_pixels(rows, count=count)
    if small is None:
        low, high = SMALL_PARTITIONS
        small = max(low, min(high, len(rows) // 10))
    smallest = [r.pixel for r in sorted(rows, key=lambda r: r.rows)[:small]]
    runs = (("first", spanning), ("second", spanning), ("small", smallest))
    with scratch_folder(config) as scratch:
        started = time.perf_counter()
        contexts = [build_context(_in(config, scratch / name), forced=px) for name, px in runs]
        build = (time.perf_counter() - started) / len(runs)
        seconds = []
        try:
            started = time.perf_counter()
            with connect() as client:
                cluster_start = time.perf_counter() - started
                cores, gpus = _cluster_resources(client)
                for context, (_, pixels) in zip(contexts, runs, strict=True):
                    started = time.perf_counter()
                    run_context(context, client=client, pixels=pixels)
                    seconds.append(time.perf_counter() - started)
        finally:
            for context in contexts:
                if context.lock is not None:
                    context.lock.release()
        first, second, third = (
            CalibrationRun.of(s, _markers(scratch / name, pixels))
            for s, (name, pixels) in zip(seconds, runs, strict=True)
        )
    calibration = Calibration(first, second, third, build, cluster_start)
    return estimate(rows, calibration, cores=cores, gpus=gpus)
