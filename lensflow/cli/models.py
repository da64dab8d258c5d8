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


@command(app)
def evaluate(
    store: Annotated[Path, typer.Argument(help="A cutout store (Zarr v3, any groups).")],
    labels: Annotated[Path, typer.Argument(help="Parquet with id (int64) and is_lens (bool).")],
    models: Annotated[Path | None, typer.Option(help="Models manifest (default: shipped).")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the metrics here.")] = None,
    plots: Annotated[Path | None, typer.Option(help="Folder for ROC and score PNGs.")] = None,
) -> None:
    """AUROC, TPR0 and TPR10 per member and for the ensemble, with the set's size.

    TPR0 and TPR10 depend on how many non-lenses were scored: both counts are printed.
    """
    from lensflow.evaluate import evaluate_store, write_plots, write_report_json

    report = evaluate_store(store, labels, manifest=models)
    if json_out is not None:
        write_report_json(report, json_out)
    if plots is not None:
        write_plots(report, plots)
    views.print_evaluation(console, str(store), report.as_dict())
