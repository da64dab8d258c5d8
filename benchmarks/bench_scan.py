"""End to end: `run_scan` on a local Dask cluster against the composed bare pipeline.

lensflow: `run_scan` on a cluster from lensflow.cluster's starter (2 one-thread worker
processes), started once, each round into a fresh output folder. Bare: the same work with the
bare libraries in as many one-thread processes (a process pool, started once), the partitions
shared out largest first: for each partition a pyarrow read of the same columns with the same
cut, the photometry features and the ONNX gate, zarr slab reads of the survivors' cutouts, the
ONNX members and one Parquet file of scored rows, with ONNX Runtime and Zarr set up as
lensflow's workers set them up (one intra-op thread, no spinning; one Zarr read thread per
process). The funnel counts (rows read, after cuts, after photometry, candidates) must be
identical. Interleaved (benchmarks.common).

A third pipeline says where lensflow's time goes: lensflow's own stage functions
(`scan_partitions`: its checks, digests, atomic writes and markers) run in the bare
pipeline's processes, dealt the same way, without Dask; it is interleaved with the bare
pipeline again. Its ratio is the stages' cost; the rest of run_scan's is the driver and Dask.

Skies (benchmarks.skies): 30k, 150k (the demo's), 300k and 1 M sources as simulated (~30
partitions), with the demo's rows per partition (-1: ~5,400 rows each, so the partitions grow
in number with the sky, as hats-import's threshold makes them) and re-partitioned into ~3,000.
Where a size has not been simulated, its tiled copy of the demo sky (`python -m
benchmarks.skies N --tiled --partitions 30 56 187 3000`) stands in, labelled as such; a size
with neither is skipped and listed.

    python -m benchmarks.bench_scan [--sources 150000 ...] [--partitions 0 -1 3000] [--rounds 11]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import uuid
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pyarrow as pa
import pyarrow.parquet as pq
import zarr
from distributed import Client
from hats.pixel_math.spatial_index import SPATIAL_INDEX_COLUMN

from benchmarks.common import (
    CONVENTION,
    MIN_ROUNDS,
    RESULTS,
    Interleaved,
    interleave,
    machine,
    record,
    write_result,
)
from benchmarks.skies import DEMO_SOURCES, SKIES, sky_folder
from lensflow.catalog import READ_BATCH_ROWS, open_catalog, partition_files
from lensflow.cluster import connect
from lensflow.config import ClusterConfig, ModellingConfig, ScanConfig
from lensflow.cutouts import CHUNK_CUTOUTS, partition_group
from lensflow.cuts import parse_cuts
from lensflow.ensemble import DEFAULT_BATCH, ensemble_score
from lensflow.photometry import PHOTOMETRY_BATCH
from lensflow.registry import ModelManifest, load_manifest
from lensflow.scan import run_scan
from lensflow.scan.stages import scan_partitions
from lensflow.scan.state import funnel_totals, read_markers
from lensflow.sky import PlainPixel

SOURCES = (30_000, 150_000, 300_000, 1_000_000)
DEMO_SIZED = -1  # as many partitions as hold the demo's rows per partition
PARTITIONS = (0, DEMO_SIZED, 3_000)  # 0: the sky as simulated (~30 partitions)
NATURAL = 30  # partitions of a tiled sky standing in for a simulated one
DEMO_PARTITIONS = 28  # the demo sky's: 150,000 sources, ~5,360 rows per partition
ABOVE = "above 1: noise, or the bare pipeline's static split of the partitions"
NOTE = (
    "Above 1: the bare pipeline shares the partitions out to its processes before it starts "
    "(largest first, to the least loaded), while lensflow's scheduler hands each free worker "
    "the next task; with few partitions of unequal cost the static split can leave one "
    "process finishing alone."
)
STAGES = (
    "stages without Dask: lensflow's stage functions (scan_partitions: the read with its schema "
    "and pixel checks, the input files' digests, the gate, the cutouts, the members, the "
    "candidate file and the marker, each written temp + fsync + rename + folder fsync) in the "
    "bare pipeline's processes, dealt as the bare pipeline deals, interleaved with it again. "
    "What run_scan loses beyond that ratio is the driver (checks, manifest, HATS metadata) "
    "and Dask (scheduling, the scheduler and client on the same cores)."
)
WORKERS = 2
ROUNDS = 11  # a scan of a few seconds on a shared 2-core machine varies by +-10 % between runs
FUNNEL = ("rows_read", "rows_after_cuts", "rows_after_photometry", "candidates")


@dataclass(frozen=True)
class SkyResult:
    """One sky's interleaved timings and its funnel (identical for both pipelines)."""

    sources: int
    partitions: int
    kind: str  # "simulated", "demo" or "tiled"
    timing: Interleaved
    funnel: tuple[int, ...]
    cores: int
    stages: Interleaved | None = None  # lensflow's stages without Dask (A) against bare (B)

    def per_core(self, seconds: float) -> float:
        return self.sources / seconds / self.cores

    @property
    def series(self) -> int:
        """0: ~30 partitions; 1: the demo's rows per partition (above the demo's size); 2: ~3,000."""
        if self.partitions > 1_000:
            return 2
        sized = demo_sized(self.sources)
        return (
            1 if self.sources > DEMO_SOURCES and abs(self.partitions - sized) < 0.2 * sized else 0
        )


def _session(path: Path, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


def _run(session: ort.InferenceSession, inputs: np.ndarray, batch: int) -> np.ndarray:
    name = session.get_inputs()[0].name
    out = [
        session.run(None, {name: inputs[s : s + batch]})[0] for s in range(0, len(inputs), batch)
    ]
    return np.concatenate(out).reshape(-1).astype(np.float32) if out else np.empty(0, np.float32)


def partition_sizes(catalog: Any) -> dict[Any, int]:
    """Rows per partition of an open catalog, from its files' footers, in the catalog's order."""
    return {
        p: sum(pq.ParquetFile(f).metadata.num_rows for f in partition_files(catalog, p))
        for p in catalog.pixels
    }


def dealt(sizes: dict[Any, int], share: int, shares: int) -> list[Any]:
    """Share k of `shares`: the partitions dealt largest first to the least loaded share."""
    loads = [0] * shares
    mine = []
    for pixel in sorted(sizes, key=lambda p: -sizes[p]):
        k = loads.index(min(loads))
        loads[k] += sizes[pixel]
        if k == share:
            mine.append(pixel)
    return mine


def bare_pipeline(
    config: ScanConfig, manifest: ModelManifest, *, threads: int
) -> Callable[..., tuple[int, int, int, int]]:
    """The scan's work with the bare libraries; returns a function run(out, share, shares) that
    runs share k of `shares` (the partitions dealt largest first to the least loaded share)
    into an output folder and returns its funnel counts."""
    catalog = open_catalog(config.catalog.path)
    files = {p: partition_files(catalog, p) for p in catalog.pixels}
    sizes = partition_sizes(catalog)
    columns = config.catalog.columns
    mapped = columns.mapped()
    features = [mapped[name] for name in manifest.photometry.features]
    wanted = list(dict.fromkeys([columns.id, columns.ra, columns.dec, *features]))
    cut = parse_cuts(config.cuts.expression)
    needed = list(dict.fromkeys([*wanted, SPATIAL_INDEX_COLUMN, *cut.columns]))
    expression = cut.to_arrow()
    gate = _session(manifest.path_of(manifest.photometry.file), threads)
    members = {
        m.name: _session(manifest.path_of(m.file), threads) for m in manifest.ensemble.members
    }
    photometry_threshold = config.photometry.threshold
    if photometry_threshold is None:
        photometry_threshold = manifest.photometry.threshold
    ensemble_threshold = config.ensemble.threshold
    if ensemble_threshold is None:
        ensemble_threshold = manifest.ensemble.threshold
    store: Any = zarr.open_group(str(config.cutouts.path), mode="r")

    def run(out: Path, share: int = 0, shares: int = 1) -> tuple[int, int, int, int]:
        read = after_cuts = after_photometry = candidates = 0
        for pixel in dealt(sizes, share, shares):
            paths = files[pixel]
            batches = []
            for path in paths:
                parquet = pq.ParquetFile(path)
                read += parquet.metadata.num_rows
                for batch in parquet.iter_batches(batch_size=READ_BATCH_ROWS, columns=needed):
                    batches.append(batch.filter(expression).select(wanted))
            table = pa.Table.from_batches(batches) if batches else None
            if table is None or table.num_rows == 0:
                continue
            after_cuts += table.num_rows
            x = np.stack(
                [table[c].to_numpy(zero_copy_only=False).astype(np.float32) for c in features], 1
            )
            usable = np.isfinite(x).all(axis=1)
            scores = np.full(len(x), np.nan, np.float32)
            scores[usable] = _run(gate, np.ascontiguousarray(x[usable]), PHOTOMETRY_BATCH)
            keep = np.flatnonzero(usable & (scores >= photometry_threshold))
            after_photometry += keep.size
            if not keep.size:
                continue
            ids = table[columns.id].to_numpy()[keep]
            group = store[partition_group(pixel)]
            stored = np.asarray(group["ids"][:])
            where = np.searchsorted(stored, ids).clip(0, stored.size - 1)
            rows = np.sort(where[stored[where] == ids])
            images = group["images"]
            slabs = []
            for chunk in np.unique(rows // CHUNK_CUTOUTS):
                slab = images[chunk * CHUNK_CUTOUTS : (chunk + 1) * CHUNK_CUTOUTS]
                slabs.append(slab[rows[rows // CHUNK_CUTOUTS == chunk] - chunk * CHUNK_CUTOUTS])
            cutouts = np.ascontiguousarray(np.concatenate(slabs))
            member_scores = {n: _run(s, cutouts, DEFAULT_BATCH) for n, s in members.items()}
            ensemble = ensemble_score(member_scores, models=manifest.ensemble)
            candidates += int((ensemble >= ensemble_threshold).sum())
            pq.write_table(
                pa.table({"id": stored[rows], "ensemble_score": ensemble, **member_scores}),
                out / f"{pixel.order}-{pixel.pixel}.parquet",
            )
        return read, after_cuts, after_photometry, candidates

    return run


_BARE: dict[str, Any] = {}


def _start_bare(config: ScanConfig, manifest: ModelManifest, scratch: str) -> None:
    """A bare process's initializer: its one-thread sessions and partition files, once; and
    lensflow's stage context, writing into a folder of this process's own under `scratch`."""
    from lensflow import sessions
    from lensflow.scan.run import build_context

    # The libraries configured as lensflow's one-thread workers configure them (its warm-up
    # plugin sets Zarr's read threads; the sessions take lensflow's options): the same work.
    zarr.config.set({"threading.max_workers": 1})
    _BARE["run"] = bare_pipeline(config, manifest, threads=1)
    sessions._worker_threads = lambda: 1  # one-thread sessions, as in a one-thread worker
    out = Path(scratch) / f"stages-{uuid.uuid4().hex[:8]}"
    context = build_context(
        config.model_copy(update={"output": config.output.model_copy(update={"path": out})}),
        lock=False,
    )
    _BARE["stages"] = context.stages()
    _BARE["sizes"] = partition_sizes(context.catalog)


def _bare_share(out: str, share: int, shares: int) -> tuple[int, int, int, int]:
    result: tuple[int, int, int, int] = _BARE["run"](Path(out), share, shares)
    return result


def _stages_share(share: int, shares: int) -> tuple[int, int, int, int]:
    """lensflow's stages over share k of the partitions, in this process, without Dask."""
    pixels = [PlainPixel(p.order, p.pixel) for p in dealt(_BARE["sizes"], share, shares)]
    results = scan_partitions(pixels, context=_BARE["stages"])
    totals = funnel_totals([r.marker for r in results])
    read, cuts, photometry, candidates = (int(totals[k]) for k in FUNNEL)
    return read, cuts, photometry, candidates


def bench_sky(
    sky: Path, *, sources: int, kind: str, client: Client, rounds: int, scratch: Path
) -> SkyResult:
    """Interleave run_scan and the bare pipeline on one sky; check their funnels agree."""
    config = ScanConfig.from_toml(sky / "scan.toml")
    # The bare pipeline stops at the members: the lens-modelling networks have their own
    # benchmark (bench_modelling), so the scan runs without them here.
    config = config.model_copy(
        update={
            "cluster": config.cluster.model_copy(update={"n_workers": WORKERS}),
            "modelling": ModellingConfig(enabled=False),
        }
    )
    manifest = load_manifest(config.models.manifest)
    cores = sum(w["nthreads"] for w in client.scheduler_info(n_workers=-1)["workers"].values())
    stage_scratch = scratch / "stages"
    stage_scratch.mkdir()
    pool = ProcessPoolExecutor(
        cores,
        mp_context=get_context("spawn"),
        initializer=_start_bare,
        initargs=(config, manifest, str(stage_scratch)),
    )
    funnels: dict[str, set[tuple[int, ...]]] = {"lensflow": set(), "bare": set(), "stages": set()}

    def fresh() -> Path:
        folder = scratch / uuid.uuid4().hex[:8]
        folder.mkdir()
        return folder

    def lensflow() -> None:
        out = fresh() / "scan"
        update = {"output": config.output.model_copy(update={"path": out})}
        outcome = run_scan(config.model_copy(update=update), client=client)
        assert outcome.failed == 0, f"{outcome.failed} partitions failed in {out}"
        totals = funnel_totals(read_markers(out))
        funnels["lensflow"].add(tuple(int(totals[k]) for k in FUNNEL))

    def bare_run() -> None:
        out = str(fresh())
        shares = list(pool.map(_bare_share, [out] * cores, range(cores), [cores] * cores))
        funnels["bare"].add(tuple(sum(counts) for counts in zip(*shares, strict=True)))

    def stages_run() -> None:
        shares = list(pool.map(_stages_share, range(cores), [cores] * cores))
        funnels["stages"].add(tuple(sum(counts) for counts in zip(*shares, strict=True)))

    try:
        timing = interleave(lensflow, bare_run, rounds=rounds)
        stages = interleave(stages_run, bare_run, rounds=rounds)
    finally:
        pool.shutdown()
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir()
    assert len(funnels["lensflow"]) == 1, funnels
    assert funnels["lensflow"] == funnels["bare"] == funnels["stages"], funnels
    (funnel,) = funnels["bare"]
    partitions = len(open_catalog(config.catalog.path).pixels)
    return SkyResult(sources, partitions, kind, timing, funnel, cores, stages)


def demo_sized(sources: int) -> int:
    """Partitions of a sky of `sources` holding the demo's rows per partition."""
    return round(sources * DEMO_PARTITIONS / DEMO_SOURCES)


def choose_sky(sources: int, partitions: int) -> tuple[Path, str] | None:
    """The sky of that size and partitioning: simulated, else a tiled demo sky, else None.

    DEMO_SIZED partitions: the tiled sky of demo_sized(sources) partitions.
    """
    if partitions == DEMO_SIZED:
        tiled = SKIES / f"tiled-{sources}-p{demo_sized(sources)}"
        return (tiled, "tiled") if (tiled / "scan.toml").is_file() else None
    simulated = sky_folder(sources) if partitions == 0 else SKIES / f"sky-{sources}-p{partitions}"
    if (simulated / "scan.toml").is_file():
        return simulated, "demo" if sources == DEMO_SOURCES else "simulated"
    tiled = SKIES / f"tiled-{sources}-p{partitions or NATURAL}"
    if (tiled / "scan.toml").is_file():
        return tiled, "tiled"
    return None


TILED = (
    "tiled: copies of the demo sky side by side in RA (`python -m benchmarks.skies N --tiled`), "
    "standing in where a sky of that size has not been simulated: each copy repeats the "
    "demo's rows and cutouts, so the funnel scales exactly and the cost per row is the "
    "demo's; for cost scaling, not science."
)


def _stages_of(sky: dict[str, Any]) -> Interleaved | None:
    if "stages_seconds" not in sky:  # a record from before the stages were timed alone
        return None
    return Interleaved(
        tuple(sky["stages_seconds"]),
        tuple(sky["stages_bare_seconds"]),
        tuple(sky["stages_load_before"]),
        tuple(sky["stages_load_after"]),
    )


def from_record(path: Path) -> tuple[list[SkyResult], list[str], int]:
    """The results (and skies missing, rounds) a previous run wrote to scan.json."""
    data = json.loads(path.read_text())
    results = [
        SkyResult(
            sources=s["sources"],
            partitions=s["partitions"],
            kind=s["kind"],
            timing=Interleaved(
                tuple(s["lensflow_seconds"]),
                tuple(s["bare_seconds"]),
                tuple(s["load_before"]),
                tuple(s["load_after"]),
            ),
            funnel=tuple(s["funnel"]),
            cores=s["cores"],
            stages=_stages_of(s),
        )
        for s in data["skies"]
    ]
    rounds = min((len(r.timing.lensflow) for r in results), default=MIN_ROUNDS)
    return results, list(data.get("missing", [])), rounds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--render", action="store_true", help="only rewrite scan.md from results/scan.json"
    )
    parser.add_argument("--sources", type=int, nargs="*", default=list(SOURCES))
    parser.add_argument("--partitions", type=int, nargs="*", default=list(PARTITIONS))
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    args = parser.parse_args([] if argv is None else argv)
    if args.render:
        done, absent, rounds = from_record(RESULTS / "scan.json")
        report(done, absent, rounds=rounds)
        return
    previous = from_record(RESULTS / "scan.json")[0] if (RESULTS / "scan.json").is_file() else []
    results: list[SkyResult] = []
    missing: list[str] = []

    def merged() -> list[SkyResult]:  # a partial run keeps the other skies' last results
        ran = {(r.sources, r.partitions, r.kind) for r in results}
        return [r for r in previous if (r.sources, r.partitions, r.kind) not in ran] + results

    with (
        connect(ClusterConfig(n_workers=WORKERS, threads_per_worker=1, dashboard=False)) as client,
        tempfile.TemporaryDirectory(prefix="bench-scan-") as tmp,
    ):
        for partitions in args.partitions:  # the ~30-partition series first: it is quick
            for sources in args.sources:
                if partitions == DEMO_SIZED and sources <= DEMO_SOURCES:
                    continue  # the demo is in the ~30-partition series; a smaller sky has none
                found = choose_sky(sources, partitions)
                if found is None:
                    count = demo_sized(sources) if partitions == DEMO_SIZED else partitions
                    where = f", ~{count:,} partitions" if count else ""
                    missing.append(f"{sources:,} sources{where}")
                    continue
                sky, kind = found
                print(f"-- {sky} ({kind})", flush=True)
                results.append(
                    bench_sky(
                        sky,
                        sources=sources,
                        kind=kind,
                        client=client,
                        rounds=args.rounds,
                        scratch=Path(tmp),
                    )
                )
                report(merged(), missing, rounds=args.rounds)  # what is done so far survives
    report(merged(), missing, rounds=args.rounds)


def linearity(results: list[SkyResult]) -> list[str]:
    """The 1 M-source sky's rate per core against the demo's, per partitioning (cost per row)."""
    demo = next((r for r in results if r.sources == DEMO_SOURCES and r.series == 0), None)
    if demo is None:
        return []
    lines = []
    names = {0: "~30 partitions", 1: "the demo's rows per partition"}
    for series, name in names.items():
        large = next((r for r in results if r.sources == 1_000_000 and r.series == series), None)
        if large is None:
            continue
        l150, l1m = (r.per_core(r.timing.lensflow_median) for r in (demo, large))
        b150, b1m = (r.per_core(r.timing.bare_median) for r in (demo, large))
        lines.append(
            f"- per core, 150,000 against 1,000,000 sources ({name}, {large.partitions} "
            f"partitions of ~{large.sources / large.partitions:,.0f} rows): lensflow "
            f"{l150:,.0f} vs {l1m:,.0f} ({l150 / l1m - 1:+.0%}), bare {b150:,.0f} vs {b1m:,.0f} "
            f"({b150 / b1m - 1:+.0%})"
        )
    return ["", *lines] if lines else []


def report(results: list[SkyResult], missing: list[str], *, rounds: int) -> None:
    """Write results/scan.md and scan.json."""
    lines = [
        "# End to end: run_scan on a local Dask cluster vs the composed bare pipeline",
        "",
        (
            f"machine: {machine()}; lensflow on {WORKERS} one-thread worker processes (cluster "
            f"started once, not timed); bare in {WORKERS} one-thread processes (a pool started once, "
            f"not timed); {rounds} rounds per sky."
        ),
        "",
        CONVENTION,
        "",
        (
            "| sources | sky | partitions | rows/partition | run_scan s | bare s | rate ratio "
            "| stages without Dask: rate ratio | lensflow src/s/core | bare src/s/core "
            "| funnel: read / cuts / photometry / candidates | load |"
        ),
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for r in sorted(results, key=lambda r: (r.series, r.sources)):
        t = r.timing
        lines.append(
            f"| {r.sources:,} | {r.kind} | {r.partitions:,} | {r.sources / r.partitions:,.0f} "
            f"| {t.lensflow_median:.2f} "
            f"| {t.bare_median:.2f} "
            f"| {t.ratio_cell(above=ABOVE)} "
            f"| {r.stages.ratio_cell(above=ABOVE) if r.stages else 'not timed'} "
            f"| {r.per_core(t.lensflow_median):,.0f} "
            f"| {r.per_core(t.bare_median):,.0f} | {' / '.join(f'{n:,}' for n in r.funnel)} "
            f"| {t.load_text()} |"
        )
    if any(r.stages for r in results):
        lines += ["", STAGES]
    if any(r.timing.noisy for r in results):
        lines += ["", NOTE]
    lines += linearity(results)
    if any(r.kind == "tiled" for r in results):
        lines += ["", TILED]
    simulated = [json.loads(f.read_text()) for f in sorted(SKIES.glob("sky-*/simulated.json"))]
    if simulated:
        lines += ["", "Simulation times:"]
    for sim in simulated:
        lines.append(
            f"- the simulator made the {sim['sources']:,}-source sky in {sim['seconds']:,.0f} s "
            f"on {sim['workers']} workers (load {sim['load_before'][0]:.2f} -> "
            f"{sim['load_after'][0]:.2f})"
        )
    if missing:
        lines += [
            "",
            f"Not run (sky not made yet, `python -m benchmarks.skies`): {'; '.join(missing)}.",
        ]
    write_result("scan", lines)
    rows = [
        {
            "stage": (
                f"end to end: {r.sources:,} sources ({r.kind}), {r.partitions:,} partitions "
                "(2 cores)"
            ),
            "lensflow": f"{r.per_core(r.timing.lensflow_median):,.0f} sources/s/core",
            "bare": f"{r.per_core(r.timing.bare_median):,.0f} sources/s/core ({WORKERS} processes)",
            "ratio": r.timing.ratio_cell(above=ABOVE),
            "load": r.timing.load_text(),
        }
        for r in results
    ]
    extra = [
        {
            "sources": r.sources,
            "partitions": r.partitions,
            "kind": r.kind,
            "lensflow_seconds": list(r.timing.lensflow),
            "bare_seconds": list(r.timing.bare),
            "ratio": r.timing.ratio,
            "funnel": list(r.funnel),
            "cores": r.cores,
            "load_before": list(r.timing.load_before),
            "load_after": list(r.timing.load_after),
            **(
                {
                    "stages_seconds": list(r.stages.lensflow),
                    "stages_bare_seconds": list(r.stages.bare),
                    "stages_ratio": r.stages.ratio,
                    "stages_load_before": list(r.stages.load_before),
                    "stages_load_after": list(r.stages.load_after),
                }
                if r.stages
                else {}
            ),
        }
        for r in results
    ]
    record("scan", rows, skies=extra, missing=missing)


if __name__ == "__main__":
    main(sys.argv[1:])
