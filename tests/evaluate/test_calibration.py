"""Fitting the ensemble's combination (logistic, on logits) and calibration (isotonic knots)."""

from __future__ import annotations

import numpy as np
import pytest

from lensflow.calibration import calibrated_probability, combined_score
from lensflow.ensemble import ensemble_mean
from lensflow.errors import EvaluationError
from lensflow.evaluate import fit_combination, fit_isotonic, metrics_of


def test_isotonic_knots_are_monotone_and_recover_a_known_calibration() -> None:
    """P(lens | s) = s^2 for s uniform on [0, 1]: the fit must give it back."""
    rng = np.random.default_rng(4)
    scores = rng.uniform(0, 1, 60_000).astype(np.float32)
    is_lens = rng.uniform(size=scores.size) < scores.astype(np.float64) ** 2
    calibration = fit_isotonic(scores, is_lens, fitted_on={"seed": 4})
    knots, probabilities = np.array(calibration.scores), np.array(calibration.probabilities)
    assert np.all(np.diff(knots) > 0) and np.all(np.diff(probabilities) >= 0)
    assert probabilities[0] > 0.0 and probabilities[-1] < 1.0  # one pseudo count per block
    assert calibration.lens_fraction == pytest.approx(is_lens.mean())
    assert calibration.fitted_on == {"seed": 4}
    grid = np.linspace(0.05, 0.95, 91)
    error = np.abs(calibrated_probability(grid, calibration) - grid**2)
    assert error.mean() < 0.01 and error.max() < 0.05
    dense = calibrated_probability(np.linspace(-1, 2, 3001), calibration)
    assert np.all(np.diff(dense) >= 0)


def test_ties_share_one_probability_and_separated_classes_stay_inside_zero_one() -> None:
    scores = np.r_[np.full(50, 0.2), np.full(50, 0.8)]
    is_lens = np.r_[np.zeros(50, bool), np.ones(50, bool)]
    calibration = fit_isotonic(scores, is_lens)
    assert calibration.scores == (0.2, 0.8)
    # (0 + 1/2) / 51 and (50 + 1/2) / 51: the set cannot show 0 or 1
    assert calibration.probabilities == pytest.approx((0.5 / 51, 50.5 / 51))


def _members(rng: np.random.Generator, n: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Three members' probabilities: two see a lens signal (one sharper), one is noise."""
    is_lens = rng.uniform(size=n) < 0.05
    signal = np.where(is_lens, 2.5, 0.0)
    sharp = 1 / (1 + np.exp(-(signal + rng.normal(0, 0.7, n) - 2)))
    blurred = 1 / (1 + np.exp(-(signal + rng.normal(0, 1.4, n) - 2)))
    noise = rng.uniform(0, 1, n)
    scores = {"sharp": sharp, "blurred": blurred, "noise": noise}
    return {k: v.astype(np.float32) for k, v in scores.items()}, is_lens


def test_the_logistic_combination_beats_the_mean_when_a_member_is_noise() -> None:
    rng = np.random.default_rng(8)
    fit_scores, fit_labels = _members(rng, 20_000)
    combination = fit_combination(fit_scores, fit_labels, fitted_on={"n_lenses": 1})
    weights = combination.weights
    assert abs(weights["noise"]) < 0.05 * weights["sharp"]
    assert weights["sharp"] > weights["blurred"] > 0
    test_scores, test_labels = _members(rng, 20_000)  # a fresh draw
    combined = metrics_of(combined_score(test_scores, combination), test_labels)
    mean = metrics_of(ensemble_mean(test_scores), test_labels)
    best = max(metrics_of(s, test_labels).auroc for s in test_scores.values())
    assert combined.n_non_lenses == mean.n_non_lenses > 18_000
    assert combined.auroc > mean.auroc + 0.01
    assert combined.auroc >= best - 1e-3
    assert combined.tpr10 > mean.tpr10


def test_fits_refuse_sets_without_both_classes_or_with_one_score() -> None:
    scores = {"a": np.linspace(0, 1, 10, dtype=np.float32)}
    with pytest.raises(EvaluationError, match="lenses and non-lenses"):
        fit_combination(scores, np.zeros(10, bool))
    with pytest.raises(EvaluationError, match="10 scores for 9 labels"):
        fit_combination(scores, np.ones(9, bool))
    with pytest.raises(EvaluationError, match="nothing to calibrate"):
        fit_isotonic(np.full(10, 0.3), np.arange(10) % 2 == 0)
    with pytest.raises(EvaluationError, match="not finite"):
        fit_isotonic(np.r_[np.nan, np.linspace(0, 1, 9)], np.arange(10) % 2 == 0)
