"""Train the photometry gate: an MLP on catalog magnitudes, thresholded for lens completeness.

Its features are the magnitudes of the survey profile's catalog bands (`mag_<band>`, in the
profile's order), and its manifest entry records the survey.

The threshold keeps `completeness` of the validation lenses; the held-out test catalog then says
what that threshold really keeps of lenses and of the galaxies passing the cuts, and both go into
the manifest as they are, whether or not they reach the aim.
"""

from __future__ import annotations

import itertools
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lensflow.evaluate.metrics import metrics_of, roc_curve
from lensflow.evaluate.plots import save_png
from lensflow.io import file_digest
from lensflow.surveys import Survey, survey_profile
from lensflow.train.config import PhotometryConfig
from lensflow.train.data import Catalog, simulate_catalog, split_validation
from lensflow.train.export import export_onnx
from lensflow.train.loop import (
    FitSettings,
    fit,
    make_deterministic,
    predict_logits,
    resolve_device,
)
from lensflow.train.manifest import write_manifest
from lensflow.train.models import PhotometryMLP, count_flops

logger = logging.getLogger(__name__)

CURVE_COMPLETENESS = (0.5, 0.8, 0.9, 0.95, 0.99)
"""Test-set completeness levels at which the manifest states the fraction of galaxies kept."""


def features(survey: Survey) -> tuple[str, ...]:
    """The gate's inputs: `mag_<band>` for each catalog band of the survey, in its order."""
    return tuple(f"mag_{band}" for band in survey.catalog_bands)


def inputs_text(survey: Survey) -> str:
    """The manifest's words for the gate's inputs (magnitudes, adjacent colours, scaling)."""
    bands = survey.catalog_bands
    colours = ", ".join(f"{a}-{b}" for a, b in itertools.pairwise(bands))
    return f"AB magnitudes {', '.join(bands)}; colours {colours} and standardisation in graph"


def threshold_for_completeness(lens_scores: np.ndarray, completeness: float) -> float:
    """The highest threshold t with at least `completeness` of lens_scores (N,) >= t."""
    ranked = np.sort(np.asarray(lens_scores, dtype=np.float64))[::-1]
    k = max(1, math.ceil(completeness * ranked.size - 1e-9))
    return float(ranked[k - 1])


def _probabilities(model: PhotometryMLP, mags: np.ndarray, device: torch.device) -> np.ndarray:
    logits = predict_logits(model, mags, device=device)
    return torch.sigmoid(torch.from_numpy(logits)).numpy()


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


def train_photometry(config: PhotometryConfig | Path) -> Path:
    """Simulate catalogs, train the MLP, choose its threshold, export ONNX; returns the manifest.

    Writes output/<name>.onnx, merges the [photometry] table into output/manifest.toml and
    saves reports/photometry.png (completeness against the fraction of galaxies kept).
    """
    if not isinstance(config, PhotometryConfig):
        config = PhotometryConfig.from_toml(Path(config))
    survey = survey_profile(config.survey)
    make_deterministic(config.threads)
    device = resolve_device(config.device)
    train = simulate_catalog(
        n_lenses=config.n_lenses,
        n_non_lenses=config.n_non_lenses,
        seed=config.seed,
        cuts=config.cuts,
        survey=survey,
    )
    test = simulate_catalog(
        n_lenses=config.n_test_lenses,
        n_non_lenses=config.n_test_non_lenses,
        seed=config.test_seed,
        cuts=config.cuts,
        survey=survey,
    )
    n_bands = len(survey.catalog_bands)
    fit_rows, val_rows = split_validation(
        train.is_lens, fraction=config.validation_fraction, seed=config.seed
    )
    torch.manual_seed(config.seed)
    model = PhotometryMLP(n_bands, hidden=config.hidden)
    model.fit_normalisation(torch.from_numpy(train.mags[fit_rows]))
    settings = FitSettings(
        epochs=config.epochs,
        patience=config.patience,
        batch_size=config.batch_size,
        lr=config.lr,
        weight_decay=config.weight_decay,
        seed=config.seed,
        augment=False,
    )
    result = fit(
        model,
        (train.mags[fit_rows], train.is_lens[fit_rows]),
        (train.mags[val_rows], train.is_lens[val_rows]),
        settings=settings,
        device=device,
        tag=config.name,
    )
    val_scores = _probabilities(model, train.mags[val_rows], device)
    threshold = threshold_for_completeness(val_scores[train.is_lens[val_rows]], config.completeness)
    test_scores = _probabilities(model, test.mags, device)
    lens_kept = float(np.mean(test_scores[test.is_lens] >= threshold))
    galaxies_kept = float(np.mean(test_scores[~test.is_lens] >= threshold))
    curve = roc_curve(test_scores, test.is_lens)
    at_completeness = {
        f"{c:.2f}": float(curve.fpr[np.argmax(curve.tpr >= c)]) for c in CURVE_COMPLETENESS
    }
    by_class = {
        name: float(np.mean(test_scores[test.classes == name] >= threshold))
        for name in sorted(set(test.classes[~test.is_lens].tolist()))
    }
    logger.info(
        "photometry threshold %.4f keeps %.2f%% of test lenses and %.2f%% of galaxies",
        threshold,
        100 * lens_kept,
        100 * galaxies_kept,
    )
    file = f"{config.name}.onnx"
    onnx_path = config.output / file
    export_onnx(
        model, onnx_path, kind="photometry", example=test.mags[:64], check=[train.mags[:1000]]
    )
    metrics: dict[str, Any] = {
        **metrics_of(test_scores, test.is_lens).as_dict(),
        "completeness": lens_kept,
        "kept_fraction": galaxies_kept,
        "kept_fraction_by_class": by_class,
        "kept_fraction_at_completeness": at_completeness,
        "aim_completeness": config.completeness,
        "aim_max_kept_fraction": config.max_kept_fraction,
        "aim_reached": lens_kept >= config.completeness
        and galaxies_kept <= config.max_kept_fraction,
        "test_seed": config.test_seed,
        "lens_fraction_passing_cuts": test.passed.get("lens", 0)
        / max(test.drawn.get("lens", 0), 1),
    }
    entry: dict[str, Any] = {
        "name": config.name,
        "file": file,
        "sha256": file_digest(onnx_path),
        "threshold": threshold,
        "features": list(features(survey)),
        "survey": survey.name,
        "version": config.version,
        "training": {
            "n_lenses": config.n_lenses,
            "n_non_lenses": config.n_non_lenses,
            "seed": config.seed,
            "mix": "natural",
            "cuts": config.cuts.model_dump(),
            "architecture": "-".join(str(n) for n in (2 * n_bands - 1, *config.hidden, 1)),
            "inputs": inputs_text(survey),
            "flops": count_flops(model, (n_bands,)),
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
