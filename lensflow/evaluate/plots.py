"""Evaluation figures: ROC curves on a log false-positive axis and score histograms, as PNGs.

Every figure is written through `lensflow.io.write_atomic`, so a reader never sees half a PNG.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lensflow.ensemble import ENSEMBLE
from lensflow.evaluate.metrics import roc_curve
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

    Writes `<prefix>.png` and `<prefix>_scores.png`; returns their paths.
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
    return [roc_path, hist_path]


def write_roc_panels(reports: Mapping[str, EvaluationReport], path: Path) -> Path:
    """One ROC panel (log FPR) per labelled set, every scorer in each, as one PNG; the path."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5.0 * max(len(reports), 1), 4.5), layout="constrained")
    axes = np.atleast_1d(figure.subplots(1, max(len(reports), 1), squeeze=False)[0])
    for ax, (label, report) in zip(axes, reports.items(), strict=False):
        title = f"{label}: {{n_lenses:,}} lenses, {{n_non:,}} non-lenses"
        _draw_roc(ax, report, title=title, ten_fp_line=True)
    return save_png(figure, path, dpi=100)
