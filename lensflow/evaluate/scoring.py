"""Evaluate a models manifest on a labelled cutout store, scored as a scan would score it.

The store is read through `lensflow.cutouts` in blocks of whole groups (the next block read
while this one is scored), each member runs through ONNX Runtime sessions from
`lensflow.sessions`, and the ensemble score is `lensflow.ensemble.ensemble_score` of the members
(the manifest's fitted combination, with the plain mean beside it as "mean"; else the mean).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from lensflow.calibration import lens_probability
from lensflow.config import Precision
from lensflow.cutouts import group_length, list_groups, open_store, read_group
from lensflow.ensemble import (
    DEFAULT_BATCH,
    ENSEMBLE,
    MEAN,
    check_ensemble_inputs,
    ensemble_mean,
    ensemble_score,
)
from lensflow.errors import EvaluationError
from lensflow.evaluate.purity import PurityReport, purity_report
from lensflow.evaluate.report import EvaluationReport, build_report
from lensflow.labels import check_same_ids, read_labels
from lensflow.registry import ModelManifest, load_manifest
from lensflow.sessions import load_session, new_session, run_batched

logger = logging.getLogger(__name__)


def _blocks(
    store: Path, groups: Sequence[str], size: int, reader: Executor
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(ids, images) of consecutive groups joined into blocks of about `size` cutouts.

    The next block is read by reader while the caller works on this one.
    """
    batches: list[list[str]] = [[]]
    filled = 0
    for group in groups:
        if batches[-1] and filled >= size:
            batches.append([])
            filled = 0
        batches[-1].append(group)
        filled += group_length(store, group)

    def read(names: list[str]) -> tuple[np.ndarray, np.ndarray]:
        parts = [read_group(store, name) for name in names]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    pending = reader.submit(read, batches[0])
    for following in [*batches[1:], None]:
        block = pending.result()
        if following is not None:
            pending = reader.submit(read, following)
        yield block


def _member_sessions(models: ModelManifest, workers: int) -> dict[str, list[Any]]:
    """Each member's ONNX Runtime sessions: the cached one, or `workers` fresh ones.

    Concurrent runs of one session share its thread pool, so side-by-side scoring takes one
    session per thread, each with cpu_count / workers intra-op threads.
    """
    sessions: dict[str, list[Any]] = {}
    for m in models.ensemble.members:
        path = models.path_of(m.file)
        if workers == 1:
            sessions[m.name] = [load_session(path, m.sha256)]
        else:
            threads = max(1, (os.cpu_count() or 1) // workers)
            sessions[m.name] = [new_session(path, m.sha256, threads) for _ in range(workers)]
    return sessions


def _score_split(
    sessions: Sequence[Any], images: np.ndarray, *, batch: int, pool: Executor
) -> np.ndarray:
    """One member's probabilities (N,), the rows split among its sessions, run side by side."""
    images = np.ascontiguousarray(images, dtype=np.float32)
    per = -(-images.shape[0] // len(sessions))
    per = max(batch, -(-per // batch) * batch)
    slices = [images[start : start + per] for start in range(0, images.shape[0], per)]
    parts = pool.map(
        lambda job: run_batched(job[0], job[1], batch=batch), zip(sessions, slices, strict=False)
    )
    return np.concatenate(list(parts)) if slices else np.empty(0, np.float32)


def evaluate_store(
    store: Path,
    labels: Path,
    *,
    manifest: Path | None = None,
    batch: int = DEFAULT_BATCH,
    workers: int = 1,
    prior: float | None = None,
    precision: Precision = "float32",
) -> EvaluationReport:
    """Score every cutout of a store with each member and the ensemble; compute metrics.

    store: a Zarr cutout store, any groups; labels: Parquet with id, is_lens (and class).
    manifest: a models manifest (the shipped one when None). Every cutout id must have a label
    and every label a cutout. workers: ONNX Runtime sessions per member run side by side on
    parts of each block of cutouts, each with cpu_count / workers threads (small sessions scale
    better on many cores than one wide one). The report's score_seconds hold each member's
    scoring time. prior: a prior lens rate (0 < p < 1); with it the report holds the purity
    tables of p_lens (manifest with a calibration) or of the ensemble score. precision: the
    members' own files (float32) or their int8 variants.
    """
    store, labels = Path(store), Path(labels)
    models = load_manifest(manifest, verify=True, precision=precision)
    check_ensemble_inputs(models, open_store(store))
    truth = read_labels(labels)
    groups = list_groups(store)
    if not groups:
        raise EvaluationError(f"{store}: the store holds no cutout groups")
    workers = max(workers, 1)
    sessions = _member_sessions(models, workers)
    parts_ids: list[np.ndarray] = []
    parts_scores: dict[str, list[np.ndarray]] = {name: [] for name in sessions}
    seconds = dict.fromkeys(sessions, 0.0)
    with ThreadPoolExecutor(workers) as pool, ThreadPoolExecutor(1) as reader:
        for ids, images in _blocks(store, groups, 4 * batch * workers, reader):
            parts_ids.append(ids)
            for name, member_sessions in sessions.items():
                tick = time.perf_counter()
                parts_scores[name].append(
                    _score_split(member_sessions, images, batch=batch, pool=pool)
                )
                seconds[name] += time.perf_counter() - tick
    ids = np.concatenate(parts_ids)
    order = np.argsort(ids, kind="stable")
    check_same_ids(ids[order], truth, store=store, path=labels)
    members = {name: np.concatenate(parts)[order] for name, parts in parts_scores.items()}
    scores = {ENSEMBLE: ensemble_score(members, models=models.ensemble)}
    if models.ensemble.combination is not None:
        scores[MEAN] = ensemble_mean(members)
    scores |= members
    logger.info(
        "%s: %d cutouts scored, %s",
        store,
        ids.size,
        ", ".join(f"{n} {ids.size / max(t, 1e-9):.0f}/s" for n, t in seconds.items()),
    )
    report = build_report(truth, scores, threshold=models.ensemble.threshold)
    purity = None if prior is None else ensemble_purity(report, models, prior=prior)
    return dataclasses.replace(report, score_seconds=seconds, purity=purity)


def ensemble_purity(
    report: EvaluationReport, models: ModelManifest, *, prior: float
) -> PurityReport:
    """Purity tables of the report's ensemble at prior: of p_lens when the manifest has a
    calibration, else of the ensemble score itself."""
    calibration = models.ensemble.calibration
    values = report.scores[ENSEMBLE]
    p_lens = None if calibration is None else lens_probability(values, calibration, prior=prior)
    return purity_report(values, report.is_lens, prior=prior, p_lens=p_lens)
