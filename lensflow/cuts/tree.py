"""The cut's expression tree: frozen nodes, what each yields, its columns and canonical text."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, TypeAlias

__all__ = [
    "EXACT_INT",
    "FUNCTIONS",
    "KEYWORDS",
    "MAX_DEPTH",
    "Arith",
    "Bool",
    "Call",
    "Column",
    "Compare",
    "Kind",
    "Logic",
    "Negate",
    "Node",
    "Not",
    "Number",
    "Role",
    "column_roles",
    "exact_pair",
    "format_name",
    "format_number",
    "kind_of",
    "unparse",
]

MAX_DEPTH = 64
"""Deepest nesting accepted: parentheses, calls, `not`, unary minus and the tree itself."""

EXACT_INT = 2**53
"""Integer literals at or beyond this magnitude are compared with a column as integers."""

FUNCTIONS = ("abs", "isfinite", "isnan", "isnull")
KEYWORDS = frozenset({"and", "or", "not", "true", "false", "inf", "nan"})
_RESERVED = KEYWORDS | frozenset(FUNCTIONS)
_LETTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")
_NAME_CHARS = _LETTERS | frozenset("0123456789")

Kind: TypeAlias = Literal["bool", "num", "any"]
"""What a node yields: a condition, a number, or (a bare column) whatever its place asks for."""

Role: TypeAlias = Literal["bool", "num", "any", "int"]
"""How a column is read: as a condition, a number, either (`isnull`), or an exact integer."""


@dataclass(frozen=True)
class Column:
    """A column reference, by its name in the catalog."""

    name: str


@dataclass(frozen=True)
class Number:
    """A numeric literal: an int (kept exact for id comparisons) or a float (inf, nan too)."""

    value: int | float


@dataclass(frozen=True)
class Bool:
    """The literal `true` or `false`."""

    value: bool


@dataclass(frozen=True)
class Negate:
    """Unary minus of a number (a minus on a literal is folded into the Number)."""

    operand: Node


@dataclass(frozen=True)
class Arith:
    """`left op right` with op one of + - * /, in float64."""

    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Compare:
    """`left op right` with op one of < <= > >= == !=, on numbers."""

    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Not:
    """`not operand` on a condition."""

    operand: Node


@dataclass(frozen=True)
class Logic:
    """`a and b and ...` or `a or b or ...`: one chain as written, two operands or more."""

    op: str
    operands: tuple[Node, ...]


@dataclass(frozen=True)
class Call:
    """One of FUNCTIONS applied to one argument."""

    function: str
    argument: Node


Node: TypeAlias = Column | Number | Bool | Negate | Arith | Compare | Not | Logic | Call


def kind_of(node: Node) -> Kind:
    """What a node yields; a bare column takes whatever its place asks for."""
    if isinstance(node, Column):
        return "any"
    if isinstance(node, Number | Negate | Arith):
        return "num"
    if isinstance(node, Call):
        return "num" if node.function == "abs" else "bool"
    return "bool"


def exact_pair(node: Compare) -> tuple[str, int] | None:
    """The column and big integer literal of a comparison done in integers, if it is one."""
    pairs = ((node.left, node.right), (node.right, node.left))
    for column, number in pairs:
        if (
            isinstance(column, Column)
            and isinstance(number, Number)
            and type(number.value) is int
            and abs(number.value) >= EXACT_INT
        ):
            return column.name, number.value
    return None


def column_roles(tree: Node) -> dict[str, set[Role]]:
    """Each column a cut's tree reads and the roles it is read in."""
    roles: dict[str, set[Role]] = {}
    _collect(tree, roles, "bool")
    return roles


def _collect(node: Node, roles: dict[str, set[Role]], role: Role) -> None:
    if isinstance(node, Column):
        roles.setdefault(node.name, set()).add(role)
    elif isinstance(node, Negate | Arith):
        for child in (node.operand,) if isinstance(node, Negate) else (node.left, node.right):
            _collect(child, roles, "num")
    elif isinstance(node, Compare):
        exact = exact_pair(node)
        if exact is not None:
            roles.setdefault(exact[0], set()).add("int")
        else:
            _collect(node.left, roles, "num")
            _collect(node.right, roles, "num")
    elif isinstance(node, Not):
        _collect(node.operand, roles, "bool")
    elif isinstance(node, Logic):
        for child in node.operands:
            _collect(child, roles, "bool")
    elif isinstance(node, Call):
        _collect(node.argument, roles, "any" if node.function == "isnull" else "num")


def format_name(name: str) -> str:
    """A column name as cut text: bare when it is a plain identifier, else in backquotes."""
    plain = (
        bool(name)
        and name[0] in _LETTERS
        and all(c in _NAME_CHARS for c in name)
        and name.lower() not in _RESERVED
    )
    return name if plain else f"`{name}`"


def format_number(value: float) -> str:
    """A literal as cut text that parses back to the same value and type."""
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return repr(value)


def unparse(node: Node) -> str:
    """Canonical text of a tree: every inner operation in parentheses, single spaces."""
    return _unparse(node, top=True)


def _unparse(node: Node, *, top: bool) -> str:
    if isinstance(node, Column):
        return format_name(node.name)
    if isinstance(node, Number):
        return format_number(node.value)
    if isinstance(node, Bool):
        return "true" if node.value else "false"
    if isinstance(node, Call):
        return f"{node.function}({_unparse(node.argument, top=True)})"
    if isinstance(node, Negate):
        text = "-" + _unparse(node.operand, top=False)
    elif isinstance(node, Not):
        text = "not " + _unparse(node.operand, top=False)
    elif isinstance(node, Logic):
        text = f" {node.op} ".join(_unparse(child, top=False) for child in node.operands)
    else:
        left = _unparse(node.left, top=False)
        text = f"{left} {node.op} {_unparse(node.right, top=False)}"
    return text if top else f"({text})"
