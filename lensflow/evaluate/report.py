"""An evaluation report: every scorer's metrics on one labelled set, and its contaminant classes.

The scorers are the ensemble's members and the ensemble score (the key ENSEMBLE: the fitted
combination where the manifest has one, with the plain mean beside it as MEAN, else the mean).
For labels with a `class`, the report counts which contaminants the ensemble lets through at
its threshold and, for every scorer, the false-positive rate per class at the threshold that
keeps 90 % of the lenses (a like-for-like comparison of scorers). With a prior, it also holds
the ensemble's purity and completeness tables (`lensflow.evaluate.purity`).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from lensflow.ensemble import ENSEMBLE
from lensflow.errors import EvaluationError
from lensflow.evaluate.metrics import Metrics, metrics_of, threshold_at_completeness
from lensflow.evaluate.purity import PurityReport
from lensflow.io import write_text
from lensflow.labels import Labels

TOP_NON_LENSES = 100
"""How many of the highest-scoring non-lenses the report sorts by class."""

CLASS_COMPLETENESS = 0.9
"""The fraction of lenses kept by the threshold at which every scorer's classes are counted."""


@dataclasses.dataclass(frozen=True)
class ClassRates:
    """Non-lenses one scorer selects at the threshold keeping `completeness` of the lenses."""

    completeness: float
    threshold: float
    fpr: float
    false_positives: int
    fpr_by_class: Mapping[str, float]
    false_positives_by_class: Mapping[str, int]

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON/TOML-ready values."""
        out = dataclasses.asdict(self)
        out["fpr_by_class"] = dict(self.fpr_by_class)
        out["false_positives_by_class"] = dict(self.false_positives_by_class)
        return out


@dataclasses.dataclass(frozen=True)
class EvaluationReport:
    """Scores and metrics of every member and of the ensemble mean on one labelled store.

    ids int64 (N,) ascending; is_lens bool (N,); classes str (N,) or None when the labels have
    no `class`; scores maps each member and "ensemble" to float32 (N,) in the ids' order.
    fpr_by_class: fraction of each contaminant class scoring >= threshold with the ensemble;
    false_positives_by_class: how many of each class do; top_non_lenses_by_class: the classes
    of the TOP_NON_LENSES non-lenses the ensemble scores highest (the false positives of a
    strict threshold). score_seconds: ONNX Runtime time per member, when scored from a store.
    at_completeness: per scorer, the classes selected at the threshold keeping
    CLASS_COMPLETENESS of the lenses (labels with classes only). purity: the ensemble's purity
    tables at a prior, when asked for.
    """

    ids: np.ndarray
    is_lens: np.ndarray
    classes: np.ndarray | None
    scores: Mapping[str, np.ndarray]
    metrics: Mapping[str, Metrics]
    threshold: float
    fpr_by_class: Mapping[str, float] | None
    false_positives_by_class: Mapping[str, int] | None = None
    top_non_lenses_by_class: Mapping[str, int] | None = None
    score_seconds: Mapping[str, float] | None = None
    at_completeness: Mapping[str, ClassRates] | None = None
    purity: PurityReport | None = None

    def scorers(self) -> list[str]:
        """The scorers' names, the ensemble first, then the members in their order."""
        return [ENSEMBLE, *(n for n in self.scores if n != ENSEMBLE)]

    def as_dict(self) -> dict[str, dict[str, Any]]:
        """`{"ensemble": {...}, "<member>": {...}}` with the metrics (and the class counts)."""
        out: dict[str, dict[str, Any]] = {}
        for name in [ENSEMBLE, *(n for n in self.metrics if n != ENSEMBLE)]:
            out[name] = self.metrics[name].as_dict()
            if self.at_completeness is not None and name in self.at_completeness:
                out[name]["at_completeness"] = self.at_completeness[name].as_dict()
        for key in ("fpr_by_class", "false_positives_by_class", "top_non_lenses_by_class"):
            value = getattr(self, key)
            if value is not None:
                out[ENSEMBLE][key] = dict(value)
        return out


def build_report(
    labels: Labels, scores: Mapping[str, np.ndarray], *, threshold: float
) -> EvaluationReport:
    """Metrics of each scorer (members and "ensemble", (N,) in the labels' order) on labels.

    threshold: the ensemble's, at which fpr_by_class is counted (when labels have classes).
    """
    metrics = {name: metrics_of(values, labels.is_lens) for name, values in scores.items()}
    fpr_by_class: dict[str, float] | None = None
    false_positives: dict[str, int] | None = None
    top: dict[str, int] | None = None
    if labels.classes is not None and ENSEMBLE in scores:
        selected = scores[ENSEMBLE] >= threshold
        fpr_by_class, false_positives = {}, {}
        for name in sorted({str(c) for c in labels.classes[~labels.is_lens]}):
            members = (labels.classes == name) & ~labels.is_lens
            fpr_by_class[name] = float(selected[members].mean())
            false_positives[name] = int(selected[members].sum())
        non_lenses = np.flatnonzero(~labels.is_lens)
        ranked = non_lenses[np.argsort(-scores[ENSEMBLE][non_lenses], kind="stable")]
        names, counts = np.unique(
            labels.classes[ranked[:TOP_NON_LENSES]].astype(str), return_counts=True
        )
        top = {
            str(n): int(c)
            for n, c in sorted(zip(names, counts, strict=True), key=lambda nc: (-nc[1], nc[0]))
        }
    at_completeness = None
    if labels.classes is not None:
        at_completeness = {
            name: class_rates(values, labels, completeness=CLASS_COMPLETENESS)
            for name, values in scores.items()
        }
    return EvaluationReport(
        ids=labels.ids,
        is_lens=labels.is_lens,
        classes=labels.classes,
        scores=dict(scores),
        metrics=metrics,
        threshold=threshold,
        fpr_by_class=fpr_by_class,
        false_positives_by_class=false_positives,
        top_non_lenses_by_class=top,
        at_completeness=at_completeness,
    )


def class_rates(scores: np.ndarray, labels: Labels, *, completeness: float) -> ClassRates:
    """The false-positive rate, overall and per contaminant class, of scores (N,) at the
    threshold keeping `completeness` of the lenses; labels must have classes."""
    if labels.classes is None:
        raise EvaluationError("class rates need labels with a class column")
    threshold = threshold_at_completeness(scores, labels.is_lens, completeness=completeness)
    selected = np.asarray(scores) >= threshold
    non = ~labels.is_lens
    fpr, counts = {}, {}
    for name in sorted({str(c) for c in labels.classes[non]}):
        members = (labels.classes == name) & non
        fpr[name] = float(selected[members].mean())
        counts[name] = int(selected[members].sum())
    return ClassRates(
        completeness=completeness,
        threshold=threshold,
        fpr=float(selected[non].mean()),
        false_positives=int(selected[non].sum()),
        fpr_by_class=fpr,
        false_positives_by_class=counts,
    )


def write_report_json(report: EvaluationReport, path: Path) -> Path:
    """Write `{"ensemble": {...}, "<member>": {...}}` as indented JSON, atomically; the path.

    A report with purity tables also gets `"purity": {...}` (PurityReport.as_dict) last.
    """
    path = Path(path)
    data: dict[str, Any] = dict(report.as_dict())
    if report.purity is not None:
        data["purity"] = report.purity.as_dict()
    write_text(path, json.dumps(data, indent=2) + "\n")
    return path
