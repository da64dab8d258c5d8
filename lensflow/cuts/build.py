"""Building the cut's tree as the parser reduces, each node type-checked and depth-checked.

Types: every expression is a condition (true/false) or a number. `and`, `or`, `not` take
conditions; comparisons, arithmetic, `isnan`, `isfinite`, `abs` take numbers; `isnull` takes
either. A cut must be a condition. A bare column takes the type its place asks for, and
`check_columns` holds the schema to it: boolean columns as conditions, integer and floating
columns as numbers. A `not` where a number is due (`a + not b`) reads as far as comparisons and
arithmetic reach, so the message names the condition it found there.
"""

from __future__ import annotations

from typing import Any

from lark import Token, Transformer

from lensflow.cuts.problems import Item, Problem
from lensflow.cuts.tokens import end_of, start_of
from lensflow.cuts.tree import (
    MAX_DEPTH,
    Arith,
    Bool,
    Call,
    Column,
    Compare,
    Kind,
    Logic,
    Negate,
    Node,
    Not,
    Number,
    kind_of,
)

__all__ = ["Build", "check_argument"]

_KIND_WORDS: dict[Kind, str] = {
    "bool": "a condition (true/false)",
    "num": "a number",
    "any": "a column",
}


def _make(node: Node, at: Token, start: int, end: int, *children: Item) -> Item:
    """An item for a new node; `at` is the token an over-deep tree is reported at."""
    depth = 1 + max((child.depth for child in children), default=0)
    if depth > MAX_DEPTH:
        raise Problem(
            start_of(at),
            f"expression nested deeper than {MAX_DEPTH} levels; expected a flatter cut",
        )
    return Item(node, start, end, depth)


def _need(item: Item, kind: Kind, what: str) -> None:
    found = kind_of(item.node)
    if found != "any" and found != kind:
        raise Problem(
            item.start,
            f"{what} needs {_KIND_WORDS[kind]}, but `",
            item,
            f"` is {_KIND_WORDS[found]}",
        )


def check_argument(function: str, argument: Item) -> None:
    """Refuse a condition as the argument of a function that takes a number."""
    if function != "isnull":
        _need(argument, "num", f"{function}()")


class Build(Transformer[Token, Item]):
    """Each reduction's node, type-checked and depth-checked as the parser builds it."""

    def number(self, children: list[Token]) -> Item:
        text = children[0].lower()
        value = int(text) if text.isdigit() else float(text)
        return Item(Number(value), start_of(children[0]), end_of(children[0]), 1)

    def boolean(self, children: list[Token]) -> Item:
        node = Bool(children[0].lower() == "true")
        return Item(node, start_of(children[0]), end_of(children[0]), 1)

    def column(self, children: list[Token]) -> Item:
        token = children[0]
        name = token[1:-1] if token.type == "QUOTED" else str(token)
        return Item(Column(name), start_of(token), end_of(token), 1)

    def paren(self, children: list[Any]) -> Item:
        opening, inner, closing = children
        return Item(inner.node, start_of(opening), end_of(closing), inner.depth)

    def call(self, children: list[Any]) -> Item:
        name, _, argument, closing = children
        function = name.lower()
        check_argument(function, argument)
        call = Call(function, argument.node)
        return _make(call, name, start_of(name), end_of(closing), argument)

    def negate(self, children: list[Any]) -> Item:
        minus, operand = children
        _need(operand, "num", "unary '-'")
        if isinstance(operand.node, Number):
            return Item(Number(-operand.node.value), start_of(minus), operand.end, 1)
        return _make(Negate(operand.node), minus, start_of(minus), operand.end, operand)

    def not_(self, children: list[Any]) -> Item:
        word, operand = children
        _need(operand, "bool", "'not'")
        return _make(Not(operand.node), word, start_of(word), operand.end, operand)

    def arith(self, children: list[Any]) -> Item:
        left, op, right = children
        _need(left, "num", f"'{op}'")
        _need(right, "num", f"'{op}'")
        return _make(Arith(str(op), left.node, right.node), op, left.start, right.end, left, right)

    def cmp(self, children: list[Any]) -> Item:
        """`a < b`, or a chain `a < b <= c` read as `a < b and b <= c`."""
        items: list[Item] = children[::2]
        compares: list[Item] = []
        for op, left, right in zip(children[1::2], items[:-1], items[1:], strict=True):
            kinds = (kind_of(left.node), kind_of(right.node))
            if "bool" in kinds:
                raise Problem(
                    start_of(op),
                    f"'{op}' compares numbers, but `",
                    left,
                    f"` is {_KIND_WORDS[kinds[0]]} and `",
                    right,
                    f"` is {_KIND_WORDS[kinds[1]]}; combine conditions with and/or/not",
                )
            node = Compare(str(op), left.node, right.node)
            compares.append(_make(node, op, left.start, right.end, left, right))
        if len(compares) == 1:
            return compares[0]
        chain = Logic("and", tuple(item.node for item in compares))
        return _make(chain, children[-2], items[0].start, items[-1].end, *compares)

    def logic(self, children: list[Any]) -> Item:
        """One `and` chain or one `or` chain, as written, into an n-ary Logic node."""
        op = children[1].lower()
        items: list[Item] = children[::2]
        for item in items:
            _need(item, "bool", f"'{op}'")
        node = Logic(op, tuple(item.node for item in items))
        return _make(node, children[-2], items[0].start, items[-1].end, *items)

    and_ = or_ = logic
