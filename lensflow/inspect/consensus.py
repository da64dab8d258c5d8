"""One grade per candidate from several graders, as the published searches agree on them.

Each grader's latest grade counts once (A=3, B=2, C=1, 0=0); the consensus of a candidate is
their mean, with the number of graders and the spread (the standard deviation over graders,
0 for one grader), and the class the mean rounds to (A >= 2.5, B >= 1.5, C >= 0.5, else 0).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from lensflow.inspect.grades import LETTERS, Grade

CLASS_EDGES: tuple[tuple[float, str], ...] = ((2.5, "A"), (1.5, "B"), (0.5, "C"))
"""Lowest mean grade of each consensus class, best first; below the last: 0."""


@dataclass(frozen=True)
class Consensus:
    """The agreed grade of one candidate: mean over graders, how many, their spread."""

    candidate_id: int
    mean: float
    graders: int
    spread: float
    grades: Mapping[str, int]  # grader -> grade value

    @property
    def grade_class(self) -> str:
        """The class the mean grade rounds to: A, B, C or 0."""
        return consensus_class(self.mean)

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.candidate_id,
            "mean": self.mean,
            "graders": self.graders,
            "spread": self.spread,
            "grade_class": self.grade_class,
            "grades": {name: LETTERS[value] for name, value in self.grades.items()},
        }


def consensus_class(mean: float) -> str:
    """The consensus class of a mean grade (0-3)."""
    for edge, letter in CLASS_EDGES:
        if mean >= edge:
            return letter
    return "0"


def consensus(grades: Iterable[Grade]) -> dict[int, Consensus]:
    """Consensus per candidate id from stored grades, oldest first (each grader's last counts)."""
    latest: dict[tuple[int, str], Grade] = {}
    for grade in grades:
        latest[(grade.candidate_id, grade.grader)] = grade
    by_candidate: dict[int, dict[str, int]] = defaultdict(dict)
    for (candidate_id, grader), grade in latest.items():
        by_candidate[candidate_id][grader] = grade.grade
    result = {}
    for candidate_id, given in sorted(by_candidate.items()):
        values = np.array(list(given.values()), dtype=np.float64)
        result[candidate_id] = Consensus(
            candidate_id=candidate_id,
            mean=float(values.mean()),
            graders=int(values.size),
            spread=float(values.std()),
            grades=dict(sorted(given.items())),
        )
    return result


def consensus_table(agreed: Mapping[int, Consensus]) -> pa.Table:
    """The consensus as columns: id int64, grade_mean, grade_spread float64, grade_graders
    int32, grade_class string, grades string ("name:A;name:0", graders sorted)."""
    rows = list(agreed.values())
    return pa.table(
        {
            "id": pa.array([c.candidate_id for c in rows], pa.int64()),
            "grade_mean": pa.array([c.mean for c in rows], pa.float64()),
            "grade_spread": pa.array([c.spread for c in rows], pa.float64()),
            "grade_graders": pa.array([c.graders for c in rows], pa.int32()),
            "grade_class": pa.array([c.grade_class for c in rows], pa.string()),
            "grades": pa.array(
                [";".join(f"{n}:{LETTERS[v]}" for n, v in c.grades.items()) for c in rows],
                pa.string(),
            ),
        }
    )
