"""Completeness in bins with Wilson intervals, and the recovery figures."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import stats

from lensflow.errors import EvaluationError
from lensflow.evaluate.recovery import (
    bin_edges,
    completeness,
    completeness_table,
    wilson_interval,
    write_recovery_plot,
)


@pytest.mark.parametrize(("n", "p"), [(8, 0.5), (20, 0.3), (40, 0.9)])
def test_the_68_percent_interval_covers_about_68_percent(n: int, p: float) -> None:
    """Exact coverage over the binomial: Wilson's is close to nominal (never a fixed number)."""
    k = np.arange(n + 1)
    covered = [lo <= p <= hi for lo, hi in (wilson_interval(int(x), n) for x in k)]
    coverage = float(stats.binom.pmf(k, n, p)[covered].sum())
    assert 0.55 < coverage < 0.80, coverage


def test_the_interval_stays_in_the_unit_interval() -> None:
    assert wilson_interval(0, 10)[0] == 0.0 and 0.0 < wilson_interval(0, 10)[1] < 0.2
    assert wilson_interval(10, 10)[1] == 1.0 and 0.8 < wilson_interval(10, 10)[0] < 1.0
    low, high = wilson_interval(5, 10)
    assert low == pytest.approx(1.0 - high) and low < 0.5 < high
    assert all(math.isnan(v) for v in wilson_interval(0, 0))


def test_completeness_counts_each_bin() -> None:
    values = np.array([0.5, 0.7, 1.2, 1.4, 1.6, np.nan, 2.9, 3.0])
    found = np.array([False, True, True, True, False, True, True, True])
    bins = completeness(values, found, edges=[0.0, 1.0, 2.0, 2.5, 3.0 + 1e-9])
    assert [(b.lenses, b.recovered) for b in bins] == [(2, 1), (3, 2), (0, 0), (2, 2)]
    assert bins[1].fraction == pytest.approx(2 / 3) and bins[1].lower < 2 / 3 < bins[1].upper
    assert math.isnan(bins[2].fraction)
    table = completeness_table({"theta_E": bins})
    assert table["lenses"].tolist() == [2, 3, 0, 2] and set(table["property"]) == {"theta_E"}
    with pytest.raises(EvaluationError, match="must rise"):
        completeness(values, found, edges=[1.0, 1.0, 2.0])
    with pytest.raises(EvaluationError, match="8 values but 2"):
        completeness(values, found[:2], edges=[0.0, 1.0])


def test_edges_span_the_values_and_keep_the_largest() -> None:
    values = np.array([30.0, 45.0, 100.0, 300.0, np.nan])
    edges = bin_edges(values, bins=4, log=True)
    assert edges[0] == 30.0 and edges[-1] > 300.0 and np.all(np.diff(np.log(edges[:-1])) > 0)
    bins = completeness(values, np.ones(5, bool), edges=edges)
    assert sum(b.lenses for b in bins) == 4
    assert len(bin_edges([1.5, 1.5], bins=3)) == 2  # one value: one bin around it
    with pytest.raises(EvaluationError, match="no finite values"):
        bin_edges([np.nan])


def test_the_figure_is_written_with_and_without_completeness(tmp_path: Path) -> None:
    values = np.linspace(0.6, 3.0, 30)
    bins = completeness(values, values > 1.0, edges=bin_edges(values, bins=5))
    snr = completeness(values * 40, values > 1.0, edges=bin_edges(values * 40, bins=5, log=True))
    for name, binned in (("plain", None), ("both", {"theta_E": bins, "arc_snr": snr})):
        path = write_recovery_plot(
            {"recovered": 3, "cut": 1},
            ranks=[1, 2, 5, 40],
            scores=[0.99, 0.9, 0.7, 0.2],
            threshold=0.5,
            scored=100,
            path=tmp_path / f"{name}.png",
            title="recovery",
            binned=binned,
        )
        assert Image.open(path).format == "PNG"
    plain, both = Image.open(tmp_path / "plain.png").size, Image.open(tmp_path / "both.png").size
    assert both[1] > plain[1]  # the completeness panels: a second row
