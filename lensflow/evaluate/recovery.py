"""Completeness of a lens search in bins of a lens property, as a table and a figure.

Completeness in a bin is the fraction of the known (or injected) lenses there that the search
recovered, with a 68 % Wilson score interval (it stays inside [0, 1] and is honest for the
few lenses a bin of a mock sky holds). `lensflow recover` bins by Einstein radius and by arc
signal-to-noise, the two properties a lens finder's completeness is known to follow.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from lensflow.errors import EvaluationError
from lensflow.evaluate.plots import save_png

Z_68 = 0.9944578832097535
"""The normal quantile of a central 68 % interval (68.0 %, not 68.27 %: the quoted level)."""

DEFAULT_BINS = 6


@dataclass(frozen=True)
class CompletenessBin:
    """One bin: [low, high), the lenses in it, those recovered, their fraction and its 68 %
    interval (NaN where the bin is empty)."""

    low: float
    high: float
    lenses: int
    recovered: int
    fraction: float
    lower: float
    upper: float


def wilson_interval(recovered: int, total: int, *, z: float = Z_68) -> tuple[float, float]:
    """The Wilson score interval of a binomial fraction recovered/total; NaNs when total is 0."""
    if total <= 0:
        return math.nan, math.nan
    p = recovered / total
    denominator = 1.0 + z * z / total
    centre = (p + z * z / (2 * total)) / denominator
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denominator
    return max(0.0, min(p, centre - half)), min(1.0, max(p, centre + half))  # p inside


def bin_edges(values: npt.ArrayLike, *, bins: int = DEFAULT_BINS, log: bool = False) -> np.ndarray:
    """`bins` + 1 edges spanning the finite values, evenly spaced (in log10 with log)."""
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite) & ((finite > 0) if log else True)]
    if finite.size == 0:
        raise EvaluationError("no finite values to bin (every lens lacks this property)")
    low, high = float(finite.min()), float(finite.max())
    if log:
        edges = np.logspace(math.log10(low), math.log10(high), bins + 1)
    else:
        edges = np.linspace(low, high, bins + 1)
    if high == low:
        edges = np.array([low, low + max(abs(low) * 1e-6, 1e-12)])
    edges[0] = low  # exactly: logspace may land a hair off the ends
    edges[-1] = np.nextafter(high, np.inf)  # the largest value falls in the last bin
    return edges


def completeness(
    values: npt.ArrayLike, recovered: npt.ArrayLike, *, edges: Sequence[float] | np.ndarray
) -> list[CompletenessBin]:
    """Completeness per bin [edges[k], edges[k+1]) of a lens property (NaN values left out).

    values (N,): the property of each lens; recovered (N,) bool: found by the search.
    """
    x = np.asarray(values, dtype=np.float64)
    found = np.asarray(recovered, dtype=bool)
    if x.shape != found.shape:
        raise EvaluationError(f"{x.size} values but {found.size} recovered flags")
    edge = np.asarray(edges, dtype=np.float64)
    if edge.ndim != 1 or edge.size < 2 or np.any(np.diff(edge) <= 0):
        raise EvaluationError(f"bin edges must rise: {edge.tolist()}")
    out = []
    for low, high in itertools.pairwise(edge):
        inside = (x >= low) & (x < high)
        n, k = int(inside.sum()), int((inside & found).sum())
        lower, upper = wilson_interval(k, n)
        out.append(
            CompletenessBin(float(low), float(high), n, k, k / n if n else math.nan, lower, upper)
        )
    return out


def completeness_table(binned: Mapping[str, Sequence[CompletenessBin]]) -> pd.DataFrame:
    """The bins of several properties as one table: property, low, high, lenses, recovered,
    fraction, lower, upper (one row per bin)."""
    rows = [{"property": name, **vars(b)} for name, bins in binned.items() for b in bins]
    columns = ["property", "low", "high", "lenses", "recovered", "fraction", "lower", "upper"]
    return pd.DataFrame(rows, columns=columns)


LABELS = {"theta_E": "Einstein radius theta_E (arcsec)", "arc_snr": "arc signal-to-noise"}
"""Axis labels of the properties `lensflow recover` bins by."""
LOG_AXES = ("arc_snr",)
"""Properties binned and drawn on a log axis."""


def write_recovery_plot(
    counts: Mapping[str, int],
    *,
    ranks: npt.ArrayLike,
    scores: npt.ArrayLike,
    threshold: float,
    scored: int,
    path: Path,
    title: str,
    binned: Mapping[str, Sequence[CompletenessBin]] | None = None,
) -> Path:
    """The recovery figure: known lenses per funnel stage (bars); the scored ones' ensemble
    score against their rank among all `scored` candidates (log), with the threshold; and one
    panel of completeness per binned property, with 68 % intervals and counts."""
    from matplotlib.figure import Figure

    binned = binned or {}
    panels = 2 + len(binned)
    columns = min(panels, 2)
    rows = math.ceil(panels / columns)
    figure = Figure(figsize=(4.6 * columns, 3.6 * rows), layout="constrained")
    axes = np.atleast_1d(figure.subplots(rows, columns)).ravel()
    _draw_stages(axes[0], counts)
    _draw_ranks(axes[1], ranks=ranks, scores=scores, threshold=threshold, scored=scored)
    for ax, (name, bins) in zip(axes[2:], binned.items(), strict=False):
        _draw_completeness(ax, name, bins)
    for ax in axes[panels:]:
        ax.set_axis_off()
    figure.suptitle(title, fontsize=10)
    return save_png(figure, path, dpi=110)


def _draw_stages(ax: Any, counts: Mapping[str, int]) -> None:
    names = list(counts)[::-1]
    ax.barh(names, [counts[n] for n in names], color="tab:blue")
    for y, n in enumerate(names):
        ax.annotate(
            str(counts[n]), (counts[n], y), xytext=(3, 0), textcoords="offset points",
            va="center", fontsize=8,
        )  # fmt: skip
    ax.set_xlabel("known lenses")
    ax.set_xlim(0, max(1, *counts.values()) * 1.15)


def _draw_ranks(
    ax: Any, *, ranks: npt.ArrayLike, scores: npt.ArrayLike, threshold: float, scored: int
) -> None:
    rank_values = np.asarray(ranks, dtype=np.float64)
    score_values = np.asarray(scores, dtype=np.float64)
    above = score_values >= threshold
    ax.scatter(rank_values[above], score_values[above], s=14, label="recovered")
    ax.scatter(rank_values[~above], score_values[~above], s=14, marker="x", label="below threshold")
    ax.axhline(threshold, color="k", lw=0.8, ls="--")
    ax.set_xscale("log")
    ax.set_xlim(0.8, max(scored, 2) * 1.25)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel(f"rank among the {scored:,} scored candidates")
    ax.set_ylabel("ensemble score")
    ax.legend(fontsize=7, loc="lower left")


def _draw_completeness(ax: Any, name: str, bins: Sequence[CompletenessBin]) -> None:
    low = np.array([b.low for b in bins])
    high = np.array([b.high for b in bins])
    log = name in LOG_AXES and low.min() > 0
    centre = np.sqrt(low * high) if log else (low + high) / 2
    fraction = np.array([b.fraction for b in bins])
    lower = np.array([b.lower for b in bins])
    upper = np.array([b.upper for b in bins])
    ax.errorbar(
        centre,
        fraction,
        yerr=[np.clip(fraction - lower, 0, None), np.clip(upper - fraction, 0, None)],
        xerr=[centre - low, high - centre],
        fmt="o",
        capsize=2,
    )
    for x, b in zip(centre, bins, strict=True):
        if b.lenses:
            ax.annotate(f"{b.recovered}/{b.lenses}", (x, 0.03), ha="center", fontsize=7)
    if log:
        ax.set_xscale("log")
    ax.set_xlabel(LABELS.get(name, name))
    ax.set_ylim(0.0, 1.05)
    ax.set_ylabel("completeness (68 % interval)")
    ax.grid(alpha=0.3)
