"""Members chosen for diversity: a correlated copy of the best member adds nothing."""

from __future__ import annotations

import numpy as np
import pytest

from lensflow.calibration import sigmoid
from lensflow.errors import TrainingError
from lensflow.evaluate.metrics import tpr10
from lensflow.train.selection import combination_metrics, select_members, spearman_matrix


def _scores(seed: int = 0) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Three members on 300 lenses + 3,000 non-lenses: a, b (a's near copy), c (own errors)."""
    rng = np.random.default_rng(seed)
    is_lens = np.r_[np.ones(300, bool), np.zeros(3000, bool)]
    signal = 3.0 * is_lens
    shared = rng.normal(0, 1.5, is_lens.size)
    own = rng.normal(0, 1.6, is_lens.size)
    scores = {
        "a": sigmoid(signal + shared),
        "b": sigmoid(signal + shared + rng.normal(0, 0.05, is_lens.size)),
        "c": sigmoid(signal + own),
    }
    return scores, is_lens


def test_the_best_member_comes_first_and_the_diverse_one_second() -> None:
    scores, is_lens = _scores()
    selection = select_members(scores, is_lens, size=2)
    best = max(scores, key=lambda n: tpr10(scores[n], is_lens))
    assert selection.chosen[0] == best
    assert best in ("a", "b")  # c's noise is a little larger
    assert selection.chosen[1] == "c"  # not the copy of the first
    first, second = selection.steps
    assert second["tpr10"] > first["tpr10"]  # the pair beats the best member
    assert (second["n_lenses"], second["n_non_lenses"]) == (300, 3000)
    pair = {n: scores[n] for n in ("a", "b")}
    assert combination_metrics(pair, is_lens)[0] < second["tpr10"]


def test_spearman_correlations_tell_the_copy_from_the_diverse_member() -> None:
    scores, _ = _scores()
    rho = spearman_matrix(scores)
    assert rho["a"]["a"] == 1.0
    assert rho["a"]["b"] == rho["b"]["a"]
    assert rho["a"]["b"] > 0.99
    assert rho["a"]["c"] < 0.9
    plain = select_members(scores, _scores()[1], size=3).as_dict()
    assert sorted(plain["chosen"]) == ["a", "b", "c"]
    assert plain["spearman"]["b"]["c"] == rho["b"]["c"]


def test_a_subset_larger_than_the_candidates_is_refused() -> None:
    scores, is_lens = _scores()
    with pytest.raises(TrainingError, match="cannot choose 4 of 3"):
        select_members(scores, is_lens, size=4)
