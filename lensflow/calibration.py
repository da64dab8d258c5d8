"""The ensemble's fitted combination and calibrated lens probabilities, applied as a scan does.

A manifest may hold two optional tables, both fitted on a labelled validation set (see
`lensflow.evaluate.calibration` and `lensflow train calibrate`):

- `[ensemble.combination]`: a logistic regression on the members' logits. Its linear
  predictor z = bias + sum_m w_m logit(p_m) is the log-odds of a lens at the validation set's
  lens fraction; the ensemble score is sigmoid(z / sum_m |w_m|), the same ranking as z, 0.5
  where z = 0, on the scale of one member's score (so float32 saturates no sooner than a
  member does).
- `[ensemble.calibration]`: isotonic knots mapping the ensemble score to the probability of
  a lens at the validation set's lens fraction f, applied with np.interp (monotone, no
  pickles), then moved to a stated prior lens rate p by Bayes' rule:
  odds_p = odds_f * (p / (1 - p)) / (f / (1 - f)). That probability is `p_lens`.

Only numpy: a scan worker applies these to every cutout it scores.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from lensflow.errors import ConfigError
from lensflow.registry import EnsembleCalibration, EnsembleCombination

DEFAULT_PRIOR_LENS_RATE = 1e-4
"""Lenses per source scanned when nothing else is said (DESIGN: purity at a stated prior)."""

LOGIT_EPSILON = 2.0**-24
"""Probabilities are clipped to [eps, 1 - eps] before a logit: float32's last step below 1."""


def logit(probability: np.ndarray) -> np.ndarray:
    """log(p / (1 - p)) in float64, p clipped to [LOGIT_EPSILON, 1 - LOGIT_EPSILON]; (N,)."""
    p = np.clip(np.asarray(probability, dtype=np.float64), LOGIT_EPSILON, 1.0 - LOGIT_EPSILON)
    out: np.ndarray = np.log(p) - np.log1p(-p)
    return out


def sigmoid(z: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-z)) in float64 without overflow; (N,)."""
    z = np.asarray(z, dtype=np.float64)
    out: np.ndarray = np.exp(-np.logaddexp(0.0, -z))
    return out


def combination_logit(
    member_scores: Mapping[str, np.ndarray], combination: EnsembleCombination
) -> np.ndarray:
    """z = bias + sum_m w_m logit(p_m): the fitted log-odds of a lens, float64 (N,).

    member_scores: each member's probabilities (N,); every weighted member must be there.
    """
    missing = sorted(set(combination.weights) - set(member_scores))
    if missing:
        raise ConfigError(f"[ensemble.combination] weights members {missing} that were not scored")
    z = np.full(_length(member_scores), combination.bias, dtype=np.float64)
    for name, weight in combination.weights.items():
        z += weight * logit(member_scores[name])
    return z


def combined_score(
    member_scores: Mapping[str, np.ndarray], combination: EnsembleCombination
) -> np.ndarray:
    """The ensemble score of a fitted combination: sigmoid(z / sum |w|), float32 (N,)."""
    scale = sum(abs(w) for w in combination.weights.values()) or 1.0
    score: np.ndarray = sigmoid(combination_logit(member_scores, combination) / scale)
    return score.astype(np.float32)


def calibrated_probability(scores: np.ndarray, calibration: EnsembleCalibration) -> np.ndarray:
    """P(lens | score) at the calibration set's lens fraction: the knots interpolated; (N,).

    Scores outside the knots take the end knots' probabilities. float64.
    """
    values = np.asarray(scores, dtype=np.float64)
    out: np.ndarray = np.interp(values, calibration.scores, calibration.probabilities)
    return out


def shift_prior(probability: np.ndarray, *, lens_fraction: float, prior: float) -> np.ndarray:
    """Probabilities at lens fraction f moved to prior p by Bayes' rule (odds times a ratio).

    odds_p = odds_f * (p / (1 - p)) / (f / (1 - f)); 0 and 1 stay 0 and 1. float64 (N,).
    """
    check_prior(prior)
    check_prior(lens_fraction, what="lens fraction")
    q = np.asarray(probability, dtype=np.float64)
    ratio = (prior / (1.0 - prior)) / (lens_fraction / (1.0 - lens_fraction))
    out: np.ndarray = q * ratio / (q * ratio + (1.0 - q))
    return out


def lens_probability(
    scores: np.ndarray, calibration: EnsembleCalibration, *, prior: float
) -> np.ndarray:
    """p_lens: the calibrated probability of a lens at prior lens rate `prior`, float32 (N,).

    scores: ensemble scores (N,) as the manifest's combination (or mean) gives them.
    """
    at_fraction = calibrated_probability(scores, calibration)
    shifted = shift_prior(at_fraction, lens_fraction=calibration.lens_fraction, prior=prior)
    return shifted.astype(np.float32)


def check_prior(prior: float, *, what: str = "prior lens rate") -> None:
    """Refuse a rate outside (0, 1)."""
    if not 0.0 < float(prior) < 1.0:
        raise ConfigError(f"{what} must lie strictly between 0 and 1, got {prior}")


def _length(member_scores: Mapping[str, np.ndarray]) -> int:
    sizes = {int(np.asarray(v).shape[0]) for v in member_scores.values()}
    if len(sizes) != 1:
        raise ConfigError(f"member scores of different lengths {sorted(sizes)}")
    return sizes.pop()
