"""A parsed cut and the pyarrow expression it compiles to.

Values, nulls and NaN (`Cut.to_arrow` keeps a row exactly where these rules make the cut true):
- Numbers are float64: numeric columns are cast to float64 and integer literals become float64,
  so integer division never truncates and never raises. `/` is IEEE division (x/0 is +-inf, 0/0
  and nan/0 are nan), as pyarrow's unchecked `divide`.
- Exception, so int64 ids stay exact: a column compared directly with an integer literal of
  magnitude 2**53 or more is compared as an integer, without a cast, and `check_columns`
  requires an integer column there. Smaller integer literals are exact in float64, so every
  comparison of an integer column with an integer literal is exact.
- A comparison involving NaN is false, except `!=`, which is true (IEEE).
- Null propagates: arithmetic, comparisons, `not`, `abs`, `isnan` and `isfinite` of null are
  null. `isnull(x)` is true only for null (NaN is not null). `and`/`or` are Kleene:
  `false and null` is false, `true or null` is true.
- A row is kept only where the cut is true; null and false both drop the row.

Parquet row-group statistics leave NaN out of min/max, and pyarrow's dataset scan prunes row
groups by those statistics, dropping NaN rows a cut keeps (`x != 1`, `isnan(x)`). Apply the
expression to decoded batches (`Table.filter`, `RecordBatch.filter`) for the exact semantics.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from lensflow.cuts.tree import (
    Arith,
    Bool,
    Column,
    Compare,
    Kind,
    Logic,
    Negate,
    Node,
    Not,
    Number,
    exact_pair,
    kind_of,
)

__all__ = ["Cut"]

_COMPARE: dict[str, Callable[..., pc.Expression]] = {
    "<": pc.less,
    "<=": pc.less_equal,
    ">": pc.greater,
    ">=": pc.greater_equal,
    "==": pc.equal,
    "!=": pc.not_equal,
}
_ARITH: dict[str, Callable[..., pc.Expression]] = {
    "+": pc.add,
    "-": pc.subtract,
    "*": pc.multiply,
    "/": pc.divide,
}
_TEST: dict[str, Callable[..., pc.Expression]] = {
    "isnan": pc.is_nan,
    "isfinite": pc.is_finite,
}


@dataclass(frozen=True)
class Cut:
    """A parsed, type-checked cut: its text, canonical form, columns and tree."""

    text: str
    canonical: str
    columns: tuple[str, ...]
    tree: Node

    def to_arrow(self) -> pc.Expression:
        """The cut as a pyarrow expression; a row passes where it is true (null drops it)."""
        return _expression(self.tree, "bool")


def _expression(node: Node, kind: Kind) -> pc.Expression:
    """The pyarrow expression of a node read as `kind` (a bare column's kind is its place)."""
    if isinstance(node, Column):
        field = pc.field(node.name)
        return field.cast(pa.float64(), safe=False) if kind == "num" else field
    if isinstance(node, Number):
        return pc.scalar(float(node.value))
    if isinstance(node, Bool):
        return pc.scalar(node.value)
    if isinstance(node, Negate):
        return pc.negate(_expression(node.operand, "num"))
    if isinstance(node, Arith):
        return _ARITH[node.op](_expression(node.left, "num"), _expression(node.right, "num"))
    if isinstance(node, Compare):
        compare = _COMPARE[node.op]
        exact = exact_pair(node)
        if exact is not None:
            name, value = exact
            sides = [pc.field(name), pc.scalar(pa.scalar(value, pa.int64()))]
            if not isinstance(node.left, Column):
                sides.reverse()
            return compare(*sides)
        return compare(_expression(node.left, "num"), _expression(node.right, "num"))
    if isinstance(node, Not):
        return pc.invert(_expression(node.operand, "bool"))
    if isinstance(node, Logic):
        combine = pc.and_kleene if node.op == "and" else pc.or_kleene
        result = _expression(node.operands[0], "bool")
        for child in node.operands[1:]:
            result = combine(result, _expression(child, "bool"))
        return result
    if node.function == "isnull":
        argument = _expression(node.argument, kind_of(node.argument))
        return pc.is_null(argument, nan_is_null=False)
    argument = _expression(node.argument, "num")
    if node.function == "abs":
        return pc.abs(argument)
    return _TEST[node.function](argument)
