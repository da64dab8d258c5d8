"""Evaluation figures: ROC curves and score histograms written as PNG files."""

from __future__ import annotations

from pathlib import Path

from lensflow.evaluate import EvaluationReport, write_plots, write_roc_panels

PNG = b"\x89PNG\r\n\x1a\n"


def test_roc_and_score_histograms_are_pngs(evaluated: EvaluationReport, tmp_path: Path) -> None:
    plots = write_plots(evaluated, tmp_path / "plots")
    assert [p.name for p in plots] == ["roc.png", "roc_scores.png"]
    assert all(p.read_bytes()[:8] == PNG for p in plots)
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == ["roc.png", "roc_scores.png"]


def test_roc_panels_of_several_sets_are_one_png(
    evaluated: EvaluationReport, tmp_path: Path
) -> None:
    panels = write_roc_panels({"one": evaluated, "two": evaluated}, tmp_path / "panels.png")
    assert panels.read_bytes()[:8] == PNG
