"""A partition's survivors scored block by block, the next block's cutouts read while one scores.

Survivors are read from the cutout store in blocks of READ_BLOCKS scoring batches (128
cutouts at the CPU batch of 32; 4,096 at a GPU's 1,024). With more than one block, a reader
thread reads the next block while the sessions score this one, so a GPU is not left waiting for
Zarr decoding, and a worker holds at most two blocks of images however large its partition.
Each block is checked for non-finite pixels, scored by the ensemble and, where the scan runs
them, modelled by the lens-modelling networks; the blocks' results are joined in id order.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from lensflow.cutouts import Cutouts, read_cutout_blocks
from lensflow.ensemble import ENSEMBLE, P_LENS, score_cutouts
from lensflow.modelling import ERR_SUFFIX, modelling_columns, predict_lenses
from lensflow.sessions import runs_on_gpu

if TYPE_CHECKING:
    from lensflow.scan.stages import StageContext

READ_BLOCKS = 4
"""Scoring batches per block of cutouts read."""


@dataclass(frozen=True)
class Scored:
    """The survivors scored: ids (ascending) with their scores and lens-model columns.

    scores: float32 (N,) per member, "ensemble" and (with a calibration) "p_lens"; lens_model:
    float64 (N,) per modelling column, NaN below the modelling min_score (None: not run);
    rejected: survivors set aside (missing_cutout, bad_cutout); seconds: reading (the time
    spent waiting for blocks), ensemble and modelling.
    """

    ids: np.ndarray
    scores: dict[str, np.ndarray]
    lens_model: dict[str, np.ndarray] | None
    rejected: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def scoring_batch(context: StageContext) -> int:
    """Cutouts per ONNX Runtime run: the GPU batch where sessions run on CUDA, else the CPU's."""
    return context.gpu_batch_size if runs_on_gpu() else context.batch_size


def score_survivors(ids: np.ndarray, *, group: str, context: StageContext) -> Scored:
    """Read, check, score and model the cutouts of the survivors' ids (int64 (N,)) of a group."""
    batch = scoring_batch(context)
    names = [m.name for m in context.manifest.ensemble.members]
    keys = [*names, ENSEMBLE, *([P_LENS] if context.manifest.ensemble.calibration else [])]
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ["id", *keys]}
    models: list[dict[str, np.ndarray]] = []
    rejected = {"missing_cutout": 0, "bad_cutout": 0}
    seconds = {"cutouts": 0.0, "ensemble": 0.0, "modelling": 0.0}
    for cutouts, waited in _blocks(context, group, ids, block=READ_BLOCKS * batch):
        seconds["cutouts"] += waited
        rejected["missing_cutout"] += int(cutouts.missing.size)
        images, found = cutouts.images, cutouts.ids
        finite = np.isfinite(images).all(axis=(1, 2, 3))
        if not finite.all():
            rejected["bad_cutout"] += int((~finite).sum())
            images, found = images[finite], found[finite]
        if not found.size:
            continue
        tick = time.perf_counter()
        scores = score_cutouts(
            images, manifest=context.manifest, batch=batch, prior_lens_rate=context.prior_lens_rate
        )
        scored = time.perf_counter()
        seconds["ensemble"] += scored - tick
        lens_model = _model_lenses(images, scores[ENSEMBLE], context, batch=batch)
        seconds["modelling"] += time.perf_counter() - scored
        parts["id"].append(found)
        for key in keys:
            parts[key].append(scores[key])
        if lens_model is not None:
            models.append(lens_model)
    joined = {k: np.concatenate(v) if v else np.empty(0, np.float32) for k, v in parts.items()}
    found_ids = joined.pop("id").astype(np.int64)
    lens_model = None
    if context.modelling is not None:
        columns = modelling_columns(context.modelling)
        lens_model = {
            c: np.concatenate([m[c] for m in models]) if models else np.empty(0) for c in columns
        }
    if context.modelling is None:
        seconds.pop("modelling")
    return Scored(
        ids=found_ids,
        scores=joined,
        lens_model=lens_model,
        rejected={k: v for k, v in rejected.items() if v},
        seconds=seconds,
    )


def _blocks(
    context: StageContext, group: str, ids: np.ndarray, *, block: int
) -> Iterator[tuple[Cutouts, float]]:
    """(cutouts, seconds waited for them) per block; the next block read ahead when there is
    more than one. No ids: nothing is read."""
    if not ids.size:
        return
    blocks = read_cutout_blocks(context.cutouts, group, ids, block=block)
    if np.unique(ids).size <= block:
        tick = time.perf_counter()
        first = next(blocks)
        yield first, time.perf_counter() - tick
        return
    with ThreadPoolExecutor(1, thread_name_prefix="cutouts-read-ahead") as reader:
        pending = reader.submit(next, blocks, None)
        while True:
            tick = time.perf_counter()
            cutouts = pending.result()
            waited = time.perf_counter() - tick
            if cutouts is None:
                return
            pending = reader.submit(next, blocks, None)
            yield cutouts, waited


def _model_lenses(
    images: np.ndarray, ensemble_score: np.ndarray, context: StageContext, *, batch: int
) -> dict[str, np.ndarray] | None:
    """The modelling columns, float64 (N,) each, NaN where ensemble_score < modelling_min_score;
    None when the scan does not run the modelling networks. images float32 (N, bands, H, W)."""
    modelling = context.modelling
    if modelling is None:
        return None
    n = len(ensemble_score)
    columns = {name: np.full(n, np.nan) for name in modelling_columns(modelling)}
    chosen = np.flatnonzero(np.asarray(ensemble_score) >= context.modelling_min_score)
    if chosen.size:
        predicted = predict_lenses(images[chosen], modelling=modelling, batch=batch)
        for name in predicted.names:
            mean, sigma = predicted.column(name)
            columns[name][chosen] = mean
            columns[name + ERR_SUFFIX][chosen] = sigma
    return columns
