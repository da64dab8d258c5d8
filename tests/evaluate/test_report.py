"""The evaluation report: metrics per scorer, contaminant classes at the threshold, its JSON."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lensflow.evaluate import EvaluationReport, build_report, write_report_json
from lensflow.labels import Labels


def test_report_json_lists_the_ensemble_first_with_its_class_counts(
    evaluated: EvaluationReport, tmp_path: Path
) -> None:
    out = write_report_json(evaluated, tmp_path / "out" / "report.json")
    written = json.loads(out.read_text())
    assert list(written) == ["ensemble", "a", "b"]
    scored = {"auroc", "tpr0", "tpr10", "n_lenses", "n_non_lenses", "at_completeness"}
    assert set(written["a"]) == scored
    assert set(written["ensemble"]) == scored | {
        "fpr_by_class",
        "false_positives_by_class",
        "top_non_lenses_by_class",
    }
    # every lens (mean +2) outscores every spiral (+1): 90 % of 4 lenses needs all 4, and
    # the threshold is the lowest lens score, sigmoid(2) for member a
    at = written["a"]["at_completeness"]
    assert at["completeness"] == 0.9
    assert at["threshold"] == pytest.approx(1 / (1 + np.exp(-2.0)), rel=1e-6)
    assert (at["fpr"], at["false_positives"]) == (0.0, 0)
    assert at["fpr_by_class"] == {"ring": 0.0, "spiral": 0.0}
    assert written["ensemble"]["false_positives_by_class"] == {"ring": 0, "spiral": 3}
    assert written["ensemble"]["top_non_lenses_by_class"] == {"ring": 5, "spiral": 3}
    assert sorted(p.name for p in out.parent.iterdir()) == ["report.json"]  # no temp file left


def _labels() -> Labels:
    """2 lenses; non-lenses: 3 rings, 2 mergers, 1 star."""
    classes = np.array(["lens", "lens", "ring", "ring", "ring", "merger", "merger", "star"])
    return Labels(
        ids=np.arange(classes.size, dtype=np.int64),
        is_lens=classes == "lens",
        classes=classes.astype(object),
    )


def test_classes_are_counted_at_the_ensemble_threshold() -> None:
    labels = _labels()
    ensemble = np.array([0.9, 0.8, 0.7, 0.2, 0.1, 0.6, 0.65, 0.05], np.float32)
    member = np.linspace(0.0, 1.0, 8).astype(np.float32)
    report = build_report(labels, {"m": member, "ensemble": ensemble}, threshold=0.6)
    assert report.fpr_by_class == {"merger": 1.0, "ring": 1 / 3, "star": 0.0}
    assert report.false_positives_by_class == {"merger": 2, "ring": 1, "star": 0}
    # every non-lens is among the top 100: most frequent class first, ties by name
    assert list((report.top_non_lenses_by_class or {}).items()) == [
        ("ring", 3),
        ("merger", 2),
        ("star", 1),
    ]
    assert report.metrics["ensemble"].tpr0 == 1.0
    assert report.metrics["m"].auroc == 0.0  # the member ranks the lenses last
    assert list(report.as_dict()) == ["ensemble", "m"]


def test_each_scorer_counts_classes_where_it_keeps_90_percent_of_the_lenses() -> None:
    """10 lenses; at 90 % completeness the ensemble lets 1 of 3 rings through, the member all
    3 rings and 1 of 2 mergers: the comparison a fixed threshold cannot make."""
    classes = np.array(["lens"] * 10 + ["ring"] * 3 + ["merger"] * 2, dtype=object)
    labels = Labels(
        ids=np.arange(classes.size, dtype=np.int64), is_lens=classes == "lens", classes=classes
    )
    lens_scores = np.linspace(0.9, 0.5, 10)  # the 9th lens scores 0.5444...
    ensemble = np.r_[lens_scores, 0.6, 0.1, 0.2, 0.05, 0.3].astype(np.float32)
    member = np.r_[lens_scores * 0.5, 0.7, 0.8, 0.9, 0.3, 0.1].astype(np.float32)
    report = build_report(labels, {"ensemble": ensemble, "m": member}, threshold=0.95)
    rates = report.at_completeness
    assert rates is not None
    ens, mem = rates["ensemble"], rates["m"]
    assert ens.threshold == pytest.approx(lens_scores[8], rel=1e-6)
    assert ens.fpr_by_class == {"merger": 0.0, "ring": 1 / 3}
    assert (ens.false_positives, ens.fpr) == (1, 0.2)
    assert mem.fpr_by_class == {"merger": 0.5, "ring": 1.0}
    assert mem.false_positives_by_class == {"merger": 1, "ring": 3}
    # the fixed-threshold counts are the ensemble's at 0.95: nothing passes
    assert report.fpr_by_class == {"merger": 0.0, "ring": 0.0}


def test_labels_without_classes_give_no_class_counts() -> None:
    labels = _labels()
    plain = Labels(ids=labels.ids, is_lens=labels.is_lens, classes=None)
    scores = np.where(labels.is_lens, 0.9, 0.1).astype(np.float32)
    report = build_report(plain, {"ensemble": scores}, threshold=0.5)
    assert (report.fpr_by_class, report.false_positives_by_class) == (None, None)
    assert report.top_non_lenses_by_class is None
    assert set(report.as_dict()["ensemble"]) == {
        "auroc",
        "tpr0",
        "tpr10",
        "n_lenses",
        "n_non_lenses",
    }
