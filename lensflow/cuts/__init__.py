"""Catalog cuts: user text -> checked tree -> a pyarrow expression applied while reading.

Cut text is untrusted: it is parsed against a small allowlist grammar and nothing in it is
ever evaluated as Python. By subject:

    grammar   parse_cuts: the grammar, the parser and what an error says
    tokens    the lexer's checks on literals, names and stray characters
    build     the tree built and type-checked as the parser reduces
    problems  a fault's position and the message with a caret under it
    tree      the nodes, their kinds, columns and canonical text (unparse)
    arrow     Cut and its pyarrow expression: float64, IEEE division, Kleene nulls
    schema    check_columns: a cut held to a catalog's schema
"""

from lensflow.cuts.arrow import Cut
from lensflow.cuts.grammar import MAX_LENGTH, parse_cuts
from lensflow.cuts.schema import check_columns
from lensflow.cuts.tree import (
    MAX_DEPTH,
    Arith,
    Bool,
    Call,
    Column,
    Compare,
    Logic,
    Negate,
    Node,
    Not,
    Number,
    unparse,
)

__all__ = [
    "MAX_DEPTH",
    "MAX_LENGTH",
    "Arith",
    "Bool",
    "Call",
    "Column",
    "Compare",
    "Cut",
    "Logic",
    "Negate",
    "Node",
    "Not",
    "Number",
    "check_columns",
    "parse_cuts",
    "unparse",
]
