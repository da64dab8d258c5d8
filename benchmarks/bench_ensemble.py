"""Throughput of the shipped models: lensflow's scoring path against bare ONNX Runtime.

`python -m benchmarks.bench_ensemble [--manifest models/manifest.toml] [--images 1024]`

For each CNN member: images/s through `lensflow.ensemble.score_cutouts` and through a bare
`InferenceSession.run` on the same batches with the same thread count (their ratio is
lensflow's overhead), interleaved (benchmarks.common), and a one-thread session for images/s
per core. For the photometry gate: rows/s through `score_photometry` against a bare session.
For each member with an INT8 variant: one-thread sessions of both precisions interleaved (its
speed-up), beside the agreement `lensflow train quantize` recorded on its held-out set.
Prints a table and writes benchmarks/results/ensemble.md (and ensemble.json).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import onnxruntime as ort

from benchmarks.common import (
    CONVENTION,
    Interleaved,
    best_seconds,
    interleave,
    machine,
    record,
    summary_row,
    write_result,
)
from lensflow.ensemble import DEFAULT_BATCH, score_cutouts
from lensflow.photometry import PHOTOMETRY_BATCH, score_photometry
from lensflow.registry import EnsembleMember, ModelManifest, load_manifest

ROOT = Path(__file__).resolve().parents[1]


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


def cpu_name() -> str:
    """The processor's model name (Linux), else what platform says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def bench_member(
    manifest: ModelManifest, member: EnsembleMember, n_images: int, rounds: int
) -> tuple[Interleaved, float]:
    """lensflow vs bare (interleaved) and the bare one-thread img/s of one member."""
    shape = (n_images, len(member.bands), member.size, member.size)
    images = np.random.default_rng(0).normal(0.0, 5.0, size=shape).astype(np.float32)
    alone = manifest.model_copy(
        update={"ensemble": manifest.ensemble.model_copy(update={"members": (member,)})}
    )
    path = manifest.path_of(member.file)
    session = bare_session(path, os.cpu_count() or 1)
    result = interleave(
        lambda: score_cutouts(images, manifest=alone),
        lambda: bare_run(session, images, DEFAULT_BATCH),
        rounds=rounds,
    )
    single = bare_session(path, 1)
    one = n_images / best_seconds(lambda: bare_run(single, images, DEFAULT_BATCH), repeats=3)
    return result, one


def bench_int8(
    member: EnsembleMember, manifest: ModelManifest, n_images: int, rounds: int
) -> Interleaved:
    """A one-thread int8 session (A) against the float32 one (B), interleaved."""
    assert member.int8 is not None
    shape = (n_images, len(member.bands), member.size, member.size)
    images = np.random.default_rng(2).normal(0.0, 5.0, size=shape).astype(np.float32)
    fp32 = bare_session(manifest.path_of(member.file), 1)
    int8 = bare_session(manifest.path_of(member.int8.file), 1)
    return interleave(
        lambda: bare_run(int8, images, DEFAULT_BATCH),
        lambda: bare_run(fp32, images, DEFAULT_BATCH),
        rounds=rounds,
    )


def int8_lines(manifest: ModelManifest, n_images: int, rounds: int) -> list[str]:
    """The INT8 table: speed-up on one thread and the recorded agreement, per member."""
    quantized = [m for m in manifest.ensemble.members if m.int8 is not None]
    if not quantized:
        return []
    lines = [
        "",
        (
            "INT8 variants (`lensflow train quantize`, static QDQ of the convolutions and their "
            "activations): rate ratio int8 / float32 of one-thread sessions, interleaved on "
            f"{n_images // 2} random cutouts, {rounds} rounds; agreement as recorded in the "
            "manifest on its held-out set (Spearman of the scores, fraction on the same side of "
            "the threshold, TPR10 of both)."
        ),
        "",
        (
            "| member | speed-up int8/fp32 | load | Spearman | same side | AUROC fp32 / int8 "
            "| TPR10 fp32 / int8 | held-out set |"
        ),
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for member in quantized:
        assert member.int8 is not None
        a = member.int8.agreement
        timed = bench_int8(member, manifest, n_images // 2, rounds)
        low, high = timed.round_ratios
        lines.append(
            f"| {member.name} | {timed.ratio:.2f} [{low:.2f}-{high:.2f}] | {timed.load_text()} | "
            f"{a.get('spearman', float('nan')):.4f} | "
            f"{a.get('agreement_at_threshold', float('nan')):.4f} | "
            f"{a.get('auroc_float32', float('nan')):.4f} / {a.get('auroc_int8', float('nan')):.4f} | "
            f"{a.get('tpr10_float32', float('nan')):.3f} / {a.get('tpr10_int8', float('nan')):.3f} | "
            f"{a.get('n_lenses', 0):,} lenses, {a.get('n_non_lenses', 0):,} non-lenses |"
        )
    return lines


BATCH_BEFORE = 256
"""The CPU batch before DEFAULT_BATCH (the batch-size table compares the two)."""


def bench_batch(
    manifest: ModelManifest, member: EnsembleMember, n_images: int, rounds: int
) -> Interleaved:
    """A one-thread session at DEFAULT_BATCH (A) against the same at BATCH_BEFORE (B)."""
    shape = (n_images, len(member.bands), member.size, member.size)
    images = np.random.default_rng(3).normal(0.0, 5.0, size=shape).astype(np.float32)
    session = bare_session(manifest.path_of(member.file), 1)
    return interleave(
        lambda: bare_run(session, images, DEFAULT_BATCH),
        lambda: bare_run(session, images, BATCH_BEFORE),
        rounds=rounds,
    )


def batch_lines(manifest: ModelManifest, n_images: int, rounds: int) -> list[str]:
    """One-thread sessions at DEFAULT_BATCH (A) against BATCH_BEFORE (B), per member."""
    lines = [
        "",
        (
            f"Batch size: rate ratio of one-thread sessions at {DEFAULT_BATCH} cutouts per run "
            f"against {BATCH_BEFORE}, interleaved on {n_images} random cutouts, {rounds} rounds "
            "(above 1: the smaller batch is faster)."
        ),
        "",
        f"| member | img/s at {DEFAULT_BATCH} | img/s at {BATCH_BEFORE} | rate ratio | load |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for member in manifest.ensemble.members:
        timed = bench_batch(manifest, member, n_images, rounds)
        low, high = timed.round_ratios
        lines.append(
            f"| {member.name} | {n_images / timed.lensflow_median:,.0f} | "
            f"{n_images / timed.bare_median:,.0f} | {timed.ratio:.2f} [{low:.2f}-{high:.2f}] | "
            f"{timed.load_text()} |"
        )
    return lines


def bench_photometry(
    manifest: ModelManifest, n_rows: int, rounds: int
) -> tuple[Interleaved, float]:
    """lensflow vs bare (interleaved) and the bare one-thread rows/s of the photometry gate."""
    rng = np.random.default_rng(1)
    mags = rng.uniform(18.0, 24.0, size=(n_rows, len(manifest.photometry.features)))
    mags = mags.astype(np.float32)
    path = manifest.path_of(manifest.photometry.file)
    session = bare_session(path, os.cpu_count() or 1)
    result = interleave(
        lambda: score_photometry(mags, manifest=manifest),
        lambda: bare_run(session, mags, PHOTOMETRY_BATCH),
        rounds=rounds,
    )
    single = bare_session(path, 1)
    one = n_rows / best_seconds(lambda: bare_run(single, mags, PHOTOMETRY_BATCH), repeats=3)
    return result, one


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", type=Path, default=ROOT / "models" / "manifest.toml")
    parser.add_argument("--images", type=int, default=2048)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args([] if argv is None else argv)
    manifest = load_manifest(args.manifest, verify=True)
    threads = os.cpu_count() or 1
    members = [
        (m.name, m.flops or 0, *bench_member(manifest, m, args.images, args.rounds))
        for m in manifest.ensemble.members
    ]
    photometry, one = bench_photometry(manifest, args.rows, args.rounds)

    lines = [
        "# Ensemble and photometry throughput (CPU, ONNX Runtime)",
        "",
        (
            f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {machine()} (sessions at {threads} "
            f"intra-op threads; 'per core' = a bare one-thread session, best of 3); "
            f"onnxruntime {ort.__version__}; {args.images} random 64x64 cutouts in batches of "
            f"{DEFAULT_BATCH}; {args.rounds} rounds."
        ),
        "",
        CONVENTION,
        "",
        (
            "| member | MFLOP/image | score_cutouts img/s | bare ORT img/s | rate ratio | load "
            "| img/s per core |"
        ),
        "| --- | ---: | ---: | ---: | ---: | --- | ---: |",
    ]
    for name, flops, result, single in members:
        lines.append(
            f"| {name} | {flops / 1e6:.1f} | {args.images / result.lensflow_median:,.0f} | "
            f"{args.images / result.bare_median:,.0f} | {result.ratio_cell()} | "
            f"{result.load_text()} | {single:,.0f} |"
        )
    lines += [
        "",
        (
            f"| photometry ({manifest.photometry.name}) | score_photometry rows/s "
            "| bare ORT rows/s | rate ratio | load | rows/s per core |"
        ),
        "| --- | ---: | ---: | ---: | --- | ---: |",
        (
            f"| {args.rows:,} rows | {args.rows / photometry.lensflow_median:,.0f} | "
            f"{args.rows / photometry.bare_median:,.0f} | {photometry.ratio_cell()} | "
            f"{photometry.load_text()} | {one:,.0f} |"
        ),
    ]
    lines += batch_lines(manifest, args.images // 2, args.rounds)
    lines += int8_lines(manifest, args.images, args.rounds)
    write_result("ensemble", lines)
    rows = [
        summary_row(
            f"photometry MLP ({threads} threads)",
            photometry,
            items=args.rows,
            unit="rows/s",
            bare="ONNX Runtime",
        )
    ]
    rows += [
        summary_row(
            f"{name} member ({threads} threads)",
            result,
            items=args.images,
            unit="images/s",
            bare="ONNX Runtime",
        )
        for name, _, result, _ in members
    ]
    per_core = {name: round(single) for name, _, _, single in members}
    record("ensemble", rows, images_per_core=per_core, photometry_rows_per_core=round(one))


if __name__ == "__main__":
    main(sys.argv[1:])
