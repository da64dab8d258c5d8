"""The combination and calibration as a scan applies them: logits, the combined score, p_lens."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import beta

from lensflow.calibration import (
    calibrated_probability,
    check_prior,
    combination_logit,
    combined_score,
    lens_probability,
    logit,
    shift_prior,
)
from lensflow.errors import ConfigError
from lensflow.evaluate.calibration import fit_isotonic
from lensflow.registry import EnsembleCalibration, EnsembleCombination


def test_logits_of_saturated_float32_scores_stay_finite() -> None:
    p = np.array([0.0, 1e-30, 0.5, 0.9, 1.0], np.float32)
    z = logit(p)
    assert np.all(np.isfinite(z))
    assert z[2] == 0.0 and z[3] == pytest.approx(np.log(9.0), rel=1e-6)
    assert z[4] == -z[0] == pytest.approx(np.log(2.0**24 - 1.0))


def test_the_combined_score_is_the_scaled_logistic_of_the_weighted_logits() -> None:
    a = np.array([0.1, 0.5, 0.9, 0.99], np.float32)
    b = np.array([0.7, 0.2, 0.6, 0.999], np.float32)
    combination = EnsembleCombination(weights={"a": 2.0, "b": -0.5}, bias=-1.0)
    z = -1.0 + 2.0 * np.log(a / (1 - a)) - 0.5 * np.log(b / (1 - b))
    np.testing.assert_allclose(combination_logit({"a": a, "b": b}, combination), z, rtol=1e-5)
    score = combined_score({"a": a, "b": b, "ignored": a}, combination)
    assert score.dtype == np.float32
    np.testing.assert_allclose(score, 1 / (1 + np.exp(-z / 2.5)), rtol=1e-6)
    with pytest.raises(ConfigError, match=r"members \['b'\] that were not scored"):
        combined_score({"a": a}, combination)


def test_the_prior_shift_is_bayes_rule() -> None:
    q = np.array([0.0, 0.01, 0.25, 0.5, 0.9, 1.0])
    assert np.array_equal(shift_prior(q, lens_fraction=0.2, prior=0.2), q)
    there = shift_prior(q, lens_fraction=0.2, prior=1e-4)
    np.testing.assert_allclose(shift_prior(there, lens_fraction=1e-4, prior=0.2), q, atol=1e-12)
    # at a score where the likelihoods are equal, the posterior is the prior
    assert shift_prior(np.array([0.3]), lens_fraction=0.3, prior=1e-4)[0] == pytest.approx(1e-4)
    odds = there[1:-1] / (1 - there[1:-1])
    expected = q[1:-1] / (1 - q[1:-1]) * (1e-4 / (1 - 1e-4)) / (0.2 / 0.8)
    np.testing.assert_allclose(odds, expected, rtol=1e-12)
    assert (there[0], there[-1]) == (0.0, 1.0)


def test_calibrated_at_one_lens_fraction_p_lens_is_the_posterior_at_another() -> None:
    """Scores of lenses ~ Beta(5, 2), of non-lenses ~ Beta(2, 5); a set with 30 % lenses is
    calibrated, then p_lens at a 1 % prior must match Bayes' rule with the known densities."""
    rng = np.random.default_rng(11)
    n = 200_000
    is_lens = rng.uniform(size=n) < 0.3
    scores = np.where(is_lens, rng.beta(5, 2, n), rng.beta(2, 5, n)).astype(np.float32)
    calibration = fit_isotonic(scores, is_lens)
    assert calibration.lens_fraction == pytest.approx(is_lens.mean())
    grid = np.linspace(0.15, 0.85, 15)
    lens_density, other_density = beta.pdf(grid, 5, 2), beta.pdf(grid, 2, 5)
    truth = 0.01 * lens_density / (0.01 * lens_density + 0.99 * other_density)
    p_lens = lens_probability(grid, calibration, prior=0.01)
    assert p_lens.dtype == np.float32
    np.testing.assert_allclose(p_lens, truth, rtol=0.15, atol=2e-3)
    # a second set drawn at the 1 % prior: the lens fraction per bin of p_lens matches it
    other = rng.uniform(size=n) < 0.01
    drawn = np.where(other, rng.beta(5, 2, n), rng.beta(2, 5, n))
    predicted = lens_probability(drawn, calibration, prior=0.01)
    high = predicted > 0.05
    assert predicted[high].mean() == pytest.approx(other[high].mean(), rel=0.15)
    assert predicted.mean() == pytest.approx(other.mean(), rel=0.1)


def test_p_lens_is_monotone_bounded_and_flat_beyond_the_knots() -> None:
    calibration = EnsembleCalibration(
        scores=(0.1, 0.4, 0.6, 0.9), probabilities=(0.01, 0.2, 0.2, 0.8), lens_fraction=0.25
    )
    scores = np.linspace(-0.5, 1.5, 401)
    p = lens_probability(scores, calibration, prior=1e-4)
    assert np.all(np.diff(p) >= 0) and np.all((p >= 0) & (p <= 1))
    at = calibrated_probability(np.array([0.0, 0.25, 0.5, 1.0]), calibration)
    np.testing.assert_allclose(at, [0.01, 0.105, 0.2, 0.8])


@pytest.mark.parametrize("prior", [0.0, 1.0, -1e-4, 2.0])
def test_a_prior_outside_zero_to_one_is_refused(prior: float) -> None:
    with pytest.raises(ConfigError, match="strictly between 0 and 1"):
        check_prior(prior)
