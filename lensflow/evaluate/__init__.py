"""Evaluation with the field's metrics: metrics, reports, scoring a store, and figures.

`metrics` holds AUROC, TPR0 and TPR10 (Metcalf et al. 2019); `report` a scorer-by-scorer
report on one labelled set; `scoring` evaluates a models manifest on a labelled cutout store;
`purity` gives purity and completeness at a prior lens rate; `calibration` fits the ensemble's
combination and calibration; `plots` draws ROC curves, score histograms and purity curves.
"""

from __future__ import annotations

from lensflow.ensemble import ENSEMBLE, MEAN
from lensflow.evaluate.calibration import fit_combination, fit_isotonic
from lensflow.evaluate.metrics import (
    Metrics,
    RocCurve,
    auroc,
    metrics_of,
    roc_curve,
    threshold_at_completeness,
    tpr0,
    tpr10,
    tpr_at_false_positives,
)
from lensflow.evaluate.plots import save_png, write_plots, write_purity_plot, write_roc_panels
from lensflow.evaluate.purity import PurityReport, purity, purity_report
from lensflow.evaluate.report import (
    CLASS_COMPLETENESS,
    TOP_NON_LENSES,
    ClassRates,
    EvaluationReport,
    build_report,
    write_report_json,
)
from lensflow.evaluate.scoring import evaluate_store

__all__ = [
    "CLASS_COMPLETENESS",
    "ENSEMBLE",
    "MEAN",
    "TOP_NON_LENSES",
    "ClassRates",
    "EvaluationReport",
    "Metrics",
    "PurityReport",
    "RocCurve",
    "auroc",
    "build_report",
    "evaluate_store",
    "fit_combination",
    "fit_isotonic",
    "metrics_of",
    "purity",
    "purity_report",
    "roc_curve",
    "save_png",
    "threshold_at_completeness",
    "tpr0",
    "tpr10",
    "tpr_at_false_positives",
    "write_plots",
    "write_purity_plot",
    "write_report_json",
    "write_roc_panels",
]
