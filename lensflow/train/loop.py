"""The training loop shared by every network: seeded, checkpointed per epoch, early-stopped.

Each epoch draws its shuffle, augmentation and dropout from seeds made of (seed, epoch), so an
epoch run after a resume is the epoch an uninterrupted run would have run. A checkpoint holds
the weights, optimizer and schedule after each epoch (torch.save; read back with
weights_only=True) and the best weights so far by validation loss.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from lensflow.errors import TrainingError
from lensflow.evaluate.metrics import auroc
from lensflow.io import write_atomic
from lensflow.train.config import Device, Precision
from lensflow.train.data import augment, batch_rows
from lensflow.train.models import ProbabilityModel
from lensflow.train.randomise import Randomisation, randomise

logger = logging.getLogger(__name__)

EVAL_BATCH = 512


@dataclass(frozen=True)
class FitSettings:
    """Optimisation settings of one training run.

    precision "bfloat16" autocasts the forward pass on CUDA (float32 elsewhere); channels_last
    holds convolution activations in NHWC; randomise: domain randomisation of each training
    batch after augmentation (lensflow.train.randomise), None for none.
    """

    epochs: int
    patience: int
    batch_size: int
    lr: float
    weight_decay: float
    seed: int
    augment: bool
    precision: Precision = "float32"
    channels_last: bool = False
    randomise: Randomisation | None = None


@dataclass(frozen=True)
class FitResult:
    """What a run did: epochs run, the best epoch and its validation loss/AUROC, the history.

    seconds: wall time of this call; images_per_second: mean training throughput over the
    epochs of the history (the first left out when there are more, as it warms up the kernels).
    stopped_by: "epochs", "patience", "budget" (as many epochs as max_seconds allows), "time"
    (past max_seconds before that) or "resumed" (a finished run read back).
    """

    epochs_run: int
    best_epoch: int
    best_val_loss: float
    best_val_auroc: float
    resumed_at: int
    history: tuple[Mapping[str, float], ...]
    seconds: float = float("nan")
    images_per_second: float = float("nan")
    stopped_by: str = "epochs"


def resolve_device(device: Device) -> torch.device:
    """cpu, cuda, or cuda when present for "auto"."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise TrainingError("device = 'cuda' but torch finds no CUDA device; use 'cpu' or 'auto'")
    return torch.device(device)


def make_deterministic(threads: int | None, *, deterministic: bool = True) -> None:
    """Deterministic kernels (where torch has them) and a fixed intra-op thread count.

    With deterministic False: cuDNN autotuning and TF32 matmuls instead (faster on GPUs).
    """
    if threads is not None:
        torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(deterministic, warn_only=True)
    torch.backends.cudnn.benchmark = not deterministic
    torch.backends.cudnn.allow_tf32 = not deterministic
    torch.backends.cuda.matmul.allow_tf32 = not deterministic


def _epoch_seed(seed: int, epoch: int) -> int:
    return (seed * 100_003 + epoch * 7919) % (2**62)


def _checkpoint_path(folder: Path, epoch: int) -> Path:
    return folder / f"epoch-{epoch:03d}.pt"


def _latest_checkpoint(folder: Path) -> Path | None:
    found = sorted(folder.glob("epoch-[0-9][0-9][0-9].pt"))
    return found[-1] if found else None


def _save(state: Mapping[str, Any], path: Path) -> None:
    """torch.save to a temporary file, then rename: a reader never sees half a checkpoint."""
    write_atomic(path, lambda tmp: torch.save(dict(state), tmp))


def _autocast(device: torch.device, precision: Precision) -> torch.autocast:
    """bfloat16 autocast on CUDA when asked for; a disabled one otherwise."""
    enabled = precision == "bfloat16" and device.type == "cuda"
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=enabled)


def _on_device(values: np.ndarray | Tensor, device: torch.device) -> Tensor:
    """A tensor on device (no copy when it is there already; shares a CPU array's memory)."""
    if isinstance(values, Tensor):
        return values.to(device)
    return torch.from_numpy(np.ascontiguousarray(values)).to(device)


def predict_logits(
    model: ProbabilityModel,
    inputs: np.ndarray | Tensor,
    *,
    device: torch.device,
    batch: int = EVAL_BATCH,
    precision: Precision = "float32",
    channels_last: bool = False,
) -> np.ndarray:
    """Logits float32 (N,) of inputs (N, ...) in batches, without gradients, in eval mode.

    The logits stay on the device until the end: one copy to the host per call.
    """
    model.train(False)
    out: list[Tensor] = []
    with torch.no_grad(), _autocast(device, precision):
        for start in range(0, inputs.shape[0], batch):
            x = _on_device(inputs[start : start + batch], device)
            if channels_last and x.ndim == 4:
                x = x.contiguous(memory_format=torch.channels_last)
            out.append(model.logits(x).float())
    if not out:
        return np.empty(0, dtype=np.float32)
    return torch.cat(out).cpu().numpy()


def _bce(logits: np.ndarray, labels: np.ndarray) -> float:
    """Mean binary cross-entropy of logits (N,) against labels bool (N,)."""
    z = torch.from_numpy(logits.astype(np.float32))
    return float(
        nn.functional.binary_cross_entropy_with_logits(z, torch.from_numpy(labels).float())
    )


def fit(
    model: ProbabilityModel,
    train: tuple[np.ndarray | Tensor, np.ndarray],
    val: tuple[np.ndarray | Tensor, np.ndarray],
    *,
    settings: FitSettings,
    device: torch.device,
    checkpoints: Path | None = None,
    tag: str = "",
    max_seconds: float | None = None,
) -> FitResult:
    """Train model on (inputs, is_lens) with AdamW + cosine schedule; keep the best weights.

    Stops after settings.epochs or when validation loss has not improved for patience epochs.
    The inputs move to the device once; shuffling and augmentation run there, and the only
    host synchronisation is the validation after each epoch. With checkpoints, resumes from the
    latest epoch saved there (refusing one whose tag, the fingerprint of data and settings,
    differs) and saves every epoch. With max_seconds, the first epoch's time sets how many
    epochs fit (at most settings.epochs) and the cosine schedule ends there ("budget"); a
    later epoch that passes max_seconds ends the run early ("time"), resumable. The model ends
    holding the best weights by validation loss.
    """
    began = time.perf_counter()
    model.to(device)
    if settings.channels_last:
        model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    optimizer = torch.optim.AdamW(
        model.parameters(),
        lr=settings.lr,
        weight_decay=settings.weight_decay,
        fused=device.type == "cuda",
    )
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=settings.epochs, eta_min=settings.lr / 50
    )
    history: list[dict[str, float]] = []
    best: dict[str, Any] = {"epoch": 0, "val_loss": float("inf"), "val_auroc": float("nan")}
    best_state: Mapping[str, Tensor] = _copy_state(model)
    start = 0
    horizon = settings.epochs
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
            horizon = int(state.get("horizon", settings.epochs))
            logger.info("%s: resuming after epoch %d", checkpoints, start)
            if state["stopped"]:
                return _finish(model, best_state, history, best, start, start, began, "resumed")
    train_x = _on_device(train[0], device)
    targets = torch.from_numpy(np.asarray(train[1], dtype=np.float32)).to(device)
    val_x = _on_device(val[0], device)
    val_y = np.asarray(val[1], dtype=bool)
    epoch = start
    stopped_by = "epochs"
    while epoch < horizon:
        epoch += 1
        seed = _epoch_seed(settings.seed, epoch)
        torch.manual_seed(seed)
        generator = torch.Generator(device=device).manual_seed(seed)
        model.train(True)
        tick = time.perf_counter()
        total = torch.zeros((), device=device)
        seen = 0
        for rows in batch_rows(train_x.shape[0], settings.batch_size, generator):
            x = train_x[rows]
            if settings.augment:
                x = augment(x, generator)
            if settings.randomise is not None:
                x = randomise(x, generator, settings=settings.randomise)
            if settings.channels_last and x.ndim == 4:
                x = x.contiguous(memory_format=torch.channels_last)
            with _autocast(device, settings.precision):
                logits = model.logits(x)
            loss = nn.functional.binary_cross_entropy_with_logits(logits.float(), targets[rows])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
            total += loss.detach() * rows.numel()
            seen += rows.numel()
        train_loss = float(total) / max(seen, 1)  # waits for the epoch's kernels
        train_seconds = time.perf_counter() - tick
        schedule.step()
        logits_val = predict_logits(
            model,
            val_x,
            device=device,
            batch=max(EVAL_BATCH, settings.batch_size),
            precision=settings.precision,
            channels_last=settings.channels_last,
        )
        row = {
            "epoch": float(epoch),
            "train_loss": train_loss,
            "val_loss": _bce(logits_val, val_y),
            "val_auroc": auroc(logits_val, val_y),
            "train_seconds": train_seconds,
            "images_per_second": seen / max(train_seconds, 1e-9),
        }
        history.append(row)
        logger.info(
            "%s epoch %d: train loss %.4f, val loss %.4f, val AUROC %.4f, %.0f images/s",
            checkpoints if checkpoints is not None else tag,
            epoch,
            row["train_loss"],
            row["val_loss"],
            row["val_auroc"],
            row["images_per_second"],
        )
        if row["val_loss"] < best["val_loss"]:
            best = {"epoch": epoch, "val_loss": row["val_loss"], "val_auroc": row["val_auroc"]}
            best_state = _copy_state(model)
        elapsed = time.perf_counter() - began
        if epoch == 1 and max_seconds is not None and elapsed * horizon > max_seconds:
            horizon = max(1, int(max_seconds // elapsed))
            schedule.T_max = horizon
            logger.info(
                "%s: %d epochs fit in %.0f s; the schedule ends there", tag, horizon, max_seconds
            )
        if epoch >= horizon:
            stopped_by = "epochs" if horizon == settings.epochs else "budget"
        elif epoch - int(best["epoch"]) >= settings.patience:
            stopped_by = "patience"
        elif max_seconds is not None and elapsed >= max_seconds:
            stopped_by = "time"
        else:
            stopped_by = ""
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
                    "horizon": horizon,
                    "stopped": stopped_by in ("epochs", "budget", "patience"),
                },
                _checkpoint_path(checkpoints, epoch),
            )
        if stopped_by:
            if stopped_by == "time":
                logger.info("%s: stopping after epoch %d, past %.0f s", tag, epoch, max_seconds)
            break
    return _finish(model, best_state, history, best, epoch, start, began, stopped_by or "epochs")


def _copy_state(model: nn.Module) -> dict[str, Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _finish(
    model: ProbabilityModel,
    best_state: Mapping[str, Tensor],
    history: list[dict[str, float]],
    best: Mapping[str, Any],
    epochs_run: int,
    resumed_at: int,
    began: float,
    stopped_by: str,
) -> FitResult:
    """Load the best weights back (in the standard memory layout) and sum up the run."""
    model.load_state_dict(best_state)
    model.to(memory_format=torch.contiguous_format)  # type: ignore[call-overload]
    rates = [h["images_per_second"] for h in history if "images_per_second" in h]
    if len(rates) > 1:
        rates = rates[1:]
    return FitResult(
        epochs_run=epochs_run,
        best_epoch=int(best["epoch"]),
        best_val_loss=float(best["val_loss"]),
        best_val_auroc=float(best["val_auroc"]),
        resumed_at=resumed_at,
        history=tuple(history),
        seconds=time.perf_counter() - began,
        images_per_second=float(np.mean(rates)) if rates else float("nan"),
        stopped_by=stopped_by,
    )
