"""Members chosen for diversity: greedy forward selection on a fitted combination's TPR10.

A mean of correlated members gains nothing: the ensemble only beats its best member where the
members err on different cutouts. Of the candidates trained, `select_members` starts from none
and adds, one at a time, the candidate whose logistic combination with those chosen
(lensflow.evaluate.calibration.fit_combination, the one the manifest then holds) has the
highest TPR10 on the validation set (ties: higher AUROC, then the earlier candidate), until the
subset has `size` members. The combination is fitted and scored on the same set: a few weights
fitted on thousands of cutouts, so the in-sample TPR10 is close to an out-of-sample one, and the
held-out sets report the truth. The candidates' pairwise Spearman correlations go into the run
report beside the steps. Torch-free.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from lensflow.calibration import combined_score
from lensflow.errors import TrainingError
from lensflow.evaluate.calibration import DEFAULT_L2, fit_combination
from lensflow.evaluate.metrics import auroc, tpr10


@dataclasses.dataclass(frozen=True)
class Selection:
    """The members chosen, in the order chosen, and what each step added.

    steps: per step the member added and the combination's TPR10 and AUROC with it (n_lenses,
    n_non_lenses: the set's); correlations: Spearman rho of every pair of candidates.
    """

    chosen: tuple[str, ...]
    steps: tuple[Mapping[str, Any], ...]
    correlations: Mapping[str, Mapping[str, float]]

    def as_dict(self) -> dict[str, Any]:
        """JSON/TOML-ready plain values."""
        return {
            "chosen": list(self.chosen),
            "steps": [dict(s) for s in self.steps],
            "spearman": {k: dict(v) for k, v in self.correlations.items()},
        }


def spearman_matrix(scores: Mapping[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """Spearman rank correlation of every pair of members' scores (N,) on one set."""
    names = list(scores)
    out: dict[str, dict[str, float]] = {n: {} for n in names}
    for i, a in enumerate(names):
        out[a][a] = 1.0
        for b in names[i + 1 :]:
            rho = float(spearmanr(scores[a], scores[b]).statistic)
            out[a][b] = out[b][a] = rho
    return out


def combination_metrics(
    scores: Mapping[str, np.ndarray], is_lens: np.ndarray, *, l2: float = DEFAULT_L2
) -> tuple[float, float]:
    """(TPR10, AUROC) of the logistic combination of scores fitted on (scores, is_lens)."""
    combination = fit_combination(scores, is_lens, l2=l2)
    combined = combined_score(scores, combination)
    return tpr10(combined, is_lens), auroc(combined, is_lens)


def select_members(
    scores: Mapping[str, np.ndarray],
    is_lens: np.ndarray,
    *,
    size: int,
    l2: float = DEFAULT_L2,
) -> Selection:
    """Greedy forward selection of `size` of the candidates' scores (each (N,) probabilities).

    is_lens bool (N,). See the module docstring for the rule.
    """
    candidates: Sequence[str] = list(scores)
    if not 0 < size <= len(candidates):
        raise TrainingError(f"cannot choose {size} of {len(candidates)} candidates")
    labels = np.asarray(is_lens, dtype=bool)
    counts = {"n_lenses": int(labels.sum()), "n_non_lenses": int((~labels).sum())}
    chosen: list[str] = []
    steps: list[Mapping[str, Any]] = []
    while len(chosen) < size:
        best: tuple[float, float, int] | None = None
        for index, name in enumerate(candidates):
            if name in chosen:
                continue
            subset = {n: scores[n] for n in [*chosen, name]}
            value, area = combination_metrics(subset, labels, l2=l2)
            key = (value, area, -index)
            if best is None or key > best:
                best = key
        assert best is not None
        added = candidates[-best[2]]
        chosen.append(added)
        steps.append({"added": added, "tpr10": best[0], "auroc": best[1], **counts})
    return Selection(chosen=tuple(chosen), steps=tuple(steps), correlations=spearman_matrix(scores))
