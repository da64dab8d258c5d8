"""Lens modelling per core: lensflow.modelling against bare ONNX Runtime doing the same work.

`python -m benchmarks.bench_modelling [--manifest models/manifest.toml] [--lenses 512]`

Both paths run every modelling network on the same cutouts with one-thread sessions (so the
time is per core) in batches of 256 and combine the K Gaussians as a mixture: lensflow through
`lensflow.modelling.predict_lenses` (hash-checked cached sessions, input checks, non-finite
rows, the manifest's sigma scales), bare as plain `InferenceSession.run` calls and numpy.
Rounds interleave the two (A B, then B A), and the medians over rounds give ms per lens per
core and the rate ratio lensflow / bare. The 1-minute load average is recorded before and after,
since on a shared machine other work slows both paths alike. Writes
benchmarks/results/modelling.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import onnxruntime as ort

from benchmarks.bench_ensemble import bare_session, cpu_name
from benchmarks.common import write_result
from lensflow.modelling import DEFAULT_BATCH, ModellingModels, load_modelling, predict_lenses

ROOT = Path(__file__).resolve().parents[1]


def bare_predict(
    sessions: list[ort.InferenceSession], images: np.ndarray, scales: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The mixture mean and sigma (N, P) from bare sessions: run, split, combine."""
    p = scales.size
    means, variances = [], []
    for session in sessions:
        outs = [
            session.run(None, {"images": images[s : s + DEFAULT_BATCH]})[0]
            for s in range(0, images.shape[0], DEFAULT_BATCH)
        ]
        out = np.concatenate(outs).astype(np.float64)
        means.append(out[:, :p])
        variances.append(np.exp(out[:, p:]))
    m, v = np.stack(means), np.stack(variances)
    mean = m.mean(axis=0)
    return mean, np.sqrt(v.mean(axis=0) + m.var(axis=0)) * scales


def timed(work: Callable[[], object]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def bench(
    modelling: ModellingModels, n_lenses: int, rounds: int
) -> tuple[list[float], list[float], float]:
    """Seconds per round of (lensflow, bare) and the largest |difference| of their means."""
    shape = (n_lenses, len(modelling.bands), modelling.size, modelling.size)
    images = np.random.default_rng(0).normal(0.0, 10.0, size=shape).astype(np.float32)
    sessions = [bare_session(modelling.path_of(m.file), 1) for m in modelling.members]
    scales = modelling.scales()

    def ours() -> object:
        return predict_lenses(images, modelling=modelling, threads=1)

    def bare() -> object:
        return bare_predict(sessions, images, scales)

    check = predict_lenses(images[:64], modelling=modelling, threads=1)
    diff = float(np.max(np.abs(check.mean - bare_predict(sessions, images[:64], scales)[0])))
    ours()
    bare()  # warm-up
    mine, theirs = [], []
    for r in range(rounds):
        if r % 2 == 0:
            mine.append(timed(ours))
            theirs.append(timed(bare))
        else:
            theirs.append(timed(bare))
            mine.append(timed(ours))
    return mine, theirs, diff


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", type=Path, default=ROOT / "models" / "manifest.toml")
    parser.add_argument("--lenses", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args([] if argv is None else argv)
    modelling = load_modelling(args.manifest)
    load_before = os.getloadavg()[0]
    mine, theirs, diff = bench(modelling, args.lenses, max(5, args.rounds))
    load_after = os.getloadavg()[0]
    ms_ours = 1e3 * statistics.median(mine) / args.lenses
    ms_bare = 1e3 * statistics.median(theirs) / args.lenses
    flops = sum(m.flops or 0 for m in modelling.members)
    lines = [
        "# Lens modelling throughput (CPU, ONNX Runtime, one thread)",
        "",
        (
            f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {cpu_name()}; {os.cpu_count()} logical "
            f"cores; onnxruntime {ort.__version__}; {len(modelling.members)} networks "
            f"({flops / 1e6:.1f} MFLOP per lens in all), {args.lenses} random "
            f"{modelling.size}x{modelling.size} cutouts of {len(modelling.bands)} bands in "
            f"batches of {DEFAULT_BATCH}; {len(mine)} rounds, lensflow and bare interleaved "
            f"(A B, B A, ...), medians. Load average (1 min) {load_before:.2f} before, "
            f"{load_after:.2f} after: other work on the machine slows both paths alike, "
            "compare the ratio."
        ),
        "",
        "| path | ms per lens per core | lenses/s per core | rounds (s) |",
        "| --- | ---: | ---: | --- |",
        (
            f"| lensflow.modelling.predict_lenses | {ms_ours:.3f} | {1e3 / ms_ours:,.0f} | "
            f"{', '.join(f'{t:.2f}' for t in mine)} |"
        ),
        (
            f"| bare onnxruntime + numpy | {ms_bare:.3f} | {1e3 / ms_bare:,.0f} | "
            f"{', '.join(f'{t:.2f}' for t in theirs)} |"
        ),
        "",
        (
            f"Rate ratio lensflow / bare: {ms_bare / ms_ours:.3f}. The two agree on every mean "
            f"within {diff:.1e}."
        ),
    ]
    write_result("modelling", lines)


if __name__ == "__main__":
    main(sys.argv[1:])
