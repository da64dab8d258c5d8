"""Consensus per candidate: the mean over graders' latest grades, their number and spread."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from lensflow.inspect.consensus import consensus, consensus_class, consensus_table
from lensflow.inspect.grades import Grade

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def grades(*given: tuple[int, str, int]) -> list[Grade]:
    return [
        Grade(cid, who, value, T0 + timedelta(seconds=n))
        for n, (cid, who, value) in enumerate(given)
    ]


def test_mean_graders_and_spread_over_graders() -> None:
    agreed = consensus(grades((7, "ann", 3), (7, "bob", 0), (7, "cy", 3), (8, "ann", 2)))
    seven = agreed[7]
    assert seven.mean == pytest.approx(2.0)
    assert seven.graders == 3
    assert seven.spread == pytest.approx((2 * 1.0**2 + 2.0**2) ** 0.5 / 3**0.5)  # std over graders
    assert seven.grade_class == "B"
    assert (agreed[8].mean, agreed[8].graders, agreed[8].spread) == (2.0, 1, 0.0)


def test_each_grader_counts_once_with_the_latest_grade() -> None:
    agreed = consensus(grades((1, "ann", 0), (1, "ann", 3), (1, "bob", 1)))
    assert agreed[1].graders == 2
    assert agreed[1].mean == pytest.approx(2.0)
    assert dict(agreed[1].grades) == {"ann": 3, "bob": 1}


@pytest.mark.parametrize(
    ("mean", "letter"), [(3.0, "A"), (2.5, "A"), (2.49, "B"), (1.5, "B"), (0.5, "C"), (0.49, "0")]
)
def test_the_class_is_the_mean_rounded_to_a_grade(mean: float, letter: str) -> None:
    assert consensus_class(mean) == letter


def test_the_consensus_table_keeps_int64_ids() -> None:
    big = 1_152_922_514_176_992_493
    table = consensus_table(consensus(grades((big, "ann", 3), (big, "bob", 2))))
    assert table["id"].to_pylist() == [big]
    assert table["grade_mean"].to_pylist() == [2.5]
    assert table["grade_graders"].to_pylist() == [2]
    assert table["grades"].to_pylist() == ["ann:A;bob:B"]
