"""Fitting the ensemble's combination and calibration on a labelled validation set.

`fit_combination`: an L2-regularised logistic regression on the members' logits (weights and a
bias, fitted with scipy.optimize), so the combined score can weigh a strong member above a
weak one and beat the best member, where the mean cannot. `fit_isotonic`: isotonic regression
(scipy.optimize.isotonic_regression) of the lens label on the ensemble score, stored as knots
that `lensflow.calibration` interpolates. Each block of the isotonic fit gets one pseudo
observation at the set's lens fraction, (lenses + f) / (cutouts + 1), then the blocks are made
monotone again: no knot claims a probability of exactly 0 or 1 that the set cannot show, and
the prior shift stays finite. The validation set should follow the natural mix of contaminant
classes (not the training mix), and must not be a set the models are evaluated on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy.optimize import isotonic_regression, minimize

from lensflow.calibration import logit, sigmoid
from lensflow.errors import EvaluationError
from lensflow.registry import EnsembleCalibration, EnsembleCombination

DEFAULT_L2 = 1.0
"""The L2 penalty on the weights, (l2 / 2) sum w^2, beside the summed log loss."""


def _labels(is_lens: np.ndarray, n: int) -> np.ndarray:
    labels = np.asarray(is_lens).reshape(-1).astype(bool)
    if labels.size != n:
        raise EvaluationError(f"{n} scores for {labels.size} labels")
    if labels.all() or not labels.any():
        raise EvaluationError("a fit needs lenses and non-lenses in its set")
    return labels


def fit_combination(
    member_scores: Mapping[str, np.ndarray],
    is_lens: np.ndarray,
    *,
    l2: float = DEFAULT_L2,
    fitted_on: Mapping[str, Any] | None = None,
) -> EnsembleCombination:
    """Logistic regression of is_lens on the members' logits: weights per member and a bias.

    member_scores: each member's probabilities (N,) on the validation set; is_lens bool (N,).
    Minimises sum log-loss + (l2 / 2) sum w^2 (the bias unpenalised) with L-BFGS-B.
    """
    names = list(member_scores)
    if not names:
        raise EvaluationError("a combination needs at least one member's scores")
    x = np.column_stack([logit(member_scores[n]) for n in names])
    y = _labels(is_lens, x.shape[0]).astype(np.float64)

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = theta[:-1], theta[-1]
        z = x @ w + b
        value = float(np.sum(np.logaddexp(0.0, z) - y * z) + 0.5 * l2 * w @ w)
        residual = sigmoid(z) - y
        grad = np.r_[x.T @ residual + l2 * w, residual.sum()]
        return value, grad

    start = np.r_[np.full(len(names), 1.0 / len(names)), 0.0]
    result = minimize(loss, start, jac=True, method="L-BFGS-B", options={"maxiter": 2000})
    if not result.success or not np.all(np.isfinite(result.x)):
        raise EvaluationError(f"the logistic combination did not converge: {result.message}")
    weights = {n: float(w) for n, w in zip(names, result.x[:-1], strict=True)}
    return EnsembleCombination(
        weights=weights, bias=float(result.x[-1]), fitted_on=dict(fitted_on or {})
    )


def fit_isotonic(
    scores: np.ndarray, is_lens: np.ndarray, *, fitted_on: Mapping[str, Any] | None = None
) -> EnsembleCalibration:
    """Isotonic calibration of ensemble scores (N,) against is_lens bool (N,), as knots.

    The knots are the first and last distinct score of each block of the fit, so np.interp
    between blocks is linear and the map is monotone; lens_fraction is the set's.
    """
    values = np.asarray(scores, dtype=np.float64).reshape(-1)
    labels = _labels(is_lens, values.size)
    if not np.all(np.isfinite(values)):
        raise EvaluationError(f"{int((~np.isfinite(values)).sum())} scores are not finite")
    distinct, inverse = np.unique(values, return_inverse=True)
    if distinct.size < 2:
        raise EvaluationError("every score is the same: there is nothing to calibrate")
    count = np.bincount(inverse).astype(np.float64)
    lenses = np.bincount(inverse, weights=labels.astype(np.float64))
    fraction = float(lenses.sum() / count.sum())
    fit = isotonic_regression(lenses / count, weights=count, increasing=True)
    starts = np.asarray(fit.blocks[:-1])
    ends = np.asarray(fit.blocks[1:]) - 1
    block_count = np.add.reduceat(count, starts)
    block_lenses = np.add.reduceat(lenses, starts)
    shrunk = (block_lenses + fraction) / (block_count + 1.0)
    probability = isotonic_regression(shrunk, weights=block_count + 1.0, increasing=True).x
    knot_x = np.column_stack([distinct[starts], distinct[ends]]).reshape(-1)
    knot_y = np.repeat(probability, 2)
    keep = np.r_[True, knot_x[1:] > knot_x[:-1]]  # one-score blocks give one knot
    knot_x, knot_y = knot_x[keep], knot_y[keep]
    inner = np.r_[False, (knot_y[1:-1] == knot_y[:-2]) & (knot_y[1:-1] == knot_y[2:]), False]
    knot_x, knot_y = knot_x[~inner], knot_y[~inner]
    return EnsembleCalibration(
        scores=tuple(float(v) for v in knot_x),
        probabilities=tuple(float(v) for v in knot_y),
        lens_fraction=fraction,
        fitted_on=dict(fitted_on or {}),
    )
