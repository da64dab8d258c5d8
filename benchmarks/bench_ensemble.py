"""Throughput of the shipped models: lensflow's scoring path against bare ONNX Runtime.

`python -m benchmarks.bench_ensemble [--manifest models/manifest.toml] [--images 1024]`

For each CNN member: images/s through `lensflow.ensemble.score_cutouts` and through a bare
`InferenceSession.run` on the same batches with the same thread count (their ratio is
lensflow's overhead), and a one-thread session for images/s per core. For the photometry gate:
rows/s through `score_photometry` against a bare session. Prints a table and writes
benchmarks/results/ensemble.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import onnxruntime as ort

from lensflow.ensemble import DEFAULT_BATCH, score_cutouts
from lensflow.photometry import PHOTOMETRY_BATCH, score_photometry
from lensflow.registry import EnsembleMember, ModelManifest, load_manifest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "ensemble.md"


def best_rate(work: Callable[[], object], items: int, *, repeats: int) -> float:
    """Items per second of the fastest of `repeats` timed runs (after one warm-up run)."""
    work()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return items / best


def bare_session(path: Path, threads: int) -> ort.InferenceSession:
    """A plain ONNX Runtime CPU session with the options lensflow's sessions use."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


def bare_run(session: ort.InferenceSession, inputs: np.ndarray, batch: int) -> None:
    """Run a session over inputs in batches, keeping nothing."""
    name = session.get_inputs()[0].name
    for start in range(0, inputs.shape[0], batch):
        session.run(None, {name: inputs[start : start + batch]})


def bench_member(
    manifest: ModelManifest, member: EnsembleMember, n_images: int, repeats: int
) -> tuple[float, float, float]:
    """(lensflow img/s, bare img/s, bare one-thread img/s) of one member on random cutouts."""
    shape = (n_images, len(member.bands), member.size, member.size)
    images = np.random.default_rng(0).normal(0.0, 5.0, size=shape).astype(np.float32)
    alone = manifest.model_copy(
        update={"ensemble": manifest.ensemble.model_copy(update={"members": (member,)})}
    )
    path = manifest.path_of(member.file)
    ours = best_rate(lambda: score_cutouts(images, manifest=alone), n_images, repeats=repeats)
    session = bare_session(path, os.cpu_count() or 1)
    bare = best_rate(lambda: bare_run(session, images, DEFAULT_BATCH), n_images, repeats=repeats)
    single = bare_session(path, 1)
    one = best_rate(lambda: bare_run(single, images, DEFAULT_BATCH), n_images, repeats=repeats)
    return ours, bare, one


def bench_photometry(
    manifest: ModelManifest, n_rows: int, repeats: int
) -> tuple[float, float, float]:
    """(lensflow rows/s, bare rows/s, bare one-thread rows/s) of the photometry gate."""
    rng = np.random.default_rng(1)
    mags = rng.uniform(18.0, 24.0, size=(n_rows, len(manifest.photometry.features)))
    mags = mags.astype(np.float32)
    path = manifest.path_of(manifest.photometry.file)
    ours = best_rate(lambda: score_photometry(mags, manifest=manifest), n_rows, repeats=repeats)
    session = bare_session(path, os.cpu_count() or 1)
    bare = best_rate(lambda: bare_run(session, mags, PHOTOMETRY_BATCH), n_rows, repeats=repeats)
    single = bare_session(path, 1)
    one = best_rate(lambda: bare_run(single, mags, PHOTOMETRY_BATCH), n_rows, repeats=repeats)
    return ours, bare, one


def cpu_name() -> str:
    """The processor's model name (Linux), else what platform says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", type=Path, default=ROOT / "models" / "manifest.toml")
    parser.add_argument("--images", type=int, default=2048)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args([] if argv is None else argv)
    manifest = load_manifest(args.manifest, verify=True)
    threads = os.cpu_count() or 1
    members = [
        (m.name, m.flops or 0, *bench_member(manifest, m, args.images, args.repeats))
        for m in manifest.ensemble.members
    ]
    ours, bare, one = bench_photometry(manifest, args.rows, args.repeats)

    lines = [
        "# Ensemble and photometry throughput (CPU, ONNX Runtime)",
        "",
        (
            f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {cpu_name()}; {threads} logical cores "
            f"(sessions at {threads} intra-op threads; 'per core' = one-thread session); "
            f"onnxruntime {ort.__version__}; {args.images} random 64x64 cutouts in batches of "
            f"{DEFAULT_BATCH}; best of {args.repeats}. On a shared machine, other work lowers "
            "every number alike; compare the ratios."
        ),
        "",
        "| member | MFLOP/image | score_cutouts img/s | bare ORT img/s | ratio | img/s per core |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, flops, mine, theirs, single in members:
        lines.append(
            f"| {name} | {flops / 1e6:.1f} | {mine:,.0f} | {theirs:,.0f} | {mine / theirs:.2f} "
            f"| {single:,.0f} |"
        )
    lines += [
        "",
        (
            f"| photometry ({manifest.photometry.name}) | score_photometry rows/s "
            "| bare ORT rows/s | ratio | rows/s per core |"
        ),
        "| --- | ---: | ---: | ---: | ---: |",
        f"| {args.rows:,} rows | {ours:,.0f} | {bare:,.0f} | {ours / bare:.2f} | {one:,.0f} |",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)


if __name__ == "__main__":
    main(sys.argv[1:])
