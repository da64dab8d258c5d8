"""Training and evaluating the models."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, cast, get_args

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
from lensflow.config import Precision
from lensflow.errors import ConfigError, TrainingError


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
    from_grades: Annotated[
        str | None,
        typer.Option(
            help="Fine-tune the members from the grades in this database (SQLite file, scan "
            "folder or URL, as `lensflow inspect --db`), starting from the config's checkpoints."
        ),
    ] = None,
    scan: Annotated[
        Path | None, typer.Option(help="The graded scan: its cutouts and, by default, models.")
    ] = None,
    cutouts: Annotated[
        Path | None, typer.Option(help="A cutout store holding the graded ids (not --scan).")
    ] = None,
    models: Annotated[
        Path | None, typer.Option(help="Manifest to fine-tune (default: the scan's, shipped).")
    ] = None,
    output: Annotated[
        Path | None, typer.Option(help="Models folder to write (default: WORK/graded/models).")
    ] = None,
    held_out: Annotated[
        list[Path] | None,
        typer.Option(help="Labelled store scored before and after (labels.parquet beside it)."),
    ] = None,
    min_graders: Annotated[int, typer.Option(help="Graders a label needs.", min=1)] = 2,
    graded_fraction: Annotated[float, typer.Option(help="Graded share of each epoch.")] = 0.5,
    test_set: Annotated[
        bool, typer.Option(help="Also score the config's test set before and after.")
    ] = True,
    verbose: Verbose = 1,
) -> None:
    """Train the CNN members (resuming from checkpoints), evaluate them, export ONNX.

    With --from-grades: fine-tune them on the graded candidates (A/B consensus lenses, 0
    non-lenses) mixed with the simulated training set, into a new models folder, and report
    AUROC, TPR0 and TPR10 before and after on held-out sets.
    """
    from lensflow.train import train_ensemble
    from lensflow.train.config import TrainConfig

    set_logging(verbose)
    settings = TrainConfig.from_toml(config).with_survey(survey)
    if from_grades is None:
        if any(v is not None for v in (scan, cutouts, models, output, held_out)):
            raise ConfigError(
                "--scan, --cutouts, --models, --output, --held-out need --from-grades"
            )
        views.print_trained(console, "ensemble", train_ensemble(settings))
        return
    store, manifest = _graded_source(from_grades, scan, cutouts, models)
    try:
        from lensflow.train import finetune
        from lensflow.train.grades import Mixing
    except ImportError as exc:
        raise TrainingError(
            f"fine-tuning needs torch ({exc}): pip install 'lensflow[train]'"
        ) from None
    result = finetune.fine_tune_from_grades(
        settings,
        grades=from_grades,
        cutouts=store,
        manifest=manifest,
        output=output,
        held_out=[
            finetune.HeldOutSet(
                (path.parent if path.stem == "cutouts" else path).stem,
                path,
                path.parent / "labels.parquet",
            )
            for path in held_out or []
        ],
        settings=finetune.FineTuneSettings(
            min_graders=min_graders,
            mixing=Mixing(graded_fraction=graded_fraction),
            test_set=test_set,
        ),
    )
    console.print(f"graded candidates: {result.graded}", markup=False, highlight=False)
    for name, metrics in result.sets.items():
        for when in ("before", "after"):
            console.print(views.evaluation_table(f"{name} set, {when}", metrics[when]))
    views.print_trained(console, f"fine-tuned ensemble (report {result.report})", result.manifest)


def _graded_source(
    db: str, scan: Path | None, cutouts: Path | None, models: Path | None
) -> tuple[Path, Path | None]:
    """The cutout store holding the graded candidates and the manifest to fine-tune: the
    scan's (--scan, or the scan folder holding the SQLite file), or --cutouts and --models."""
    from lensflow.scan.state import load_scan_config, not_a_scan_folder, read_fingerprint

    if scan is not None and cutouts is not None:
        raise ConfigError("give --scan or --cutouts, not both")
    beside = Path(db) if Path(db).is_dir() else Path(db).parent
    if scan is None and cutouts is None and "://" not in db and read_fingerprint(beside):
        scan = beside
    if scan is not None:
        if read_fingerprint(scan) is None:
            raise not_a_scan_folder(scan, lacks="fingerprint")
        scan_config = load_scan_config(scan)
        return scan_config.cutouts.path, models or scan_config.models.manifest
    if cutouts is None:
        raise ConfigError(
            "--from-grades: say where the graded cutouts are: --scan SCAN_DIR "
            "(the scan graded) or --cutouts STORE"
        )
    return cutouts, models


@command(train_app, "modelling")
def train_modelling_command(
    config: Annotated[Path, typer.Option(help="Modelling training config (TOML).", exists=True)],
    survey: SurveyOverride = None,
    verbose: Verbose = 1,
) -> None:
    """Train the lens-modelling networks (resuming), calibrate and evaluate them, export ONNX."""
    from lensflow.train import train_modelling
    from lensflow.train.modelling_config import ModellingConfig

    set_logging(verbose)
    settings = ModellingConfig.from_toml(config).with_survey(survey)
    views.print_trained(console, "modelling networks", train_modelling(settings))


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


@command(train_app, "quantize")
def train_quantize_command(
    models: Annotated[
        Path, typer.Option(help="Models manifest; its members' [int8] are rewritten.")
    ],
    store: Annotated[
        Path, typer.Option(help="Held-out labelled cutout store both precisions score.")
    ],
    labels: Annotated[Path, typer.Option(help="Its labels: Parquet with id, is_lens (and class).")],
    calibration: Annotated[
        Path, typer.Option(help="Another cutout store; its first cutouts fit the int8 ranges.")
    ],
    calibration_rows: Annotated[int, typer.Option(help="Calibration cutouts.", min=64)] = 1000,
    ops: Annotated[
        list[str] | None,
        typer.Option(help="Operator types to quantize (default: Conv, Relu, Clip)."),
    ] = None,
    workers: SessionWorkers = 1,
    verbose: Verbose = 0,
) -> None:
    """Write an INT8 variant of each member (static QDQ) and record how closely it follows.

    On the held-out set: Spearman rank correlation with float32, the fraction on the same side of
    the threshold, AUROC and TPR10 of both, and the one-thread speed-up, into each member's
    [int8] table. Scans run the variants only with [ensemble] precision = "int8".
    """
    from lensflow.train.quantize import DEFAULT_OPS, quantize_manifest

    set_logging(verbose)
    quantized = quantize_manifest(
        models,
        store=store,
        labels=labels,
        calibration=calibration,
        calibration_rows=calibration_rows,
        ops=tuple(ops or DEFAULT_OPS),
        workers=workers,
    )
    views.print_quantized(console, quantized)


@command(app)
def evaluate(
    store: Annotated[Path, typer.Argument(help="A cutout store (Zarr v3, any groups).")],
    labels: Annotated[Path, typer.Argument(help="Parquet with id (int64) and is_lens (bool).")],
    models: Annotated[Path | None, typer.Option(help="Models manifest (default: shipped).")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the metrics here.")] = None,
    plots: Annotated[Path | None, typer.Option(help="Folder for ROC, score, purity PNGs.")] = None,
    prior: Prior = 1e-4,
    workers: SessionWorkers = 1,
    precision: Annotated[
        str, typer.Option(help="float32 (the members' files) or int8 (their variants).")
    ] = "float32",
) -> None:
    """AUROC, TPR0 and TPR10 per member and for the ensemble, with the set's size; purity.

    TPR0 and TPR10 depend on how many non-lenses were scored: both counts are printed. Purity
    and completeness are given at the prior lens rate, of p_lens when the manifest has a
    calibration, else of the ensemble score.
    """
    from lensflow.calibration import check_prior
    from lensflow.evaluate import evaluate_store, write_plots, write_report_json

    check_prior(prior)
    if precision not in get_args(Precision):
        raise ConfigError(f"--precision {precision!r}: choose float32 or int8")
    report = evaluate_store(
        store,
        labels,
        manifest=models,
        prior=prior,
        workers=workers,
        precision=cast(Precision, precision),
    )
    if json_out is not None:
        write_report_json(report, json_out)
    if plots is not None:
        write_plots(report, plots)
    views.print_evaluation(console, str(store), report.as_dict())
    if report.purity is not None:
        views.print_purity(console, report.purity.as_dict())
