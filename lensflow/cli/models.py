"""Training and evaluating the models."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lensflow import views
from lensflow.cli.common import (
    SurveyOverride,
    Verbose,
    app,
    command,
    console,
    set_logging,
    train_app,
)


@command(train_app, "photometry")
def train_photometry_command(
    config: Annotated[Path, typer.Option(help="Photometry training config (TOML).", exists=True)],
    survey: SurveyOverride = None,
    verbose: Verbose = 1,
) -> None:
    """Train the photometry gate on simulated catalogs, choose its threshold, export ONNX."""
    from lensflow.train import train_photometry
    from lensflow.train.config import PhotometryConfig

    set_logging(verbose)
    settings = PhotometryConfig.from_toml(config).with_survey(survey)
    views.print_trained(console, "photometry model", train_photometry(settings))


@command(train_app, "ensemble")
def train_ensemble_command(
    config: Annotated[Path, typer.Option(help="Ensemble training config (TOML).", exists=True)],
    survey: SurveyOverride = None,
    verbose: Verbose = 1,
) -> None:
    """Train the CNN members (resuming from checkpoints), evaluate them, export ONNX."""
    from lensflow.train import train_ensemble
    from lensflow.train.config import TrainConfig

    set_logging(verbose)
    settings = TrainConfig.from_toml(config).with_survey(survey)
    views.print_trained(console, "ensemble", train_ensemble(settings))


Prior = Annotated[
    float,
    typer.Option(help="Prior lens rate: lenses per source scanned, for purity and p_lens."),
]
SessionWorkers = Annotated[
    int, typer.Option(help="ONNX Runtime sessions per member, run side by side.")
]


@command(train_app, "calibrate")
def train_calibrate_command(
    models: Annotated[Path, typer.Option(help="Models manifest; its ensemble tables are refit.")],
    store: Annotated[Path, typer.Option(help="Validation cutout store, natural class mix.")],
    labels: Annotated[Path, typer.Option(help="Its labels: Parquet with id, is_lens, class.")],
    prior: Prior = 1e-4,
    workers: SessionWorkers = 1,
    verbose: Verbose = 0,
) -> None:
    """Fit the ensemble's logistic combination and isotonic calibration on a validation set.

    Rewrites only [ensemble.combination] and [ensemble.calibration] of the manifest. Refuses a
    set of fewer than 50 lenses and a set the manifest records as its test or evaluation set.
    """
    from lensflow.train.calibrate import calibrate_manifest

    set_logging(verbose)
    calibrated = calibrate_manifest(models, store, labels, prior=prior, workers=workers)
    views.print_calibration(console, calibrated)


@command(app)
def evaluate(
    store: Annotated[Path, typer.Argument(help="A cutout store (Zarr v3, any groups).")],
    labels: Annotated[Path, typer.Argument(help="Parquet with id (int64) and is_lens (bool).")],
    models: Annotated[Path | None, typer.Option(help="Models manifest (default: shipped).")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the metrics here.")] = None,
    plots: Annotated[Path | None, typer.Option(help="Folder for ROC, score, purity PNGs.")] = None,
    prior: Prior = 1e-4,
    workers: SessionWorkers = 1,
) -> None:
    """AUROC, TPR0 and TPR10 per member and for the ensemble, with the set's size; purity.

    TPR0 and TPR10 depend on how many non-lenses were scored: both counts are printed. Purity
    and completeness are given at the prior lens rate, of p_lens when the manifest has a
    calibration, else of the ensemble score.
    """
    from lensflow.calibration import check_prior
    from lensflow.evaluate import evaluate_store, write_plots, write_report_json

    check_prior(prior)
    report = evaluate_store(store, labels, manifest=models, prior=prior, workers=workers)
    if json_out is not None:
        write_report_json(report, json_out)
    if plots is not None:
        write_plots(report, plots)
    views.print_evaluation(console, str(store), report.as_dict())
    if report.purity is not None:
        views.print_purity(console, report.purity.as_dict())
