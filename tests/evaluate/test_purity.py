"""Purity and completeness at a prior lens rate: the formula, the tables, their bounds."""

from __future__ import annotations

import numpy as np
import pytest

from lensflow.calibration import shift_prior
from lensflow.errors import ConfigError, EvaluationError
from lensflow.evaluate.purity import expected_candidates, fpr_upper95, purity, purity_report


def test_purity_is_tpr_p_over_tpr_p_plus_fpr_one_minus_p() -> None:
    tpr = np.array([0.9, 0.5, 0.0, 0.0])
    fpr = np.array([1e-3, 0.0, 1e-2, 0.0])
    value = purity(tpr, fpr, prior=1e-4)
    assert value[0] == pytest.approx(0.9e-4 / (0.9e-4 + 1e-3 * 0.9999))
    assert value[1] == 1.0 and value[2] == 0.0 and np.isnan(value[3])
    listed = expected_candidates(tpr, fpr, prior=1e-4)
    assert listed[0] == pytest.approx(1e6 * (0.9e-4 + 1e-3 * 0.9999))


def test_the_fpr_upper_bound_is_clopper_pearson() -> None:
    assert fpr_upper95(0, 20_000) == pytest.approx(1 - 0.05 ** (1 / 20_000))
    assert fpr_upper95(0, 20_000) == pytest.approx(3.0 / 20_000, rel=0.01)  # the rule of three
    assert fpr_upper95(5, 5) == 1.0
    assert 10 / 1000 < fpr_upper95(10, 1000) < 20 / 1000


def _set() -> tuple[np.ndarray, np.ndarray]:
    """10 lenses scoring 0.91..1.0 and 0.05; 1,000 non-lenses: 2 at 0.95, 8 at 0.6, the rest
    spread below 0.5."""
    lenses = np.r_[np.linspace(0.91, 1.0, 9), 0.05]
    non = np.r_[0.95, 0.95, np.full(8, 0.6), np.linspace(0.0, 0.49, 990)]
    return np.r_[lenses, non], np.r_[np.ones(10, bool), np.zeros(1000, bool)]


def test_the_tables_count_each_selection_at_the_prior() -> None:
    scores, is_lens = _set()
    report = purity_report(scores, is_lens, prior=1e-3, thresholds=(0.5, 0.9, 0.96))
    assert (report.n_lenses, report.n_non_lenses, report.thresholds_on) == (10, 1000, "ensemble")
    at = report.by_threshold
    assert (at["0.9"].true_positives, at["0.9"].false_positives) == (9, 2)
    assert at["0.9"].purity == pytest.approx(0.9e-3 / (0.9e-3 + 0.002 * 0.999))
    assert at["0.5"].false_positives == 10
    assert at["0.96"].true_positives == 4 and at["0.96"].purity == 1.0
    assert at["0.96"].purity_lower95 == pytest.approx(
        float(purity(np.array(0.4), np.array(fpr_upper95(0, 1000)), prior=1e-3))
    )
    assert at["0.96"].threshold == pytest.approx(np.linspace(0.91, 1.0, 9)[5])
    # 90 % of 10 lenses: all but the one at 0.05, at the 0.91 lens
    ninety = report.by_completeness["0.90"]
    assert (ninety.threshold, ninety.true_positives, ninety.false_positives) == (0.91, 9, 2)
    assert report.by_completeness["0.95"].true_positives == 10
    assert report.by_completeness["0.50"].true_positives == 5
    assert ninety.mean_p_lens is None and "mean_p_lens" not in ninety.as_dict()


def test_each_rank_is_the_longest_list_that_fits() -> None:
    scores, is_lens = _set()
    ranks = (50, 100, 1_500, 3_000, 11_000)
    report = purity_report(scores, is_lens, prior=1e-3, ranks=ranks)
    # per 10^6 sources: a lens is 100 expected candidates, a false positive 999
    assert report.by_rank[50].threshold is None and report.by_rank[50].true_positives == 0
    assert report.by_rank[50].purity is None
    assert (report.by_rank[100].threshold, report.by_rank[100].true_positives) == (1.0, 1)
    # the two non-lenses at 0.95 come with the lenses above them: 500 + 1998 > 1500
    assert (report.by_rank[1_500].true_positives, report.by_rank[1_500].false_positives) == (5, 0)
    three = report.by_rank[3_000]
    assert (three.true_positives, three.false_positives) == (9, 2)
    assert three.candidates_per_million == pytest.approx(900 + 2 * 999)
    assert report.by_rank[11_000].false_positives == 10
    for rank, point in report.by_rank.items():
        assert point.candidates_per_million <= rank


def test_a_calibrated_score_gives_mean_p_lens_equal_to_purity() -> None:
    """p_lens drawn as the true posterior at a 1e-3 prior: each selection's mean p_lens is
    its purity, and p_lens moved to the set's own lens fraction is reliable."""
    rng = np.random.default_rng(21)
    n, prior = 400_000, 1e-3
    at_set = rng.beta(0.5, 3.0, n)  # P(lens | cutout) at the set's lens fraction
    is_lens = rng.uniform(size=n) < at_set
    p_lens = shift_prior(at_set, lens_fraction=float(is_lens.mean()), prior=prior)
    cuts = (0.001, 0.003, 0.01)
    report = purity_report(at_set, is_lens, prior=prior, p_lens=p_lens, thresholds=cuts)
    assert report.thresholds_on == "p_lens"
    for cut in cuts:
        point = report.by_threshold[f"{cut:g}"]
        assert point.p_lens is not None and point.p_lens >= cut
        assert point.false_positives > 1_000
        assert point.mean_p_lens == pytest.approx(point.purity, rel=0.03)
    assert report.calibration_error is not None and report.calibration_error < 0.003
    assert report.reliability is not None and sum(b.n for b in report.reliability) == n
    shuffled = purity_report(
        at_set, is_lens, prior=prior, p_lens=np.sort(p_lens) ** 2, thresholds=cuts
    )
    assert shuffled.calibration_error is not None and shuffled.calibration_error > 0.01


def test_bad_inputs_are_refused() -> None:
    scores, is_lens = _set()
    with pytest.raises(ConfigError, match="strictly between 0 and 1"):
        purity_report(scores, is_lens, prior=0.0)
    with pytest.raises(EvaluationError, match="at least one lens and one non-lens"):
        purity_report(scores, np.zeros(scores.size, bool), prior=1e-4)
    with pytest.raises(EvaluationError, match="3 p_lens values"):
        purity_report(scores, is_lens, prior=1e-4, p_lens=np.ones(3))
