"""Evaluation with the field's metrics: metrics, reports, scoring a store, and figures.

`metrics` holds AUROC, TPR0 and TPR10 (Metcalf et al. 2019); `report` a scorer-by-scorer
report on one labelled set; `scoring` evaluates a models manifest on a labelled cutout store;
`plots` draws ROC curves and score histograms.
"""

from __future__ import annotations

from lensflow.ensemble import ENSEMBLE
from lensflow.evaluate.metrics import (
    Metrics,
    RocCurve,
    auroc,
    metrics_of,
    roc_curve,
    tpr0,
    tpr10,
    tpr_at_false_positives,
)
from lensflow.evaluate.plots import save_png, write_plots, write_roc_panels
from lensflow.evaluate.report import (
    TOP_NON_LENSES,
    EvaluationReport,
    build_report,
    write_report_json,
)
from lensflow.evaluate.scoring import evaluate_store

__all__ = [
    "ENSEMBLE",
    "TOP_NON_LENSES",
    "EvaluationReport",
    "Metrics",
    "RocCurve",
    "auroc",
    "build_report",
    "evaluate_store",
    "metrics_of",
    "roc_curve",
    "save_png",
    "tpr0",
    "tpr10",
    "tpr_at_false_positives",
    "write_plots",
    "write_report_json",
    "write_roc_panels",
]
