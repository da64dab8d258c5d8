"""The field's metrics on hand-computable cases and properties."""

from __future__ import annotations

from itertools import product

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lensflow.errors import EvaluationError
from lensflow.evaluate import auroc, metrics_of, roc_curve, tpr0, tpr10


def test_perfect_ranking() -> None:
    scores = np.array([0.9, 0.8, 0.2, 0.1])
    labels = np.array([True, True, False, False])
    assert auroc(scores, labels) == 1.0
    assert tpr0(scores, labels) == 1.0
    assert tpr10(scores, labels) == 1.0


def test_reversed_ranking() -> None:
    scores = np.array([0.1, 0.2, 0.8, 0.9])
    labels = np.array([1, 1, 0, 0])
    assert auroc(scores, labels) == 0.0
    assert tpr0(scores, labels) == 0.0
    assert tpr10(scores, labels) == 1.0  # two false positives are fewer than ten


def test_ties_fall_on_the_same_side() -> None:
    # lens 0.9; lens 0.5 tied with a non-lens 0.5; non-lens 0.1
    scores = np.array([0.9, 0.5, 0.5, 0.1])
    labels = np.array([True, True, False, False])
    assert auroc(scores, labels) == pytest.approx(3.5 / 4)
    assert tpr0(scores, labels) == 0.5  # the tied lens comes only with its false positive
    curve = roc_curve(scores, labels)
    np.testing.assert_array_equal(curve.true_positives, [0, 1, 2, 2])
    np.testing.assert_array_equal(curve.false_positives, [0, 0, 1, 2])
    np.testing.assert_array_equal(curve.thresholds, [np.inf, 0.9, 0.5, 0.1])


def test_every_lens_tied_with_the_top_non_lens() -> None:
    scores = np.array([0.7, 0.7, 0.7, 0.2])
    labels = np.array([True, True, False, False])
    assert tpr0(scores, labels) == 0.0
    assert auroc(scores, labels) == pytest.approx((0.5 + 0.5 + 1 + 1) / 4)


def _nine_or_ten(tenth_non_lens: float) -> tuple[np.ndarray, np.ndarray]:
    """5 lenses at 1.0, 5 at 0.5; nine non-lenses at 0.8, one at `tenth_non_lens`, 90 at 0.1."""
    lenses = [1.0] * 5 + [0.5] * 5
    non_lenses = [0.8] * 9 + [tenth_non_lens] + [0.1] * 90
    scores = np.array(lenses + non_lenses)
    labels = np.array([True] * len(lenses) + [False] * len(non_lenses))
    return scores, labels


def test_tpr10_allows_nine_false_positives_not_ten() -> None:
    assert tpr10(*_nine_or_ten(0.4)) == 1.0  # all lenses above 0.5 come with 9 false positives
    assert tpr10(*_nine_or_ten(0.6)) == 0.5  # a tenth false positive above the lower lenses
    assert tpr10(*_nine_or_ten(0.5)) == 0.5  # ...or tied with them
    assert tpr0(*_nine_or_ten(0.4)) == 0.5


def test_metrics_of_counts_classes() -> None:
    scores, labels = _nine_or_ten(0.4)
    m = metrics_of(scores, labels)
    assert (m.n_lenses, m.n_non_lenses) == (10, 100)
    assert m.auroc == pytest.approx(auroc(scores, labels))
    assert (m.tpr0, m.tpr10) == (tpr0(scores, labels), tpr10(scores, labels))


@pytest.mark.parametrize(
    ("scores", "labels", "message"),
    [
        ([0.1, 0.2], [True, True], "at least one lens and one non-lens"),
        ([0.1, 0.2], [False, False], "at least one lens and one non-lens"),
        ([0.1, np.nan], [True, False], "not finite"),
        ([0.1, 0.2, 0.3], [True, False], "3 scores for 2 labels"),
        ([0.1, 0.2], [2, 0], "booleans or 0/1"),
    ],
)
def test_unusable_inputs_are_refused(scores: list[float], labels: list[int], message: str) -> None:
    with pytest.raises(EvaluationError, match=message):
        auroc(np.array(scores), np.array(labels))


def _both_classes(pairs: list[tuple[int, bool]]) -> bool:
    return any(lab for _, lab in pairs) and not all(lab for _, lab in pairs)


_scored = st.lists(st.tuples(st.integers(0, 12), st.booleans()), min_size=2, max_size=60).filter(
    _both_classes
)


@settings(max_examples=200, deadline=None)
@given(_scored)
def test_auroc_is_the_mann_whitney_fraction(pairs: list[tuple[int, bool]]) -> None:
    scores = np.array([s for s, _ in pairs], dtype=float)
    labels = np.array([lab for _, lab in pairs])
    pos, neg = scores[labels], scores[~labels]
    u = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in product(pos, neg))
    assert auroc(scores, labels) == pytest.approx(u / (pos.size * neg.size), abs=1e-12)


@settings(max_examples=200, deadline=None)
@given(_scored)
def test_metrics_ignore_monotone_transforms(pairs: list[tuple[int, bool]]) -> None:
    scores = np.array([s for s, _ in pairs], dtype=float)
    labels = np.array([lab for _, lab in pairs])
    transformed = np.arctan(0.7 * scores**3 - 4.0)  # strictly increasing, no ties made
    for metric in (auroc, tpr0, tpr10):
        assert metric(transformed, labels) == pytest.approx(metric(scores, labels), abs=1e-12)


@settings(max_examples=100, deadline=None)
@given(_scored)
def test_tpr_matches_brute_force(pairs: list[tuple[int, bool]]) -> None:
    scores = np.array([s for s, _ in pairs], dtype=float)
    labels = np.array([lab for _, lab in pairs])
    best = {0: 0.0, 9: 0.0}
    for t in np.unique(scores):
        chosen = scores >= t
        fp = int((chosen & ~labels).sum())
        tpr = float((chosen & labels).sum() / labels.sum())
        for limit in (0, 9):
            if fp <= limit:
                best[limit] = max(best[limit], tpr)
    assert tpr0(scores, labels) == best[0]
    assert tpr10(scores, labels) == best[9]
