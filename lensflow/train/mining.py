"""Hard-negative mining: pools of simulated non-lenses scored by a member, the top added.

After a member's first fit, each round of [mining] simulates a pool of non-lenses in the
training set's mix and population (seed `mining.seed + round`, shared by every member and
kept under work/mining/), scores it with the member (torch, eval mode, batched, one store group
at a time), adds the `keep` highest-scoring to that member's training set (cumulative over the
rounds) and trains `epochs_per_round` more epochs from the member's weights. Each round has its
own checkpoint folder, checkpoints/<member>/round-<r>/, holding round.json: the kept ids and
scores (written before the fit, so a resumed round trains on the same cutouts) and, once
trained, the round's record: pool size, the kept ones' lowest score (the threshold), their
classes, the validation metrics. A killed run restarts at the round and epoch it reached.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from lensflow.cutouts import list_groups, read_group
from lensflow.evaluate.metrics import metrics_of
from lensflow.io import canonical_hash, write_text
from lensflow.labels import read_labels
from lensflow.surveys import Survey
from lensflow.train.config import PoolSet, TrainConfig
from lensflow.train.data import LabelledCutouts, ensure_cutout_set
from lensflow.train.loop import EVAL_BATCH, FitResult, FitSettings, fit, predict_logits
from lensflow.train.models import ProbabilityModel
from lensflow.train.options import MiningConfig

if TYPE_CHECKING:
    from distributed import Client

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Mined:
    """The top-scoring cutouts of a pool, by descending score (ties: ascending id).

    ids int64 (K,), scores float32 (K,) probabilities, images float32 (K, C, H, W) nJy;
    scored: the pool's size, above_half: how many of it scored >= 0.5.
    """

    ids: np.ndarray
    scores: np.ndarray
    images: np.ndarray
    scored: int
    above_half: int


def pool_set(config: TrainConfig, seed: int) -> PoolSet:
    """The pool of one round: non-lenses only, in the training set's mix and population."""
    mining = config.mining or MiningConfig()
    return PoolSet(
        n_lenses=0,
        n_non_lenses=mining.pool,
        seed=seed,
        mix=config.training_set.mix,
        population=config.training_set.population,
    )


def _top(ids: np.ndarray, scores: np.ndarray, keep: int) -> np.ndarray:
    """Rows of the `keep` highest scores, by descending score then ascending id."""
    order = np.lexsort((ids, -scores.astype(np.float64)))
    return order[:keep]


def top_scoring(
    model: ProbabilityModel,
    store: Path,
    *,
    keep: int,
    device: torch.device,
    batch: int = EVAL_BATCH,
) -> Mined:
    """Score every cutout of a store with model (eval mode) and keep the `keep` highest.

    One group is in memory at a time besides the kept cutouts.
    """
    model.to(device)
    scored = above_half = 0
    ids = np.empty(0, np.int64)
    scores = np.empty(0, np.float32)
    images: np.ndarray | None = None
    for group in list_groups(store):
        group_ids, group_images = read_group(store, group)
        logits = predict_logits(model, group_images, device=device, batch=batch)
        probability = torch.sigmoid(torch.from_numpy(logits)).numpy()
        scored += int(probability.size)
        above_half += int((probability >= 0.5).sum())
        ids = np.concatenate([ids, group_ids])
        scores = np.concatenate([scores, probability])
        held = group_images if images is None else np.concatenate([images, group_images])
        rows = _top(ids, scores, keep)
        ids, scores, images = ids[rows], scores[rows], held[rows]
    if images is None:
        raise ValueError(f"{store}: no cutouts to score")
    return Mined(ids=ids, scores=scores, images=images, scored=scored, above_half=above_half)


def read_rows(store: Path, wanted: np.ndarray) -> np.ndarray:
    """The images of the ids `wanted` (int64 (K,)) from a store, in that order."""
    found_ids: list[np.ndarray] = []
    found: list[np.ndarray] = []
    for group in list_groups(store):
        ids, images = read_group(store, group)
        hit = np.isin(ids, wanted)
        found_ids.append(ids[hit])
        found.append(images[hit])
    ids = np.concatenate(found_ids)
    images = np.concatenate(found)
    position = {int(i): k for k, i in enumerate(ids)}
    missing = [int(i) for i in wanted if int(i) not in position]
    if missing:
        raise ValueError(f"{store}: ids {missing[:5]} not found")
    return images[[position[int(i)] for i in wanted]]


def validation_metrics(
    model: ProbabilityModel, val: LabelledCutouts, result: FitResult, *, device: torch.device
) -> dict[str, Any]:
    """AUROC, TPR0, TPR10 (with the set's counts) and the best loss on the validation rows."""
    model.to(device)
    logits = predict_logits(model, val.images, device=device)
    values: dict[str, Any] = dict(metrics_of(logits, val.labels.is_lens).as_dict())
    return values | {"val_loss": result.best_val_loss}


def mine(
    model: ProbabilityModel,
    *,
    train: LabelledCutouts,
    val: LabelledCutouts,
    images: Tensor | None,
    settings: FitSettings,
    config: TrainConfig,
    survey: Survey,
    device: torch.device,
    tag: str,
    folder: Path,
    client: Client | None = None,
) -> list[dict[str, Any]]:
    """Run the config's mining rounds on a fitted member; the record of each round.

    model: the member after its first fit (ends holding the last round's best weights).
    images: train.images already on the device, or None. folder: the member's checkpoints.
    """
    mining = config.mining
    if mining is None:
        return []
    base = train.images if images is None else images
    mined_images: list[np.ndarray] = []
    mined_ids: list[tuple[int, int]] = []
    records: list[dict[str, Any]] = []
    for number, seed in enumerate(mining.seeds(), start=1):
        round_folder = folder / f"round-{number}"
        state_file = round_folder / "round.json"
        store, labels = ensure_cutout_set(
            pool_set(config, seed),
            config.work / "mining" / f"pool-{seed}",
            survey=survey,
            workers=config.simulation_workers,
            client=client,
        )
        state: dict[str, Any] = json.loads(state_file.read_text()) if state_file.is_file() else {}
        if (state.get("tag"), state.get("pool_seed"), state.get("pool")) != (
            tag,
            seed,
            mining.pool,
        ):
            state = _choose(model, store, labels, mining=mining, seed=seed, device=device)
            state["tag"] = tag
            round_folder.mkdir(parents=True, exist_ok=True)
            write_text(state_file, json.dumps(state, indent=2) + "\n")
        kept = np.asarray(state["kept_ids"], dtype=np.int64)
        mined_images.append(read_rows(store, kept))
        mined_ids += [(seed, int(i)) for i in kept]
        extra = torch.from_numpy(np.concatenate(mined_images)).to(base.device)
        inputs = torch.cat([torch.as_tensor(base), extra])
        targets = np.concatenate([train.labels.is_lens, np.zeros(extra.shape[0], dtype=bool)])
        round_settings = dataclasses.replace(
            settings,
            epochs=mining.epochs_per_round,
            lr=settings.lr * mining.lr_scale,
            seed=settings.seed + 1000 * number,
        )
        round_tag = canonical_hash(
            {
                "base": tag,
                "round": number,
                "mined": mined_ids,
                "settings": dataclasses.asdict(round_settings),
            }
        )
        result = fit(
            model,
            (inputs, targets),
            (val.images, val.labels.is_lens),
            settings=round_settings,
            device=device,
            checkpoints=round_folder,
            tag=round_tag,
            max_seconds=mining.max_seconds,
        )
        del inputs, extra
        record = {k: v for k, v in state.items() if k not in ("kept_ids", "kept_scores", "tag")}
        record["round"] = number
        record |= {
            "n_train": int(targets.size),
            "epochs_run": result.epochs_run,
            "stopped_by": result.stopped_by,
            "seconds": round(result.seconds, 1),
            "validation": validation_metrics(model, val, result, device=device),
        }
        logger.info("mining round %d of %s: %s", number, folder.name, record)
        records.append(record)
    return records


def _choose(
    model: ProbabilityModel,
    store: Path,
    labels: Path,
    *,
    mining: MiningConfig,
    seed: int,
    device: torch.device,
) -> dict[str, Any]:
    """Score a pool and choose its top `keep`: the round's state before its fit."""
    top = top_scoring(model, store, keep=mining.keep, device=device)
    truth = read_labels(labels)
    classes = truth.classes if truth.classes is not None else np.full(truth.ids.size, "unknown")
    by_id = dict(zip(truth.ids.tolist(), classes.tolist(), strict=True))
    counts = Counter(str(by_id[int(i)]) for i in top.ids)
    return {
        "pool_seed": seed,
        "pool": mining.pool,
        "pool_scored": top.scored,
        "pool_above_half": top.above_half,
        "kept": int(top.ids.size),
        "threshold": float(top.scores[-1]),
        "top_score": float(top.scores[0]),
        "classes": dict(counts.most_common()),
        "kept_ids": [int(i) for i in top.ids],
        "kept_scores": [float(s) for s in top.scores],
    }
