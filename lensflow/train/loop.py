"""The training loop shared by every network: seeded, checkpointed per epoch, early-stopped.

Each epoch draws its shuffle, augmentation and dropout from seeds made of (seed, epoch), so an
epoch run after a resume is the epoch an uninterrupted run would have run. A checkpoint holds
the weights, optimizer and schedule after each epoch (torch.save; read back with
weights_only=True) and the best weights so far by validation loss.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from lensflow.evaluate import auroc
from lensflow.train.config import Device, TrainingError
from lensflow.train.data import augment, batch_rows
from lensflow.train.models import ProbabilityModel

logger = logging.getLogger(__name__)

EVAL_BATCH = 512


@dataclass(frozen=True)
class FitSettings:
    """Optimisation settings of one training run."""

    epochs: int
    patience: int
    batch_size: int
    lr: float
    weight_decay: float
    seed: int
    augment: bool


@dataclass(frozen=True)
class FitResult:
    """What a run did: epochs run, the best epoch and its validation loss/AUROC, the history."""

    epochs_run: int
    best_epoch: int
    best_val_loss: float
    best_val_auroc: float
    resumed_at: int
    history: tuple[Mapping[str, float], ...]


def resolve_device(device: Device) -> torch.device:
    """cpu, cuda, or cuda when present for "auto"."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise TrainingError("device = 'cuda' but torch finds no CUDA device; use 'cpu' or 'auto'")
    return torch.device(device)


def make_deterministic(threads: int | None) -> None:
    """Deterministic kernels (where torch has them) and a fixed intra-op thread count."""
    if threads is not None:
        torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False


def fingerprint(parts: Mapping[str, Any]) -> str:
    """A short stable hash of what a checkpoint was trained from (JSON of the parts)."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _epoch_seed(seed: int, epoch: int) -> int:
    return (seed * 100_003 + epoch * 7919) % (2**62)


def _checkpoint_path(folder: Path, epoch: int) -> Path:
    return folder / f"epoch-{epoch:03d}.pt"


def _latest_checkpoint(folder: Path) -> Path | None:
    found = sorted(folder.glob("epoch-[0-9][0-9][0-9].pt"))
    return found[-1] if found else None


def _save(state: Mapping[str, Any], path: Path) -> None:
    """torch.save to a temporary file, then rename: a reader never sees half a checkpoint."""
    tmp = path.with_suffix(".tmp")
    torch.save(dict(state), tmp)
    tmp.replace(path)


def predict_logits(
    model: ProbabilityModel, inputs: np.ndarray, *, device: torch.device
) -> np.ndarray:
    """Logits float32 (N,) of inputs (N, ...) in batches, without gradients, in eval mode."""
    model.train(False)
    out = np.empty(inputs.shape[0], dtype=np.float32)
    with torch.no_grad():
        for start in range(0, inputs.shape[0], EVAL_BATCH):
            x = torch.from_numpy(np.ascontiguousarray(inputs[start : start + EVAL_BATCH]))
            out[start : start + EVAL_BATCH] = model.logits(x.to(device)).float().cpu().numpy()
    return out


def _bce(logits: np.ndarray, labels: np.ndarray) -> float:
    """Mean binary cross-entropy of logits (N,) against labels bool (N,)."""
    z = torch.from_numpy(logits.astype(np.float32))
    return float(
        nn.functional.binary_cross_entropy_with_logits(z, torch.from_numpy(labels).float())
    )


def fit(
    model: ProbabilityModel,
    train: tuple[np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray],
    *,
    settings: FitSettings,
    device: torch.device,
    checkpoints: Path | None = None,
    tag: str = "",
) -> FitResult:
    """Train model on (inputs, is_lens) with AdamW + cosine schedule; keep the best weights.

    Stops after settings.epochs or when validation loss has not improved for patience epochs.
    With checkpoints, resumes from the latest epoch saved there (refusing one whose tag, the
    fingerprint of data and settings, differs) and saves every epoch. The model ends holding
    the best weights by validation loss.
    """
    train_x, train_y = train
    val_x, val_y = val
    model.to(device)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay
    )
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=settings.epochs, eta_min=settings.lr / 50
    )
    history: list[dict[str, float]] = []
    best: dict[str, Any] = {"epoch": 0, "val_loss": float("inf"), "val_auroc": float("nan")}
    best_state: Mapping[str, Tensor] = {
        k: v.detach().clone() for k, v in model.state_dict().items()
    }
    start = 0
    if checkpoints is not None:
        checkpoints.mkdir(parents=True, exist_ok=True)
        latest = _latest_checkpoint(checkpoints)
        if latest is not None:
            state = torch.load(latest, map_location=device, weights_only=True)
            if state["tag"] != tag:
                raise TrainingError(
                    f"{latest}: checkpoint of another config or data ({state['tag']} != {tag}); "
                    "remove that folder or name another checkpoint folder"
                )
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            schedule.load_state_dict(state["schedule"])
            history = [dict(h) for h in state["history"]]
            best = dict(state["best"])
            best_state = state["best_model"]
            start = int(state["epoch"])
            logger.info("%s: resuming after epoch %d", checkpoints, start)
            if state["stopped"]:
                model.load_state_dict(best_state)
                return _result(history, best, start, resumed_at=start)
    epoch = start
    targets = torch.from_numpy(train_y.astype(np.float32))
    for epoch in range(start + 1, settings.epochs + 1):
        seed = _epoch_seed(settings.seed, epoch)
        torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed)
        model.train(True)
        total, seen = 0.0, 0
        for rows in batch_rows(train_x.shape[0], settings.batch_size, generator):
            x = torch.from_numpy(train_x[rows])
            if settings.augment:
                x = augment(x, generator)
            y = targets[torch.from_numpy(rows)]
            loss = nn.functional.binary_cross_entropy_with_logits(
                model.logits(x.to(device)), y.to(device)
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
            total += float(loss.detach()) * rows.size
            seen += rows.size
        schedule.step()
        logits = predict_logits(model, val_x, device=device)
        row = {
            "epoch": float(epoch),
            "train_loss": total / max(seen, 1),
            "val_loss": _bce(logits, val_y),
            "val_auroc": auroc(logits, val_y),
        }
        history.append(row)
        logger.info(
            "%s epoch %d: train loss %.4f, val loss %.4f, val AUROC %.4f",
            checkpoints if checkpoints is not None else tag,
            epoch,
            row["train_loss"],
            row["val_loss"],
            row["val_auroc"],
        )
        if row["val_loss"] < best["val_loss"]:
            best = {"epoch": epoch, "val_loss": row["val_loss"], "val_auroc": row["val_auroc"]}
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        stopped = epoch >= settings.epochs or epoch - int(best["epoch"]) >= settings.patience
        if checkpoints is not None:
            _save(
                {
                    "tag": tag,
                    "epoch": epoch,
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "schedule": schedule.state_dict(),
                    "history": history,
                    "best": best,
                    "best_model": best_state,
                    "stopped": stopped,
                },
                _checkpoint_path(checkpoints, epoch),
            )
        if stopped:
            break
    model.load_state_dict(best_state)
    return _result(history, best, epoch, resumed_at=start)


def _result(
    history: list[dict[str, float]], best: Mapping[str, Any], epochs_run: int, *, resumed_at: int
) -> FitResult:
    return FitResult(
        epochs_run=epochs_run,
        best_epoch=int(best["epoch"]),
        best_val_loss=float(best["val_loss"]),
        best_val_auroc=float(best["val_auroc"]),
        resumed_at=resumed_at,
        history=tuple(history),
    )
