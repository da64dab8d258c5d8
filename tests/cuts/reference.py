"""A plain-Python reference for cuts: which rows a cut keeps, one row at a time.

The tests hold `Cut.to_arrow` to it: same float64 arithmetic, IEEE division, NaN comparisons,
exact integer comparisons beyond 2**53 and Kleene nulls, as the rules in `lensflow.cuts.arrow`
say.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping

from lensflow.cuts import Arith, Bool, Call, Column, Compare, Cut, Logic, Negate, Node, Not, Number
from lensflow.cuts.tree import exact_pair, kind_of
from lensflow.errors import CutExpressionError

Row = Mapping[str, float | None]


def divide(x: float, y: float) -> float:
    """IEEE division, as pyarrow's unchecked `divide` on float64."""
    if y != 0.0:
        return x / y
    if x == 0.0 or math.isnan(x):
        return math.nan
    return math.copysign(math.inf, x) * math.copysign(1.0, y)


ARITH: dict[str, Callable[[float, float], float]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": divide,
}
COMPARE: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}


def evaluate(cut: Cut, row: Row) -> bool:
    """Whether one row (column -> value, None for null) passes the cut."""
    return truth(cut.tree, row) is True


def lookup(row: Row, name: str) -> float | None:
    try:
        return row[name]
    except KeyError:
        raise CutExpressionError(f"the row has no column {name!r}") from None


def number(node: Node, row: Row) -> float | None:
    """A numeric node's value in float64, or None for null."""
    if isinstance(node, Column):
        value = lookup(row, node.name)
        return None if value is None else float(value)
    if isinstance(node, Number):
        return float(node.value)
    if isinstance(node, Negate):
        operand = number(node.operand, row)
        return None if operand is None else -operand
    if isinstance(node, Arith):
        left, right = number(node.left, row), number(node.right, row)
        if left is None or right is None:
            return None
        return ARITH[node.op](left, right)
    assert isinstance(node, Call)
    argument = number(node.argument, row)
    return None if argument is None else abs(argument)


def truth(node: Node, row: Row) -> bool | None:
    """A condition's value with Kleene logic, or None for null."""
    if isinstance(node, Column):
        value = lookup(row, node.name)
        return None if value is None else bool(value)
    if isinstance(node, Bool):
        return node.value
    if isinstance(node, Not):
        operand = truth(node.operand, row)
        return None if operand is None else not operand
    if isinstance(node, Logic):
        values = [truth(child, row) for child in node.operands]
        decisive = node.op == "or"
        if decisive in values:
            return decisive
        return None if None in values else not decisive
    if isinstance(node, Compare):
        exact = exact_pair(node)
        if exact is not None:
            value = lookup(row, exact[0])
            if value is None:
                return None
            sides = [value, exact[1]] if isinstance(node.left, Column) else [exact[1], value]
            return COMPARE[node.op](*sides)
        left, right = number(node.left, row), number(node.right, row)
        if left is None or right is None:
            return None
        return COMPARE[node.op](left, right)
    assert isinstance(node, Call)
    if node.function == "isnull":
        kind = kind_of(node.argument)
        if kind == "any":
            assert isinstance(node.argument, Column)
            return lookup(row, node.argument.name) is None
        value = truth(node.argument, row) if kind == "bool" else number(node.argument, row)
        return value is None
    argument = number(node.argument, row)
    if argument is None:
        return None
    return math.isnan(argument) if node.function == "isnan" else math.isfinite(argument)
