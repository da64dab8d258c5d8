"""Purity and completeness of a lens search at a stated prior lens rate (DESIGN: 1e-4).

A labelled set measures each threshold's completeness (TPR) and false-positive rate (FPR);
the sky sets the prior p, the fraction of scanned sources that are lenses. Then

    purity = TPR p / (TPR p + FPR (1 - p))
    candidates per 10^6 sources scanned = 10^6 (TPR p + FPR (1 - p))

The tables give both per threshold (on p_lens where the manifest has a calibration, else on
the ensemble score), at the thresholds keeping 50/80/90/95 % of the lenses, and per rank (the
loosest threshold whose expected list per 10^6 sources is at most that long). purity_lower95
uses the one-sided 95 % Clopper-Pearson upper bound of the FPR: with N non-lenses no FPR below
about 3 / N is shown, so a list shorter than about 3 x 10^6 / N per 10^6 sources is not
resolved. For a calibrated score, mean_p_lens (the prior-weighted mean p_lens of a selection)
should match its purity, and `reliability` compares p_lens, moved to the set's own lens
fraction, with the fraction of lenses per bin.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy.stats import beta

from lensflow.calibration import check_prior, shift_prior
from lensflow.errors import EvaluationError
from lensflow.evaluate.metrics import roc_curve, threshold_at_completeness

PURITY_THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)
COMPLETENESS_LEVELS = (0.5, 0.8, 0.9, 0.95)
RANKS = (10, 30, 100, 300, 1_000, 3_000, 10_000)
"""Candidate list lengths per PER_SOURCES sources scanned."""
PER_SOURCES = 1_000_000
RELIABILITY_EDGES = (0.0, 0.01, 0.03, 0.1, 0.3, 0.5, 0.7, 0.9, 0.97, 0.99, 1.0)


def purity(tpr: np.ndarray, fpr: np.ndarray, *, prior: float) -> np.ndarray:
    """TPR p / (TPR p + FPR (1 - p)), float64; NaN where nothing is selected."""
    tpr, fpr = np.asarray(tpr, np.float64), np.asarray(fpr, np.float64)
    found, false = tpr * prior, fpr * (1.0 - prior)
    with np.errstate(invalid="ignore", divide="ignore"):
        out: np.ndarray = np.where(found + false > 0, found / (found + false), np.nan)
    return out


def expected_candidates(
    tpr: np.ndarray, fpr: np.ndarray, *, prior: float, sources: float = PER_SOURCES
) -> np.ndarray:
    """Candidates expected per `sources` sources scanned: sources (TPR p + FPR (1 - p))."""
    tpr, fpr = np.asarray(tpr, np.float64), np.asarray(fpr, np.float64)
    out: np.ndarray = sources * (tpr * prior + fpr * (1.0 - prior))
    return out


def fpr_upper95(false_positives: int, n_non_lenses: int) -> float:
    """One-sided 95 % Clopper-Pearson upper bound of an FPR of k false positives in n."""
    if false_positives >= n_non_lenses:
        return 1.0
    return float(beta.ppf(0.95, false_positives + 1, n_non_lenses - false_positives))


def _number(value: float) -> float | None:
    return None if not np.isfinite(value) else float(value)


@dataclasses.dataclass(frozen=True)
class PurityPoint:
    """One selection, ensemble score >= threshold (equivalently p_lens >= p_lens), at a prior.

    threshold None: above every score (nothing selected); purity None: nothing selected.
    p_lens and mean_p_lens: for a calibrated ensemble only.
    """

    threshold: float | None
    completeness: float
    fpr: float
    true_positives: int
    false_positives: int
    purity: float | None
    purity_lower95: float | None
    candidates_per_million: float
    p_lens: float | None = None
    mean_p_lens: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values; p_lens and mean_p_lens only for a calibrated ensemble."""
        out = dataclasses.asdict(self)
        if self.p_lens is None and self.mean_p_lens is None:
            out.pop("p_lens")
            out.pop("mean_p_lens")
        return out


@dataclasses.dataclass(frozen=True)
class ReliabilityBin:
    """Cutouts whose probability (at the set's lens fraction) lies in [low, high)."""

    low: float
    high: float
    n: int
    mean_probability: float
    lens_fraction: float


@dataclasses.dataclass(frozen=True)
class PurityReport:
    """Purity and completeness of one score on one labelled set at a prior lens rate."""

    prior: float
    thresholds_on: str  # "p_lens" or "ensemble": what by_threshold's thresholds cut
    n_lenses: int
    n_non_lenses: int
    by_threshold: Mapping[str, PurityPoint]  # keyed by the threshold, f"{t:g}"
    by_completeness: Mapping[str, PurityPoint]
    by_rank: Mapping[int, PurityPoint]
    reliability: tuple[ReliabilityBin, ...] | None = None
    calibration_error: float | None = None  # mean |probability - lens fraction| over bins

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values: the tables keyed by threshold, completeness and rank."""
        out: dict[str, Any] = {
            "prior": self.prior,
            "thresholds_on": self.thresholds_on,
            "n_lenses": self.n_lenses,
            "n_non_lenses": self.n_non_lenses,
            "per_sources": PER_SOURCES,
            "by_threshold": {k: p.as_dict() for k, p in self.by_threshold.items()},
            "by_completeness": {k: p.as_dict() for k, p in self.by_completeness.items()},
            "by_rank": {str(k): p.as_dict() for k, p in self.by_rank.items()},
        }
        if self.reliability is not None:
            out["reliability"] = [dataclasses.asdict(b) for b in self.reliability]
            out["calibration_error"] = self.calibration_error
        return out


class _Selections:
    """Lenses and non-lenses at or above any threshold, each class sorted by ensemble score.

    p_lens is a non-decreasing function of the score, so a cut on either is a top set.
    """

    def __init__(
        self,
        scores: np.ndarray,
        probability: np.ndarray | None,
        is_lens: np.ndarray,
        *,
        prior: float,
    ):
        self.prior = prior
        self.score: list[np.ndarray] = []
        self.probability: list[np.ndarray] | None = None if probability is None else []
        self.tail: list[np.ndarray] = []  # sum of p_lens from each position to the top
        for rows in (is_lens, ~is_lens):
            order = np.argsort(scores[rows], kind="stable")
            self.score.append(scores[rows][order])
            if self.probability is not None and probability is not None:
                prob = np.maximum.accumulate(probability[rows][order])
                self.probability.append(prob)
                self.tail.append(np.r_[np.cumsum(prob[::-1])[::-1], 0.0])

    def at_score(self, threshold: float | None) -> PurityPoint:
        """The selection ensemble score >= threshold (None: nothing)."""
        if threshold is None:
            return self._point(*(a.size for a in self.score))
        lows = [int(np.searchsorted(a, threshold, side="left")) for a in self.score]
        return self._point(*lows)

    def at_probability(self, threshold: float) -> PurityPoint:
        """The selection p_lens >= threshold (a calibrated ensemble only)."""
        assert self.probability is not None
        lows = [int(np.searchsorted(a, threshold, side="left")) for a in self.probability]
        return self._point(*lows)

    def _point(self, lo_l: int, lo_n: int) -> PurityPoint:
        lens, non = self.score
        tp, fp = lens.size - lo_l, non.size - lo_n
        tpr, fpr = tp / lens.size, fp / non.size
        p = self.prior
        selected = [a[lo:] for a, lo in ((lens, lo_l), (non, lo_n))]
        lowest = min((float(a[0]) for a in selected if a.size), default=None)
        value = float(purity(np.array(tpr), np.array(fpr), prior=p))
        low = float(purity(np.array(tpr), np.array(fpr_upper95(fp, non.size)), prior=p))
        p_lens = mean_p = None
        if self.probability is not None and tp + fp > 0:
            probs, tails = self.probability, self.tail
            p_lens = min(
                float(a[lo]) for a, lo in ((probs[0], lo_l), (probs[1], lo_n)) if a[lo:].size
            )
            weighted = p * tails[0][lo_l] / lens.size + (1 - p) * tails[1][lo_n] / non.size
            mean_p = float(weighted / (p * tpr + (1 - p) * fpr))
        return PurityPoint(
            threshold=lowest,
            completeness=tpr,
            fpr=fpr,
            true_positives=tp,
            false_positives=fp,
            purity=_number(value),
            purity_lower95=_number(low) if tp + fp > 0 else None,
            candidates_per_million=PER_SOURCES * (tpr * p + fpr * (1 - p)),
            p_lens=p_lens,
            mean_p_lens=mean_p,
        )


def reliability_bins(
    probability: np.ndarray, is_lens: np.ndarray, *, edges: Sequence[float] = RELIABILITY_EDGES
) -> tuple[tuple[ReliabilityBin, ...], float]:
    """Bins of predicted probability (N,) against the lens fraction in each; and the mean
    absolute gap weighted by cutouts (the expected calibration error)."""
    which = np.clip(np.searchsorted(edges, probability, side="right") - 1, 0, len(edges) - 2)
    bins, gap = [], 0.0
    for b in range(len(edges) - 1):
        inside = which == b
        n = int(inside.sum())
        if n == 0:
            continue
        mean, fraction = float(probability[inside].mean()), float(is_lens[inside].mean())
        bins.append(ReliabilityBin(float(edges[b]), float(edges[b + 1]), n, mean, fraction))
        gap += n * abs(mean - fraction)
    return tuple(bins), gap / probability.size


def purity_report(
    scores: np.ndarray,
    is_lens: np.ndarray,
    *,
    prior: float,
    p_lens: np.ndarray | None = None,
    thresholds: Sequence[float] = PURITY_THRESHOLDS,
    levels: Sequence[float] = COMPLETENESS_LEVELS,
    ranks: Sequence[int] = RANKS,
) -> PurityReport:
    """Purity and completeness of ensemble scores (N,) against is_lens bool (N,) at prior p.

    p_lens (N,): the calibrated probabilities at this prior, when the manifest has a
    calibration; `thresholds` then cut p_lens (else the score), and the report gains
    mean_p_lens and reliability bins. Completeness levels and ranks always cut the score.
    """
    check_prior(prior)
    values = np.asarray(scores, dtype=np.float64).reshape(-1)
    labels = np.asarray(is_lens).reshape(-1).astype(bool)
    curve = roc_curve(values, labels)  # checks sizes, finiteness and both classes
    probability = None if p_lens is None else np.asarray(p_lens, np.float64).reshape(-1)
    if probability is not None and probability.shape != values.shape:
        raise EvaluationError(f"{probability.size} p_lens values for {values.size} scores")
    select = _Selections(values, probability, labels, prior=prior)
    cut = select.at_score if probability is None else select.at_probability
    by_threshold = {f"{t:g}": cut(float(t)) for t in thresholds}
    by_completeness = {
        f"{level:.2f}": select.at_score(
            threshold_at_completeness(values, labels, completeness=level)
        )
        for level in levels
    }
    listed = expected_candidates(curve.tpr, curve.fpr, prior=prior)
    by_rank = {}
    for rank in ranks:
        last = int(np.flatnonzero(listed <= rank)[-1])
        by_rank[int(rank)] = select.at_score(None if last == 0 else float(curve.thresholds[last]))
    reliability, error = None, None
    if probability is not None:
        moved = shift_prior(probability, lens_fraction=prior, prior=float(labels.mean()))
        reliability, error = reliability_bins(moved, labels)
    return PurityReport(
        prior=float(prior),
        thresholds_on="ensemble" if probability is None else "p_lens",
        n_lenses=int(labels.sum()),
        n_non_lenses=int((~labels).sum()),
        by_threshold=by_threshold,
        by_completeness=by_completeness,
        by_rank=by_rank,
        reliability=reliability,
        calibration_error=error,
    )
