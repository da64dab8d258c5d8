"""The evaluation report: metrics per scorer, contaminant classes at the threshold, its JSON."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from lensflow.evaluate import EvaluationReport, build_report, write_report_json
from lensflow.labels import Labels


def test_report_json_lists_the_ensemble_first_with_its_class_counts(
    evaluated: EvaluationReport, tmp_path: Path
) -> None:
    out = write_report_json(evaluated, tmp_path / "out" / "report.json")
    written = json.loads(out.read_text())
    assert list(written) == ["ensemble", "a", "b"]
    assert set(written["a"]) == {"auroc", "tpr0", "tpr10", "n_lenses", "n_non_lenses"}
    assert set(written["ensemble"]) == {
        "auroc",
        "tpr0",
        "tpr10",
        "n_lenses",
        "n_non_lenses",
        "fpr_by_class",
        "false_positives_by_class",
        "top_non_lenses_by_class",
    }
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
