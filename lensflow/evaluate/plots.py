"""Evaluation figures: ROC curves on a log false-positive axis, score histograms and, with a
prior, purity against completeness (and the calibration's reliability), as PNGs.

Every figure is written through `lensflow.io.write_atomic`, so a reader never sees half a PNG.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lensflow.ensemble import ENSEMBLE
from lensflow.errors import EvaluationError
from lensflow.evaluate.metrics import roc_curve
from lensflow.evaluate.purity import PurityReport, fpr_upper95, purity
from lensflow.evaluate.report import EvaluationReport
from lensflow.io import write_atomic

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def save_png(figure: Figure, path: Path, *, dpi: int) -> Path:
    """Write a matplotlib figure as a PNG at dpi dots per inch, atomically; returns the path."""
    path = Path(path)
    write_atomic(path, lambda tmp: figure.savefig(tmp, format="png", dpi=dpi))
    return path


def _draw_roc(ax: Any, report: EvaluationReport, *, title: str, ten_fp_line: bool) -> None:
    """Every scorer's ROC (log FPR, floored at half a false positive) on one matplotlib axis.

    The title may use {n_lenses} and {n_non}; ten_fp_line marks the TPR10 false-positive rate.
    """
    n_lenses = int(report.is_lens.sum())
    n_non = int(report.is_lens.size - n_lenses)
    floor = 0.5 / n_non
    for name in report.scorers():
        curve = roc_curve(report.scores[name], report.is_lens)
        m = report.metrics[name]
        ax.step(
            np.maximum(curve.fpr, floor),
            curve.tpr,
            where="post",
            lw=2.0 if name == ENSEMBLE else 1.2,
            label=f"{name}: AUROC {m.auroc:.3f}, TPR0 {m.tpr0:.2f}, TPR10 {m.tpr10:.2f}",
        )
    if ten_fp_line:
        ax.axvline(9.5 / n_non, color="k", lw=0.6, ls=":")
    ax.set_xscale("log")
    ax.set_xlim(floor, 1.0)
    ax.set_ylim(0.0, 1.01)
    ax.set_xlabel("false-positive rate")
    ax.set_ylabel("true-positive rate")
    ax.set_title(title.format(n_lenses=n_lenses, n_non=n_non), fontsize=10)
    ax.legend(loc="lower right", fontsize=7)


def write_plots(report: EvaluationReport, folder: Path, *, prefix: str = "roc") -> list[Path]:
    """ROC curves (log FPR) and score histograms of every scorer as PNGs in folder.

    Writes `<prefix>.png` and `<prefix>_scores.png`, and `<prefix>_purity.png` when the report
    has purity tables; returns their paths.
    """
    from matplotlib.figure import Figure

    folder = Path(folder)
    names = report.scorers()

    roc = Figure(figsize=(6.0, 4.5), layout="constrained")
    _draw_roc(
        roc.subplots(),
        report,
        title="ROC on {n_lenses} lenses, {n_non} non-lenses",
        ten_fp_line=False,
    )
    roc_path = save_png(roc, folder / f"{prefix}.png", dpi=110)

    hist = Figure(figsize=(3.2 * len(names), 3.2), layout="constrained")
    axes = np.atleast_1d(hist.subplots(1, len(names), sharey=True))
    bins = np.linspace(0.0, 1.0, 41)
    for ax, name in zip(axes, names, strict=True):
        values = report.scores[name]
        ax.hist(values[~report.is_lens], bins=bins, alpha=0.6, label="non-lenses")
        ax.hist(values[report.is_lens], bins=bins, alpha=0.6, label="lenses")
        ax.axvline(report.threshold, color="k", lw=0.8, ls="--")
        ax.set_yscale("log")
        ax.set_xlabel(f"{name} score")
        ax.set_title(name)
    axes[0].set_ylabel("cutouts")
    axes[0].legend(fontsize=7)
    hist_path = save_png(hist, folder / f"{prefix}_scores.png", dpi=110)
    if report.purity is None:
        return [roc_path, hist_path]
    return [roc_path, hist_path, write_purity_plot(report, folder / f"{prefix}_purity.png")]


def write_purity_plot(report: EvaluationReport, path: Path) -> Path:
    """Purity against completeness at the report's prior for every scorer (the ensemble's 95 %
    lower bound shaded), purity and completeness per threshold, and, for a calibrated ensemble,
    its reliability diagram; one PNG."""
    from matplotlib.figure import Figure

    table = report.purity
    if table is None:
        raise EvaluationError("the report has no purity tables; evaluate with a prior")
    panels = 3 if table.reliability else 2
    figure = Figure(figsize=(4.6 * panels, 4.0), layout="constrained")
    axes = figure.subplots(1, panels)
    _draw_purity_curves(axes[0], report, table)
    _draw_thresholds(axes[1], table)
    if table.reliability:
        _draw_reliability(axes[2], table)
    return save_png(figure, path, dpi=110)


def _draw_purity_curves(ax: Any, report: EvaluationReport, table: PurityReport) -> None:
    for name in report.scorers():
        curve = roc_curve(report.scores[name], report.is_lens)
        shown = curve.true_positives > 0
        value = purity(curve.tpr[shown], curve.fpr[shown], prior=table.prior)
        ax.plot(curve.tpr[shown], value, lw=2.0 if name == ENSEMBLE else 1.0, label=name)
        if name == ENSEMBLE:
            n = table.n_non_lenses
            upper = np.array([fpr_upper95(int(k), n) for k in curve.false_positives[shown]])
            low = purity(curve.tpr[shown], upper, prior=table.prior)
            ax.fill_between(curve.tpr[shown], low, value, alpha=0.2, lw=0, label="95 % lower")
    ax.set_xlabel("completeness (TPR)")
    ax.set_ylabel(f"purity at prior {table.prior:g}")
    ax.set_ylim(0.0, 1.01)
    ax.set_title(f"{table.n_lenses:,} lenses, {table.n_non_lenses:,} non-lenses", fontsize=10)
    ax.legend(fontsize=7)


def _draw_thresholds(ax: Any, table: PurityReport) -> None:
    cuts = [float(k) for k in table.by_threshold]
    points = list(table.by_threshold.values())
    nan = float("nan")
    ax.plot(cuts, [p.completeness for p in points], "o-", label="completeness")
    ax.plot(cuts, [nan if p.purity is None else p.purity for p in points], "s-", label="purity")
    low = [nan if p.purity_lower95 is None else p.purity_lower95 for p in points]
    ax.plot(cuts, low, "s:", label="purity, 95 % lower")
    ax.set_xlabel(f"{table.thresholds_on} threshold")
    ax.set_ylim(0.0, 1.01)
    ax.legend(fontsize=7)


def _draw_reliability(ax: Any, table: PurityReport) -> None:
    bins = table.reliability or ()
    ax.plot([0, 1], [0, 1], color="k", lw=0.6, ls=":")
    ax.plot([b.mean_probability for b in bins], [b.lens_fraction for b in bins], "o-")
    for b in bins:
        ax.annotate(f"{b.n:,}", (b.mean_probability, b.lens_fraction), fontsize=6)
    ax.set_xlabel("p_lens at the set's lens fraction")
    ax.set_ylabel("fraction of lenses")
    ax.set_title(f"reliability (error {table.calibration_error:.3f})", fontsize=10)


def write_roc_panels(reports: Mapping[str, EvaluationReport], path: Path) -> Path:
    """One ROC panel (log FPR) per labelled set, every scorer in each, as one PNG; the path."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5.0 * max(len(reports), 1), 4.5), layout="constrained")
    axes = np.atleast_1d(figure.subplots(1, max(len(reports), 1), squeeze=False)[0])
    for ax, (label, report) in zip(axes, reports.items(), strict=False):
        title = f"{label}: {{n_lenses:,}} lenses, {{n_non:,}} non-lenses"
        _draw_roc(ax, report, title=title, ten_fp_line=True)
    return save_png(figure, path, dpi=100)
