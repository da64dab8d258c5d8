"""The cut tree: frozen nodes, canonical text that round-trips, and the columns it reads."""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lensflow.cuts import Bool, Call, Column, Logic, Negate, Node, Not, Number, parse_cuts, unparse
from lensflow.cuts.tree import format_name, format_number
from tests.cuts.strategies import boolean_trees


def test_cut_and_nodes_are_frozen() -> None:
    cut = parse_cuts("a < 1")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cut.text = "b < 1"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        cut.tree.op = ">"  # type: ignore[union-attr, misc]


@settings(max_examples=200)
@given(boolean_trees())
def test_unparse_then_parse_round_trips(tree: Node) -> None:
    text = unparse(tree)
    cut = parse_cuts(text)
    assert cut.canonical == text
    assert parse_cuts(cut.canonical).canonical == cut.canonical
    if "nan" not in text:  # NaN != NaN, so trees holding it are not equal to themselves
        assert cut.tree == tree


def render(node: Node, rnd: random.Random) -> str:
    """Cut text for a tree with random keyword case, spacing and redundant parentheses."""

    def word(text: str) -> str:
        return "".join(c.upper() if rnd.random() < 0.5 else c.lower() for c in text)

    def gap() -> str:
        return rnd.choice(("", " ", "  ", "\t", "\n", " \r\n "))

    def number(value: float) -> str:
        if isinstance(value, int) or math.isnan(value) or math.isinf(value):
            text = format_number(value)
            return word(text) if not isinstance(value, int) else text
        return rnd.choice((repr(value), f"{value:.17e}", f"{value:.17E}"))

    def inner(node: Node) -> str:
        text = go(node)
        if isinstance(node, Column | Number | Bool | Call):
            return f"({gap()}{text}{gap()})" if rnd.random() < 0.2 else text
        return f"({gap()}{text}{gap()})"

    def go(node: Node) -> str:
        if isinstance(node, Column):
            return format_name(node.name)
        if isinstance(node, Number):
            return number(node.value)
        if isinstance(node, Bool):
            return word("true" if node.value else "false")
        if isinstance(node, Call):
            return f"{word(node.function)}({gap()}{go(node.argument)}{gap()})"
        if isinstance(node, Negate):
            return f"-{gap()}{inner(node.operand)}"
        if isinstance(node, Not):
            return f"{word('not')} {gap()}{inner(node.operand)}"
        if isinstance(node, Logic):
            joiner = f"{gap()} {word(node.op)} {gap()}"
            return joiner.join(inner(child) for child in node.operands)
        return f"{inner(node.left)}{gap()}{node.op}{gap()}{inner(node.right)}"

    return gap() + go(node) + gap()


@settings(max_examples=200)
@given(boolean_trees(), st.randoms(use_true_random=False))
def test_canonical_text_is_stable_under_case_and_spacing(tree: Node, rnd: random.Random) -> None:
    canonical = unparse(tree)
    variant = render(tree, rnd)
    assert parse_cuts(variant).canonical == canonical
    assert parse_cuts(canonical).canonical == canonical


def iter_nodes(node: Node) -> Iterator[Node]:
    yield node
    for field in dataclasses.fields(node):
        value = getattr(node, field.name)
        children = value if isinstance(value, tuple) else (value,)
        for child in children:
            if dataclasses.is_dataclass(child):
                yield from iter_nodes(child)  # type: ignore[arg-type]


@settings(max_examples=100)
@given(boolean_trees())
def test_columns_are_the_columns_in_the_tree(tree: Node) -> None:
    cut = parse_cuts(unparse(tree))
    names = {node.name for node in iter_nodes(tree) if isinstance(node, Column)}
    assert cut.columns == tuple(sorted(names))
