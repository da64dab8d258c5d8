"""Cut grammar: precedence, chains, literals, keywords, backquoted names and the nesting cap."""

from __future__ import annotations

import pytest

from lensflow.cuts import (
    MAX_DEPTH,
    Arith,
    Call,
    Column,
    Compare,
    Logic,
    Not,
    Number,
    parse_cuts,
)
from lensflow.errors import CutExpressionError


def test_parses_the_documented_example() -> None:
    cut = parse_cuts("rKronMag < 21.5 and rPSFMag - rKronMag > 0.05 and not isnan(gKronMag)")
    assert cut.canonical == (
        "(rKronMag < 21.5) and ((rPSFMag - rKronMag) > 0.05) and (not isnan(gKronMag))"
    )
    assert cut.columns == ("gKronMag", "rKronMag", "rPSFMag")
    assert cut.tree == Logic(
        "and",
        (
            Compare("<", Column("rKronMag"), Number(21.5)),
            Compare(">", Arith("-", Column("rPSFMag"), Column("rKronMag")), Number(0.05)),
            Not(Call("isnan", Column("gKronMag"))),
        ),
    )
    assert cut.text == "rKronMag < 21.5 and rPSFMag - rKronMag > 0.05 and not isnan(gKronMag)"


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("a + b * c > 1", "(a + (b * c)) > 1"),
        ("a * b + c > 1", "((a * b) + c) > 1"),
        ("a - b - c > 0", "((a - b) - c) > 0"),
        ("a / b / c > 0", "((a / b) / c) > 0"),
        ("-a * b > 0", "((-a) * b) > 0"),
        ("- -a > 0", "(-(-a)) > 0"),
        ("-(1) < a", "-1 < a"),
        ("- -1 < a", "1 < a"),
        ("not a < 1 or b > 2", "(not (a < 1)) or (b > 2)"),
        ("not (a < 1 or b > 2)", "not ((a < 1) or (b > 2))"),
        ("a < 1 or b < 1 and c < 1", "(a < 1) or ((b < 1) and (c < 1))"),
        ("a < 1 and b < 1 or c < 1", "((a < 1) and (b < 1)) or (c < 1)"),
        ("a < 1 and b < 1 and c < 1", "(a < 1) and (b < 1) and (c < 1)"),
        ("(a < 1 and b < 1) and c < 1", "((a < 1) and (b < 1)) and (c < 1)"),
        ("18 < r < 22", "(18 < r) and (r < 22)"),
        ("0 <= a < b + 1 != c", "(0 <= a) and (a < (b + 1)) and ((b + 1) != c)"),
        ("x > 0 and 1 < r < 2", "(x > 0) and ((1 < r) and (r < 2))"),
        ("true", "true"),
        ("FALSE or TRUE", "false or true"),
        ("a < INF and b != NaN", "(a < inf) and (b != nan)"),
        ("a < 1e-3 and b > 1E3 and c > .5", "(a < 0.001) and (b > 1000.0) and (c > 0.5)"),
        ("a > 007", "a > 7"),
        ("abs(a - b) < 0.1", "abs(a - b) < 0.1"),
        ("isnull(a) or isfinite(a + 1)", "isnull(a) or isfinite(a + 1)"),
        ("IsNaN(a)", "isnan(a)"),
        ("flag", "flag"),
        ("not flag and flag", "(not flag) and flag"),
        ("`g-mag` < 20 and `and` > 1", "(`g-mag` < 20) and (`and` > 1)"),
        ("`plain` < 1", "plain < 1"),
        ("`TRUE` > 0 or `isnan` > 0", "(`TRUE` > 0) or (`isnan` > 0)"),
        ("a\t<\n1\r\n", "a < 1"),
        ("id == 9007199254740993", "id == 9007199254740993"),
        ("id == -9007199254740993", "id == -9007199254740993"),
    ],
)
def test_canonical_text(text: str, canonical: str) -> None:
    cut = parse_cuts(text)
    assert cut.canonical == canonical
    assert parse_cuts(canonical).canonical == canonical


def test_columns_are_sorted_and_unique() -> None:
    cut = parse_cuts("z > 1 and a < 2 and z < 3 and `m-x` > 0 and isnull(a)")
    assert cut.columns == ("a", "m-x", "z")
    assert parse_cuts("true").columns == ()
    assert parse_cuts("1 < 2").columns == ()


def test_keywords_are_case_insensitive_but_columns_are_not() -> None:
    upper = parse_cuts("R < 1 AND NOT ISNAN(g) Or r > 2")
    lower = parse_cuts("R < 1 and not isnan(g) or r > 2")
    assert upper.canonical == lower.canonical
    assert upper.columns == ("R", "g", "r")


def test_integer_and_float_literals_stay_distinct() -> None:
    assert parse_cuts("a < 1").tree == Compare("<", Column("a"), Number(1))
    assert parse_cuts("a < 1.0").canonical == "a < 1.0"
    tree = parse_cuts("a < -2").tree
    assert isinstance(tree, Compare)
    assert isinstance(tree.right, Number)
    assert type(tree.right.value) is int
    assert tree.right.value == -2


def test_nesting_up_to_the_cap_parses() -> None:
    text = "(" * MAX_DEPTH + "r < 1" + ")" * MAX_DEPTH
    assert parse_cuts(text).canonical == "r < 1"
    calls = "isnan(" * (MAX_DEPTH - 1) + "r" + ")" * (MAX_DEPTH - 1)
    with pytest.raises(CutExpressionError, match="needs a number"):
        parse_cuts(calls)  # isnan of isnan: a condition where a number is needed
    abs_calls = "abs(" * (MAX_DEPTH - 2) + "r" + ")" * (MAX_DEPTH - 2) + " > 0"
    assert parse_cuts(abs_calls).columns == ("r",)
    assert len(parse_cuts(" and ".join(f"c{k} > 0" for k in range(300))).columns) == 300
    chain = parse_cuts("r < " * 500 + "r").tree
    assert isinstance(chain, Logic)
    assert len(chain.operands) == 500
