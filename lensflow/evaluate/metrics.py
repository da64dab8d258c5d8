"""The field's metrics (Metcalf et al. 2019): ROC curve, AUROC, TPR0 and TPR10, and the
threshold that keeps a given fraction of the lenses.

TPR0 is the highest true-positive rate at any score threshold with no false positive, TPR10
the highest at any threshold with at most nine. A threshold t selects every cutout scoring
>= t, so tied scores always fall on the same side: a lens tied with a non-lens is selected only
together with that false positive. TPR0 and TPR10 depend on how many non-lenses were scored,
so every result states n_lenses and n_non_lenses.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from lensflow.errors import EvaluationError


@dataclasses.dataclass(frozen=True)
class RocCurve:
    """A ROC curve: one point per distinct score threshold, from none selected to all.

    fpr, tpr float64 (K + 1,); thresholds float64 (K + 1,), descending, the first +inf.
    false_positives, true_positives int64 (K + 1,): the counts behind fpr and tpr.
    """

    fpr: np.ndarray
    tpr: np.ndarray
    thresholds: np.ndarray
    false_positives: np.ndarray
    true_positives: np.ndarray


@dataclasses.dataclass(frozen=True)
class Metrics:
    """The field's metrics of one scorer on one labelled set."""

    auroc: float
    tpr0: float
    tpr10: float
    n_lenses: int
    n_non_lenses: int

    def as_dict(self) -> dict[str, float | int]:
        """The metrics as JSON/TOML-ready plain values."""
        return dataclasses.asdict(self)


def _checked(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scores as float64 (N,) and labels as bool (N,), refused when metrics cannot be had."""
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    labels = np.asarray(labels).reshape(-1)
    if labels.dtype != np.bool_:
        if not np.isin(labels, (0, 1)).all():
            raise EvaluationError("labels must be booleans or 0/1 (1 = lens)")
        labels = labels.astype(bool)
    if scores.shape != labels.shape:
        raise EvaluationError(f"{scores.size} scores for {labels.size} labels")
    if not np.isfinite(scores).all():
        raise EvaluationError(f"{int((~np.isfinite(scores)).sum())} scores are not finite")
    n_pos = int(labels.sum())
    if n_pos == 0 or n_pos == labels.size:
        raise EvaluationError(
            f"metrics need at least one lens and one non-lens; got {n_pos} lenses and "
            f"{labels.size - n_pos} non-lenses"
        )
    return scores, labels


def roc_curve(scores: np.ndarray, labels: np.ndarray) -> RocCurve:
    """The ROC curve of scores (N,) against labels (N,) bool, 1 = lens; a tie is one point."""
    scores, labels = _checked(scores, labels)
    order = np.argsort(-scores, kind="stable")
    ranked, hits = scores[order], labels[order]
    # the last row of each run of equal scores closes a threshold
    last = np.flatnonzero(np.r_[ranked[1:] != ranked[:-1], True])
    tp = np.r_[0, np.cumsum(hits)[last]].astype(np.int64)
    fp = np.r_[0, np.cumsum(~hits)[last]].astype(np.int64)
    return RocCurve(
        fpr=fp / fp[-1],
        tpr=tp / tp[-1],
        thresholds=np.r_[np.inf, ranked[last]],
        false_positives=fp,
        true_positives=tp,
    )


def _area(curve: RocCurve) -> float:
    return float(np.trapezoid(curve.tpr, curve.fpr))


def _best_tpr(curve: RocCurve, max_false_positives: int) -> float:
    return float(curve.tpr[curve.false_positives <= max_false_positives].max())


def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve: P(lens score > non-lens score) + P(tie) / 2."""
    return _area(roc_curve(scores, labels))


def tpr_at_false_positives(
    scores: np.ndarray, labels: np.ndarray, *, max_false_positives: int
) -> float:
    """The highest TPR at any threshold that selects at most `max_false_positives` non-lenses."""
    return _best_tpr(roc_curve(scores, labels), max_false_positives)


def tpr0(scores: np.ndarray, labels: np.ndarray) -> float:
    """TPR0: the highest TPR at any threshold with no false positive."""
    return tpr_at_false_positives(scores, labels, max_false_positives=0)


def tpr10(scores: np.ndarray, labels: np.ndarray) -> float:
    """TPR10: the highest TPR at any threshold with fewer than ten false positives."""
    return tpr_at_false_positives(scores, labels, max_false_positives=9)


def metrics_of(scores: np.ndarray, labels: np.ndarray) -> Metrics:
    """AUROC, TPR0, TPR10 and the class counts of one scorer, from one ROC curve."""
    curve = roc_curve(scores, labels)
    return Metrics(
        auroc=_area(curve),
        tpr0=_best_tpr(curve, 0),
        tpr10=_best_tpr(curve, 9),
        n_lenses=int(curve.true_positives[-1]),
        n_non_lenses=int(curve.false_positives[-1]),
    )


def threshold_at_completeness(
    scores: np.ndarray, labels: np.ndarray, *, completeness: float
) -> float:
    """The highest threshold whose selection (score >= t) keeps `completeness` of the lenses.

    completeness in (0, 1]; ties at t are all selected, so the kept fraction may be higher.
    """
    if not 0.0 < completeness <= 1.0:
        raise EvaluationError(f"completeness must lie in (0, 1], got {completeness}")
    scores, labels = _checked(scores, labels)
    lens_scores = np.sort(scores[labels])[::-1]
    needed = int(np.ceil(completeness * lens_scores.size - 1e-9))
    return float(lens_scores[max(needed, 1) - 1])
