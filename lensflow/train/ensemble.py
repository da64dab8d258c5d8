"""Train the CNN ensemble members, export them, and evaluate them on a held-out set.

Each member trains from its own seed with per-epoch checkpoints under checkpoints/<name>/, so a
rerun of the same config resumes where it stopped and a finished member is only re-exported.
"""

from __future__ import annotations

import dataclasses
import logging
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lensflow.ensemble import DEFAULT_BATCH, load_session, run_batched
from lensflow.errors import ModelMismatchError
from lensflow.evaluate import (
    ENSEMBLE,
    EvaluationReport,
    build_report,
    write_plots,
    write_report_json,
)
from lensflow.registry import EnsembleModels, sha256_of
from lensflow.train.config import MemberConfig, TrainConfig, TrainingError
from lensflow.train.data import LabelledCutouts, ensure_cutout_set, load_cutouts, split_validation
from lensflow.train.export import export_onnx, write_manifest
from lensflow.train.loop import FitSettings, fingerprint, fit, make_deterministic, resolve_device
from lensflow.train.models import build_cnn, count_flops, normalisation_text

logger = logging.getLogger(__name__)


def _settings(config: TrainConfig, member: MemberConfig) -> FitSettings:
    return FitSettings(
        epochs=member.epochs or config.epochs,
        patience=config.patience,
        batch_size=config.batch_size,
        lr=member.lr or config.lr,
        weight_decay=config.weight_decay,
        seed=member.seed,
        augment=True,
    )


def train_member(
    member: MemberConfig,
    train: LabelledCutouts,
    val: LabelledCutouts,
    *,
    config: TrainConfig,
    device: torch.device,
) -> dict[str, Any]:
    """Train (or resume) one member, export its ONNX file; its manifest entry, less metrics."""
    settings = _settings(config, member)
    tag = fingerprint(
        {
            "member": member.model_dump(),
            "settings": dataclasses.asdict(settings),
            "data": config.training_set.spec(),
            "validation_fraction": config.validation_fraction,
        }
    )
    torch.manual_seed(member.seed)
    info = train.info
    model = build_cnn(member.architecture, info.bands)
    result = fit(
        model,
        (train.images, train.labels.is_lens),
        (val.images, val.labels.is_lens),
        settings=settings,
        device=device,
        checkpoints=config.checkpoint_folder / member.name,
        tag=tag,
    )
    file = f"{member.name}.onnx"
    path = config.output / file
    zeros = np.zeros((2, *val.images.shape[1:]), dtype=np.float32)
    export_onnx(model, path, kind="cnn", example=val.images[:5], check=[zeros, val.images[:64]])
    return {
        "name": member.name,
        "file": file,
        "sha256": sha256_of(path),
        "bands": list(info.bands),
        "size": info.cutout_size,
        "pixel_scale_arcsec": info.pixel_scale_arcsec,
        "units": info.units,
        "normalisation": normalisation_text(info.bands),
        "flops": count_flops(model, val.images.shape[1:]),
        "version": config.version,
        "training": {
            **config.training_set.spec(),
            "architecture": member.architecture,
            "seed": member.seed,
            "epochs": settings.epochs,
            "epochs_run": result.epochs_run,
            "best_epoch": result.best_epoch,
            "best_val_loss": result.best_val_loss,
            "best_val_auroc": result.best_val_auroc,
            "batch_size": settings.batch_size,
            "lr": settings.lr,
            "validation_fraction": config.validation_fraction,
            "n_train": int(train.labels.ids.size),
            "n_val": int(val.labels.ids.size),
        },
    }


def evaluate_members(
    manifest: Path, test: LabelledCutouts, *, batch: int = DEFAULT_BATCH
) -> EvaluationReport:
    """Every member of a manifest's ensemble, and their mean, scored on a labelled set."""
    with Path(manifest).open("rb") as f:
        ensemble = EnsembleModels.model_validate(tomllib.load(f)["ensemble"])
    scores: dict[str, np.ndarray] = {}
    folder = Path(manifest).parent.resolve()
    for member in ensemble.members:
        path = (folder / member.file).resolve()
        if not path.is_relative_to(folder):
            raise ModelMismatchError(f"{member.file!r}: model files must lie inside {folder}")
        session = load_session(path, member.sha256)
        scores[member.name] = run_batched(session, test.images, batch=batch)
    scores[ENSEMBLE] = np.mean(np.stack(list(scores.values())), axis=0).astype(np.float32)
    return build_report(test.labels, scores, threshold=ensemble.threshold)


def train_ensemble(config: TrainConfig | Path) -> Path:
    """Train every member of the config, export and evaluate them; returns the manifest path.

    Writes output/<member>.onnx, merges the members and threshold into output/manifest.toml,
    and with a test set, each member's and the ensemble's metrics, the report JSON and plots.
    """
    if not isinstance(config, TrainConfig):
        config = TrainConfig.from_toml(Path(config))
    make_deterministic(config.threads)
    device = resolve_device(config.device)
    store, labels = ensure_cutout_set(
        config.training_set, config.work / "train-set", workers=config.simulation_workers
    )
    data = load_cutouts(store, labels)
    if not data.labels.is_lens.any() or data.labels.is_lens.all():
        raise TrainingError(f"{store}: training needs both lenses and non-lenses")
    fit_rows, val_rows = split_validation(
        data.labels.is_lens, fraction=config.validation_fraction, seed=config.training_set.seed
    )
    train, val = data.subset(fit_rows), data.subset(val_rows)
    del data
    entries = [
        train_member(member, train, val, config=config, device=device) for member in config.members
    ]
    manifest = write_manifest(
        config.output / "manifest.toml", members=entries, threshold=config.threshold
    )
    if config.test_set is None:
        return manifest
    del train, val
    test_store, test_labels = ensure_cutout_set(
        config.test_set, config.work / "test-set", workers=config.simulation_workers
    )
    report = evaluate_members(manifest, load_cutouts(test_store, test_labels))
    with manifest.open("rb") as f:
        members = tomllib.load(f)["ensemble"]["members"]
    test_spec = config.test_set.spec()
    for member in members:
        member["metrics"] = {**report.metrics[member["name"]].as_dict(), "test_set": test_spec}
    summary: Mapping[str, Any] = {**report.as_dict()[ENSEMBLE], "test_set": test_spec}
    write_manifest(manifest, members=members, ensemble_metrics=summary)
    write_report_json(report, config.report_folder / "ensemble.json")
    write_plots(report, config.report_folder)
    logger.info("ensemble on the test set: %s", report.as_dict()[ENSEMBLE])
    return manifest
