"""`lensflow train modelling`: K lens-modelling networks, trained, exported, calibrated, evaluated.

The training set's lenses (lensflow.simulate, wide population, lenses only) are split into a
fit part and a validation part. Network k (seed + k) trains on the fit part with the Gaussian
negative log-likelihood, AdamW and a cosine schedule, random flips and transposes that turn
the parameters with the cutout, early stopping on the validation NLL, and a checkpoint after
every epoch (a rerun of the same config resumes; a finished network is only re-exported). The
ONNX files go to output/, with a `[modelling]` table in output/manifest.toml; with calibrate,
one sigma scale per parameter is fitted on the validation split (lensflow.evaluate.modelling).
The held-out sets (the test set, then the evaluation sets) are then modelled through
lensflow.modelling as a scan would, and their tables, JSON and figures written to reports/.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import tomli_w
import torch

from lensflow.errors import TrainingError
from lensflow.evaluate.modelling import (
    HeldOutLenses,
    build_modelling_report,
    evaluate_lens_store,
    fit_sigma_scales,
    load_lenses,
    write_modelling_reports,
    write_scatter_figure,
)
from lensflow.io import canonical_hash, file_digest, write_atomic, write_text
from lensflow.modelling import ModellingModels, combine, load_modelling, network_outputs
from lensflow.surveys import Survey, survey_profile
from lensflow.train.loop import make_deterministic
from lensflow.train.manifest import read_manifest_table
from lensflow.train.modelling_config import ModellingConfig
from lensflow.train.modelling_data import (
    check_survey,
    ensure_lens_set,
    simulation_seconds,
    split_rows,
)
from lensflow.train.modelling_net import (
    ModellingNet,
    export_modelling,
    flip_transpose,
    gaussian_nll,
)
from lensflow.train.models import count_flops, normalisation_text
from lensflow.train.plain import plain

logger = logging.getLogger(__name__)

EVAL_BATCH = 256


def build_network(config: ModellingConfig, survey: Survey) -> ModellingNet:
    """A fresh modelling network for the survey's bands (asinh scales from its sky noise)."""
    from lensflow.train.models import band_scales

    return ModellingNet(
        band_scales(survey),
        len(config.parameters),
        size=survey.cutout_size,
        widths=config.widths,
        blocks=config.blocks,
    )


def network_tag(config: ModellingConfig, k: int, survey: Survey) -> str:
    """The fingerprint of network k's fit: everything that changes its weights."""
    fields = config.model_dump(
        mode="json",
        include={
            "seed",
            "widths",
            "blocks",
            "parameters",
            "validation_fraction",
            "epochs",
            "patience",
            "batch_size",
            "lr",
            "weight_decay",
            "augment",
            "max_network_seconds",
        },
    )
    return canonical_hash(
        {"network": k, **fields, "data": config.training_set.spec(), "survey": survey.name}
    )


def _predict(model: ModellingNet, images: np.ndarray) -> np.ndarray:
    """Graph outputs float32 (N, 2 P) in eval mode, in batches, without gradients."""
    model.train(False)
    out = []
    with torch.no_grad():
        for start in range(0, images.shape[0], EVAL_BATCH):
            out.append(model(torch.from_numpy(images[start : start + EVAL_BATCH])))
    return torch.cat(out).numpy()


def _val_nll(model: ModellingNet, images: np.ndarray, truth: np.ndarray) -> float:
    model.train(False)
    total = 0.0
    with torch.no_grad():
        for start in range(0, images.shape[0], EVAL_BATCH):
            x = torch.from_numpy(images[start : start + EVAL_BATCH])
            t = torch.from_numpy(truth[start : start + EVAL_BATCH])
            total += float(gaussian_nll(model, x, t)) * x.shape[0]
    return total / int(images.shape[0])


def fit_network(
    model: ModellingNet,
    fit: HeldOutLenses,
    val: HeldOutLenses,
    *,
    config: ModellingConfig,
    seed: int,
    checkpoint: Path,
    tag: str,
) -> dict[str, Any]:
    """Train model (resuming from checkpoint when its tag matches); end with the best weights
    by validation NLL. Returns the run's summary (epochs, best epoch and NLL, seconds)."""
    began = time.perf_counter()
    roles = [p.role for p in config.parameters]
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=config.epochs, eta_min=config.lr / 50
    )
    state: dict[str, Any] = {"epoch": 0, "horizon": config.epochs, "history": [], "done": False}
    state |= {"best_epoch": 0, "best_nll": float("inf"), "best_model": model.state_dict()}
    if checkpoint.is_file():
        saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
        if saved["tag"] != tag:
            raise TrainingError(
                f"{checkpoint}: checkpoint of another config or data; remove it or name another "
                "checkpoint folder"
            )
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        schedule.load_state_dict(saved["schedule"])
        state = {k: saved[k] for k in state}
        schedule.T_max = int(state["horizon"])
        logger.info("%s: resuming after epoch %d", checkpoint, state["epoch"])
    x_fit, t_fit = torch.from_numpy(fit.images), torch.from_numpy(fit.truth.astype(np.float32))
    val_truth = val.truth.astype(np.float32)
    batch = min(config.batch_size, x_fit.shape[0])
    while not state["done"] and state["epoch"] < state["horizon"]:
        epoch = int(state["epoch"]) + 1
        tick = time.perf_counter()
        generator = torch.Generator().manual_seed(seed * 100_003 + epoch * 7919)
        torch.manual_seed(seed * 100_003 + epoch * 7919)
        model.train(True)
        order = torch.randperm(x_fit.shape[0], generator=generator)
        total, seen = 0.0, 0
        for start in range(0, x_fit.shape[0] - batch + 1, batch):
            rows = order[start : start + batch]
            x, t = x_fit[rows], t_fit[rows]
            if config.augment:
                x, t = flip_transpose(x, t, roles, generator)
            loss = gaussian_nll(model, x, t)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
            total += float(loss.detach()) * rows.numel()
            seen += rows.numel()
        schedule.step()
        nll = _val_nll(model, val.images, val_truth)
        seconds = time.perf_counter() - tick
        state["history"].append(
            {"epoch": epoch, "train_nll": total / max(seen, 1), "val_nll": nll, "seconds": seconds}
        )
        logger.info(
            "%s epoch %d: train NLL %.4f, val NLL %.4f, %.0f lenses/s",
            checkpoint.stem,
            epoch,
            total / max(seen, 1),
            nll,
            seen / max(seconds, 1e-9),
        )
        if nll < state["best_nll"]:
            best = {k: v.detach().clone() for k, v in model.state_dict().items()}
            state |= {"best_epoch": epoch, "best_nll": nll, "best_model": best}
        limit = config.max_network_seconds
        if epoch == 1 and limit is not None and seconds * state["horizon"] > limit:
            state["horizon"] = max(1, int(limit // seconds))
            schedule.T_max = int(state["horizon"])
        state["epoch"] = epoch
        stale = epoch - int(state["best_epoch"]) >= config.patience
        state["done"] = epoch >= state["horizon"] or stale
        saved = {
            "tag": tag,
            **state,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "schedule": schedule.state_dict(),
        }
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(checkpoint, lambda tmp, s=saved: torch.save(s, tmp))  # type: ignore[misc]
    model.load_state_dict(state["best_model"])
    history = state["history"]
    return {
        "epochs": config.epochs,
        "epochs_run": int(state["epoch"]),
        "best_epoch": int(state["best_epoch"]),
        "best_val_nll": float(state["best_nll"]),
        "seconds": round(sum(h["seconds"] for h in history), 1),
        "seconds_this_run": round(time.perf_counter() - began, 1),
    }


def _table(
    config: ModellingConfig, survey: Survey, members: list[dict[str, Any]]
) -> dict[str, Any]:
    """The [modelling] table of the manifest, before calibration and metrics."""
    return {
        "version": config.version,
        "survey": survey.name,
        "bands": list(survey.bands),
        "size": survey.cutout_size,
        "pixel_scale_arcsec": survey.pixel_scale_arcsec,
        "units": survey.units,
        "normalisation": normalisation_text(survey),
        "outputs": "parameters float32 (N, 2 P): P means in the parameters' units, then P "
        "log-variances of their Gaussians",
        "parameters": [p.model_dump() for p in config.parameters],
        "members": members,
    }


def write_modelling_manifest(path: Path, table: dict[str, Any]) -> Path:
    """Put a [modelling] table into a manifest (other tables kept), validated, atomically."""
    ModellingModels.model_validate({**table, "folder": path.parent})
    raw = read_manifest_table(path) if path.is_file() else {"version": 1}
    raw["modelling"] = plain(table, target="toml")
    write_text(path, tomli_w.dumps(raw))
    load_modelling(path, verify=True)
    return path


def train_modelling(config: ModellingConfig | Path) -> Path:
    """Train, export, calibrate and evaluate the modelling networks; the manifest's path."""
    if not isinstance(config, ModellingConfig):
        config = ModellingConfig.from_toml(Path(config))
    began = time.perf_counter()
    survey = survey_profile(config.survey)
    make_deterministic(config.threads)
    columns = [p.truth for p in config.parameters]
    store, labels = ensure_lens_set(
        config.training_set,
        config.work / "train-lenses",
        survey=survey,
        workers=config.simulation_workers,
    )
    held = {
        name: ensure_lens_set(
            spec, config.work / f"{name}-lenses", survey=survey, workers=config.simulation_workers
        )
        for name, spec in config.held_out()
    }
    lenses = load_lenses(store, labels, columns=columns)
    check_survey(lenses, survey, store)
    fit_rows, val_rows = split_rows(
        lenses.ids.size, fraction=config.validation_fraction, seed=config.training_set.seed
    )
    fit, val = (
        HeldOutLenses(lenses.ids[r], lenses.images[r], lenses.truth[r], lenses.columns, lenses.info)
        for r in (fit_rows, val_rows)
    )
    del lenses
    manifest = config.output / "manifest.toml"
    shape = tuple(int(n) for n in val.images.shape[1:])
    members: list[dict[str, Any]] = []
    for k in range(config.networks):
        seed = config.seed + k
        name = f"{config.file_prefix}_{k}"
        torch.manual_seed(seed)
        model = build_network(config, survey)
        model.fit_standardisation(fit.truth)
        summary = fit_network(
            model,
            fit,
            val,
            config=config,
            seed=seed,
            checkpoint=config.checkpoint_folder / f"{name}.pt",
            tag=network_tag(config, k, survey),
        )
        path = config.output / f"{name}.onnx"
        worst = export_modelling(model, path, example=val.images[:4], check=[val.images[:128]])
        members.append(
            {
                "name": name,
                "file": path.name,
                "sha256": file_digest(path),
                "seed": seed,
                "flops": count_flops(model, shape),
                "training": {
                    **summary,
                    "parameters": sum(p.numel() for p in model.parameters()),
                    "onnx_max_rel_diff": worst,
                },
            }
        )
    table = _table(config, survey, members)
    write_modelling_manifest(manifest, table)
    modelling = load_modelling(manifest)
    means, variances = network_outputs(val.images, modelling=modelling)
    raw = combine(means, variances, names=modelling.names, scales=np.ones(len(columns)))
    units = [p.unit for p in config.parameters]
    split = {"held from": "the training set", "fraction": config.validation_fraction}
    before = build_modelling_report(
        "validation, sigma scale 1", raw, val.truth, units=units, spec=split
    )
    scales = np.ones(len(columns))
    if config.calibrate:
        scales = fit_sigma_scales(raw.mean, raw.sigma, val.truth)
        table["sigma_scale"] = {n: float(s) for n, s in zip(modelling.names, scales, strict=True)}
    folders = [("train", config.training_set), *config.held_out()]
    simulated = [simulation_seconds(spec, config.work / f"{n}-lenses") for n, spec in folders]
    table["training"] = {
        **config.training_set.spec(),
        "n_fit": int(fit.ids.size),
        "n_val": int(val.ids.size),
        "architecture": f"resnet widths {list(config.widths)} blocks {list(config.blocks)}, "
        "flattened last map, linear head to means and log-variances",
        "loss": "Gaussian negative log-likelihood per parameter",
        "augmentation": "random flips in x and y and transposes, parameters turned to match"
        if config.augment
        else "none",
        "batch_size": config.batch_size,
        "lr": config.lr,
        "epochs": config.epochs,
        "calibration": "sigma scale per parameter fitted on the validation split (68 % and "
        "95 % coverage)"
        if config.calibrate
        else "none",
        "validation_coverage_before": {
            p.name: [p.coverage_68, p.coverage_95] for p in before.parameters
        },
        "seconds_simulation": round(sum(s for s in simulated if s is not None), 1),
        "seconds_training": round(sum(m["training"]["seconds"] for m in members), 1),
        "seconds_this_run": round(time.perf_counter() - began, 1),
    }
    write_modelling_manifest(manifest, table)
    modelling = load_modelling(manifest)
    after = build_modelling_report(
        "validation, calibrated",
        combine(means, variances, names=modelling.names, scales=scales),
        val.truth,
        units=units,
        spec=split,
    )
    reports = [before, after]
    metrics: dict[str, Any] = {}
    for name, spec in config.held_out():
        set_store, set_labels = held[name]
        report, predictions, truth = evaluate_lens_store(
            set_store, set_labels, modelling=modelling, name=name, spec=spec.spec()
        )
        unscaled = replace(predictions, sigma=predictions.sigma / scales)
        plain_report = build_modelling_report(
            f"{name}, sigma scale 1", unscaled, truth, units=units, spec=spec.spec()
        )
        reports += [plain_report, report]
        metrics[name] = report.as_dict()
        metrics[name]["coverage_sigma_scale_1"] = {
            p.name: [p.coverage_68, p.coverage_95] for p in plain_report.parameters
        }
        write_scatter_figure(
            predictions,
            truth,
            config.report_folder / f"modelling_{name}.png",
            title=f"modelling, {name} set",
            units=units,
        )
        logger.info("modelling on the %s set:\n%s", name, report.markdown())
    write_modelling_reports(reports, config.report_folder)
    if metrics:
        table["metrics"] = metrics
        write_modelling_manifest(manifest, table)
    return manifest
