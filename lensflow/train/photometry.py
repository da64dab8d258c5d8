"""Train the photometry gate: an MLP on catalog columns, thresholded for lens completeness.

Its inputs are catalog columns named as the scan's column map names them: by default the
magnitudes of the survey profile's catalog bands (`mag_<band>`, in the profile's order) with
their adjacent colours; the config's `features` may add morphology (PSF minus model magnitudes,
sizes, extendedness; lensflow.train.gate). The manifest entry records the survey, the input
columns (`features`), the features derived from them in the graph and their meaning. Rows
with an unmeasured input cannot be scored, as in a scan: they count as rejected.

The threshold keeps `completeness` of the validation lenses; the held-out test catalog then says
what that threshold really keeps of lenses and of the galaxies passing the cuts, and both go into
the manifest as they are, whether or not they reach the aim.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lensflow.evaluate.metrics import RocCurve, metrics_of, roc_curve
from lensflow.evaluate.plots import save_png
from lensflow.io import file_digest
from lensflow.surveys import Survey, survey_profile
from lensflow.train.catalogs import Catalog, simulate_catalog
from lensflow.train.config import PhotometryConfig
from lensflow.train.data import split_validation
from lensflow.train.export import export_onnx
from lensflow.train.gate import GateFeatures, GateMLP, gate_features
from lensflow.train.loop import (
    FitSettings,
    fit,
    make_deterministic,
    predict_logits,
    resolve_device,
)
from lensflow.train.manifest import write_manifest
from lensflow.train.models import count_flops

logger = logging.getLogger(__name__)

CURVE_COMPLETENESS = (0.5, 0.8, 0.9, 0.95, 0.99)
"""Test-set completeness levels at which the manifest states the fraction of galaxies kept."""


def threshold_for_completeness(lens_scores: np.ndarray, completeness: float) -> float:
    """The highest threshold t with at least `completeness` of lens_scores (N,) >= t."""
    ranked = np.sort(np.asarray(lens_scores, dtype=np.float64))[::-1]
    k = max(1, math.ceil(completeness * ranked.size - 1e-9))
    return float(ranked[k - 1])


def _probabilities(model: GateMLP, x: np.ndarray, device: torch.device) -> np.ndarray:
    """Probabilities (N,) of inputs (N, F); 0 where an input is not finite (never kept)."""
    usable = np.isfinite(x).all(axis=1)
    out = np.zeros(x.shape[0], dtype=np.float32)
    if usable.any():
        logits = predict_logits(model, np.ascontiguousarray(x[usable]), device=device)
        out[usable] = torch.sigmoid(torch.from_numpy(logits)).numpy()
    return out


def _catalogs(config: PhotometryConfig, survey: Survey, gate: GateFeatures) -> tuple[Catalog, ...]:
    """The training and test catalogs, morphology measured when the gate reads it."""
    return tuple(
        simulate_catalog(
            n_lenses=n_lenses,
            n_non_lenses=n_non,
            seed=seed,
            cuts=config.cuts,
            survey=survey,
            morphology=gate.morphology,
            workers=config.simulation_workers,
        )
        for n_lenses, n_non, seed in (
            (config.n_lenses, config.n_non_lenses, config.seed),
            (config.n_test_lenses, config.n_test_non_lenses, config.test_seed),
        )
    )


def plot_completeness(
    scores: np.ndarray,
    catalog: Catalog,
    *,
    threshold: float,
    config: PhotometryConfig,
    path: Path,
) -> Path:
    """Lens completeness against the fraction of galaxies kept, with the threshold and the aim."""
    from matplotlib.figure import Figure

    curve = roc_curve(scores, catalog.is_lens)
    n_non = int(curve.false_positives[-1])
    floor = 0.5 / n_non
    completeness = float(np.mean(scores[catalog.is_lens] >= threshold))
    kept = float(np.mean(scores[~catalog.is_lens] >= threshold))
    figure = Figure(figsize=(6.0, 4.5), layout="constrained")
    ax = figure.subplots()
    ax.step(np.maximum(curve.fpr, floor), curve.tpr, where="post", label="test catalog")
    ax.plot([kept], [completeness], "o", color="C3", label=f"threshold {threshold:.3f}")
    ax.axvline(config.max_kept_fraction, color="0.5", ls=":", lw=1)
    ax.axhline(config.completeness, color="0.5", ls=":", lw=1, label="aim")
    ax.set_xscale("log")
    ax.set_xlim(floor, 1.0)
    ax.set_ylim(0.0, 1.01)
    ax.set_xlabel("fraction of galaxies passing the cuts kept")
    ax.set_ylabel("lens completeness")
    ax.set_title(
        f"photometry gate: {int(catalog.is_lens.sum())} lenses, {n_non} galaxies; "
        f"kept {kept:.2%} at completeness {completeness:.1%}",
        fontsize=9,
    )
    ax.legend(loc="lower right", fontsize=8)
    return save_png(figure, path, dpi=110)


def kept_at(
    scores: np.ndarray, test: Catalog, completeness: float, *, curve: RocCurve | None = None
) -> float:
    """The fraction of test galaxies kept where the test lenses reach `completeness`."""
    curve = curve or roc_curve(scores, test.is_lens)
    return float(curve.fpr[np.argmax(curve.tpr >= completeness)])


def _test_metrics(
    scores: np.ndarray, test: Catalog, usable: np.ndarray, threshold: float
) -> dict[str, Any]:
    """What the threshold keeps of the test catalog: overall, by class, along the curve."""
    curve = roc_curve(scores, test.is_lens)
    non_lens = sorted(set(test.classes[~test.is_lens].tolist()))
    return {
        **metrics_of(scores, test.is_lens).as_dict(),
        "completeness": float(np.mean(scores[test.is_lens] >= threshold)),
        "kept_fraction": float(np.mean(scores[~test.is_lens] >= threshold)),
        "kept_fraction_by_class": {
            name: float(np.mean(scores[test.classes == name] >= threshold)) for name in non_lens
        },
        "kept_fraction_at_completeness": {
            f"{c:.2f}": kept_at(scores, test, c, curve=curve) for c in CURVE_COMPLETENESS
        },
        "unusable_rows": {
            "lens": int((~usable & test.is_lens).sum()),
            "non_lens": int((~usable & ~test.is_lens).sum()),
        },
    }


def train_photometry(config: PhotometryConfig | Path) -> Path:
    """Simulate catalogs, train the MLP, choose its threshold, export ONNX; returns the manifest.

    Writes output/<name>.onnx, merges the [photometry] table into output/manifest.toml and
    saves reports/photometry.png (completeness against the fraction of galaxies kept).
    """
    if not isinstance(config, PhotometryConfig):
        config = PhotometryConfig.from_toml(Path(config))
    survey = survey_profile(config.survey)
    gate = gate_features(config.features, survey)
    make_deterministic(config.threads)
    device = resolve_device(config.device)
    train, test = _catalogs(config, survey, gate)
    x_train, x_test = train.inputs(gate.inputs), test.inputs(gate.inputs)
    fit_rows, val_rows = split_validation(
        train.is_lens, fraction=config.validation_fraction, seed=config.seed
    )
    fit_rows = fit_rows[np.isfinite(x_train[fit_rows]).all(axis=1)]
    torch.manual_seed(config.seed)
    model = GateMLP(gate.matrix, hidden=config.hidden)
    model.fit_normalisation(torch.from_numpy(x_train[fit_rows]))
    settings = FitSettings(
        epochs=config.epochs,
        patience=config.patience,
        batch_size=config.batch_size,
        lr=config.lr,
        weight_decay=config.weight_decay,
        seed=config.seed,
        augment=False,
    )
    usable_val = val_rows[np.isfinite(x_train[val_rows]).all(axis=1)]
    result = fit(
        model,
        (x_train[fit_rows], train.is_lens[fit_rows]),
        (x_train[usable_val], train.is_lens[usable_val]),
        settings=settings,
        device=device,
        tag=config.name,
    )
    val_scores = _probabilities(model, x_train[val_rows], device)
    threshold = threshold_for_completeness(val_scores[train.is_lens[val_rows]], config.completeness)
    test_scores = _probabilities(model, x_test, device)
    metrics = _test_metrics(test_scores, test, np.isfinite(x_test).all(axis=1), threshold)
    lens_kept, galaxies_kept = metrics["completeness"], metrics["kept_fraction"]
    logger.info(
        "photometry threshold %.4f keeps %.2f%% of test lenses and %.2f%% of galaxies",
        threshold,
        100 * lens_kept,
        100 * galaxies_kept,
    )
    file = f"{config.name}.onnx"
    onnx_path = config.output / file
    usable_test = x_test[np.isfinite(x_test).all(axis=1)]
    usable_train = x_train[fit_rows]
    export_onnx(
        model, onnx_path, kind="photometry", example=usable_test[:64], check=[usable_train[:1000]]
    )
    metrics |= {
        "aim_completeness": config.aim_completeness,
        "aim_max_kept_fraction": config.max_kept_fraction,
        "aim_reached": kept_at(test_scores, test, config.aim_completeness)
        <= config.max_kept_fraction,
        "test_seed": config.test_seed,
        "lens_fraction_passing_cuts": test.passed.get("lens", 0)
        / max(test.drawn.get("lens", 0), 1),
    }
    n_in, n_derived = gate.matrix.shape
    entry: dict[str, Any] = {
        "name": config.name,
        "file": file,
        "sha256": file_digest(onnx_path),
        "threshold": threshold,
        "features": list(gate.inputs),
        "survey": survey.name,
        "version": config.version,
        "training": {
            "n_lenses": config.n_lenses,
            "n_non_lenses": config.n_non_lenses,
            "seed": config.seed,
            "mix": "natural",
            "cuts": config.cuts.model_dump(),
            "feature_spec": list(config.features),
            "derived_features": list(gate.derived),
            "architecture": "-".join(str(n) for n in (n_derived, *config.hidden, 1)),
            "inputs": gate.text,
            "flops": count_flops(model, (n_in,)) + 2 * n_in * n_derived,
            "epochs_run": result.epochs_run,
            "best_epoch": result.best_epoch,
            "validation_fraction": config.validation_fraction,
        },
        "metrics": metrics,
    }
    manifest = write_manifest(config.output / "manifest.toml", photometry=entry)
    plot_completeness(
        test_scores,
        test,
        threshold=threshold,
        config=config,
        path=config.reports / "photometry.png",
    )
    return manifest
