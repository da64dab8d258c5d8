"""`lensflow plan --estimate` against the real scan: wall time and funnel, alternately.

Each round starts a fresh local cluster (2 one-thread workers) for the estimate (footers and
its calibration runs) and another for the real scan (inputs checked, then `run_context`), as
`lensflow plan --estimate` and `lensflow scan` each start their own. Compared: the estimated
wall time of the scan on a started cluster against the real one (build + run), and the
estimated funnel against the scan's. Skies: the demo's (150,000 sources, ~30 partitions) and
its ~3,000-partition copy (benchmarks.skies), where made.

    python -m benchmarks.bench_estimate [--rounds 3] [--skies demo demo-3000]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from benchmarks.common import load_average, machine, record, write_result
from benchmarks.skies import DEMO_SKY, SKIES
from lensflow.cluster import connect
from lensflow.config import ScanConfig
from lensflow.scan.estimate import Estimate, estimate_scan
from lensflow.scan.run import build_context, run_context
from lensflow.scan.state import funnel_totals, read_markers

SKY_CHOICES = {"demo": DEMO_SKY, "demo-3000": SKIES / "sky-150000-p3000"}
FUNNEL = ("rows_read", "rows_after_cuts", "rows_after_photometry", "candidates")


@dataclass(frozen=True)
class Real:
    """One real scan: seconds to start the cluster, to check the inputs, to run; its funnel."""

    cluster_start: float
    build: float
    run: float
    funnel: tuple[int, ...]

    @property
    def wall(self) -> float:
        return self.build + self.run


@dataclass(frozen=True)
class Pair:
    estimate: Estimate
    estimate_seconds: float  # what the estimate itself took, its cluster's start included
    real: Real
    load: tuple[float, float]


def _config(sky: Path, output: Path) -> ScanConfig:
    config = ScanConfig.from_toml(sky / "scan.toml")
    update = {
        "output": config.output.model_copy(update={"path": output}),
        "cluster": config.cluster.model_copy(update={"n_workers": 2, "dashboard": False}),
    }
    return config.model_copy(update=update)


def real_scan(config: ScanConfig) -> Real:
    """A scan as `lensflow scan` runs it, timed in its parts."""
    started = time.perf_counter()
    context = build_context(config)
    built = time.perf_counter()
    with connect(config.cluster) as client:
        joined = time.perf_counter()
        outcome = run_context(context, client=client)
        done = time.perf_counter()
    assert outcome.failed == 0
    totals = funnel_totals(read_markers(config.output.path))
    funnel = tuple(int(totals[k]) for k in FUNNEL)
    return Real(joined - built, built - started, done - joined, funnel)


def bench(sky: Path, *, rounds: int, scratch: Path) -> list[Pair]:
    """Estimate, real scan, estimate, real scan, ... on one sky."""
    pairs = []
    for i in range(rounds):
        before = load_average()[0]
        config = _config(sky, scratch / f"estimate-{i}" / "scan")
        started = time.perf_counter()
        result = estimate_scan(config, connect=partial(connect, config.cluster))
        took = time.perf_counter() - started
        real = real_scan(_config(sky, scratch / f"real-{i}" / "scan"))
        pairs.append(Pair(result, took, real, (before, load_average()[0])))
        shutil.rmtree(scratch / f"real-{i}", ignore_errors=True)
        print(
            f"  round {i + 1}: estimate {result.wall_seconds:.2f} s, real {real.wall:.2f} s",
            flush=True,
        )
    return pairs


def _parts(e: Estimate) -> str:
    """Where the estimated time goes: start-up, the stages' makespan, per-partition cost."""
    per_partition = e.partitions * e.partition_seconds
    stages = e.wall_seconds - e.start_seconds - per_partition - e.calibration.build_seconds
    return f"{e.start_seconds:.1f} + {stages:.1f} + {per_partition:.1f}"


def _funnel(values: tuple[int, ...]) -> str:
    return " / ".join(f"{n:,}" for n in values)


def report(results: dict[str, list[Pair]], *, rounds: int) -> None:
    """Write results/estimate.md and estimate.json."""
    lines = [
        "# `lensflow plan --estimate` against the real scan",
        "",
        (
            f"machine: {machine()}; 2 one-thread workers on a fresh local cluster for each "
            f"estimate and each scan, alternately, {rounds} rounds. Wall time: the scan on a "
            "started cluster (inputs checked + run), as the estimate states it; the cluster's "
            "start is measured apart. Error = estimate / real - 1."
        ),
        "",
        (
            "| sky | round | estimated s (start-up + stages + per partition) | real s | error "
            "| estimate took s | cluster start s (estimate / real) | load |"
        ),
        "| --- | ---: | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    rows = []
    summary: dict[str, object] = {}
    for name, pairs in results.items():
        for i, p in enumerate(pairs, start=1):
            error = p.estimate.wall_seconds / p.real.wall - 1
            lines.append(
                f"| {name} ({p.estimate.partitions:,} partitions) | {i} | "
                f"{p.estimate.wall_seconds:.2f} ({_parts(p.estimate)}) | {p.real.wall:.2f} | "
                f"{error:+.0%} | "
                f"{p.estimate_seconds:.1f} | {p.estimate.cluster_start_seconds:.1f} / "
                f"{p.real.cluster_start:.1f} | {p.load[0]:.2f} -> {p.load[1]:.2f} |"
            )
    lines.append("")
    for name, pairs in results.items():
        estimated = statistics.median(p.estimate.wall_seconds for p in pairs)
        real = statistics.median(p.real.wall for p in pairs)
        errors = [p.estimate.wall_seconds / p.real.wall - 1 for p in pairs]
        reals = [p.real.wall for p in pairs]
        last = pairs[-1]
        est_funnel = tuple(getattr(last.estimate, k) for k in FUNNEL)
        lines += [
            (
                f"- {name}: median estimate {estimated:.2f} s against median real {real:.2f} s "
                f"({estimated / real - 1:+.0%}; rounds {min(errors):+.0%} to "
                f"{max(errors):+.0%}; the real scan itself took {min(reals):.1f} to "
                f"{max(reals):.1f} s); funnel estimated {_funnel(est_funnel)} against "
                f"{_funnel(last.real.funnel)} (read / cuts / photometry / candidates)."
            ),
        ]
        rows.append(
            {
                "stage": f"plan --estimate: {name}, {last.estimate.partitions:,} partitions",
                "lensflow": f"{estimated:.1f} s estimated",
                "bare": f"{real:.1f} s real scan",
                "ratio": f"{estimated / real - 1:+.0%} [{min(errors):+.0%} to {max(errors):+.0%}]",
                "load": f"load {pairs[0].load[0]:.2f} -> {pairs[-1].load[1]:.2f}",
            }
        )
        summary[name] = {
            "estimates": [
                {k: v for k, v in p.estimate.as_dict().items() if k != "calibration"} for p in pairs
            ],
            "calibrations": [p.estimate.as_dict()["calibration"] for p in pairs],
            "real_parts": [
                {"cluster_start": p.real.cluster_start, "build": p.real.build, "run": p.real.run}
                for p in pairs
            ],
            "estimated": [p.estimate.wall_seconds for p in pairs],
            "real": [p.real.wall for p in pairs],
            "estimate_took": [p.estimate_seconds for p in pairs],
            "funnel_estimated": list(est_funnel),
            "funnel_real": list(last.real.funnel),
            "loads": [list(p.load) for p in pairs],
        }
    write_result("estimate", lines)
    record("estimate", rows, skies=summary)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skies", nargs="*", default=list(SKY_CHOICES), choices=SKY_CHOICES)
    args = parser.parse_args([] if argv is None else argv)
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-estimate-") as tmp:
        for name in args.skies:
            sky = SKY_CHOICES[name]
            if not (sky / "scan.toml").is_file():
                print(f"-- {name}: {sky} not made yet (python -m benchmarks.skies)", flush=True)
                continue
            print(f"-- {name}: {sky}", flush=True)
            results[name] = bench(sky, rounds=args.rounds, scratch=Path(tmp))
    report(results, rounds=args.rounds)


if __name__ == "__main__":
    main(sys.argv[1:])
