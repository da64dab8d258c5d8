"""Hypothesis strategies for cuts: type-correct trees over a fixed table, and such tables."""

from __future__ import annotations

import math
from typing import Any

import pyarrow as pa
from hypothesis import strategies as st

from lensflow.cuts import Arith, Bool, Call, Column, Compare, Logic, Negate, Node, Not, Number

NAN = math.nan
INF = math.inf
Row = dict[str, Any]

FLOAT_COLUMNS = ("a", "b", "c")
SPECIAL_FLOATS = (0.0, -0.0, 1.0, -1.0, 0.5, 21.5, 1e-3, 1e300, -1e300, 5e-324, INF, -INF, NAN)
BIG_INTS = (2**53, 2**53 + 1, -(2**53) - 1, 2**62 + 3, 2**63 - 1, -(2**63) + 1)
COMPARE_OPS = ("<", "<=", ">", ">=", "==", "!=")

small_numbers = st.one_of(
    st.integers(-5, 5),
    st.sampled_from(SPECIAL_FLOATS),
    st.floats(-1e6, 1e6, allow_nan=False),
).map(Number)
numeric_columns = st.sampled_from((*FLOAT_COLUMNS, "i")).map(Column)
big_numbers = st.sampled_from(BIG_INTS).map(Number)


def numeric_trees() -> st.SearchStrategy[Node]:
    def extend(inner: st.SearchStrategy[Node]) -> st.SearchStrategy[Node]:
        return st.one_of(
            st.builds(Negate, inner.filter(lambda node: not isinstance(node, Number))),
            st.builds(Arith, st.sampled_from("+-*/"), inner, inner),
            st.builds(Arith, st.sampled_from("+-*/"), inner, big_numbers),
            st.builds(Call, st.just("abs"), inner),
        )

    return st.recursive(st.one_of(numeric_columns, small_numbers), extend, max_leaves=6)


def boolean_trees() -> st.SearchStrategy[Node]:
    numbers = numeric_trees()
    exact = st.builds(Compare, st.sampled_from(COMPARE_OPS), st.just(Column("i")), big_numbers)
    exact_reversed = st.builds(
        Compare, st.sampled_from(COMPARE_OPS), big_numbers, st.just(Column("i"))
    )
    leaves = st.one_of(
        st.booleans().map(Bool),
        st.just(Column("flag")),
        st.builds(Compare, st.sampled_from(COMPARE_OPS), numbers, numbers),
        st.builds(Compare, st.sampled_from(COMPARE_OPS), numeric_columns, small_numbers),
        exact,
        exact_reversed,
        st.builds(Call, st.sampled_from(("isnan", "isfinite", "isnull")), numbers),
    )

    def extend(inner: st.SearchStrategy[Node]) -> st.SearchStrategy[Node]:
        return st.one_of(
            st.builds(Not, inner),
            st.builds(
                Logic,
                st.sampled_from(("and", "or")),
                st.lists(inner, min_size=2, max_size=3).map(tuple),
            ),
            st.builds(Call, st.just("isnull"), inner),
        )

    return st.recursive(leaves, extend, max_leaves=6)


def tables() -> st.SearchStrategy[pa.Table]:
    floats = st.one_of(st.none(), st.sampled_from(SPECIAL_FLOATS), st.floats())
    ints = st.one_of(
        st.none(), st.integers(-10, 10), st.sampled_from((*BIG_INTS, -(2**63), 2**53 - 1))
    )
    rows = st.fixed_dictionaries(
        {
            "a": floats,
            "b": floats,
            "c": floats,
            "i": ints,
            "flag": st.one_of(st.none(), st.booleans()),
        }
    )

    def build(drawn: list[Row]) -> pa.Table:
        columns: dict[str, pa.Array] = {"row": pa.array(range(len(drawn)), pa.int64())}
        for name in FLOAT_COLUMNS:
            columns[name] = pa.array([row[name] for row in drawn], pa.float64())
        columns["i"] = pa.array([row["i"] for row in drawn], pa.int64())
        columns["flag"] = pa.array([row["flag"] for row in drawn], pa.bool_())
        return pa.table(columns)

    return st.lists(rows, min_size=1, max_size=12).map(build)
