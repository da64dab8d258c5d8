"""Faults in cut text: where they lie, and the message that shows the text with a caret."""

from __future__ import annotations

from dataclasses import dataclass

from lensflow.cuts.tree import Node
from lensflow.errors import CutExpressionError

__all__ = ["Item", "Problem", "located_error"]

_SPACE = frozenset(" \t\r\n")


@dataclass(frozen=True)
class Item:
    """A parsed node with where its text lies (0-based, end exclusive) and its tree's depth."""

    node: Node
    start: int
    end: int
    depth: int


class Problem(Exception):
    """A fault at a 0-based position; the items among its parts are quoted by their text."""

    def __init__(self, pos: int, *parts: str | Item) -> None:
        super().__init__(pos, *parts)
        self.pos = pos
        self.parts = parts

    def message(self, text: str) -> str:
        """The fault said in words, each item shown as the cut text it was read from."""
        return "".join(
            part if isinstance(part, str) else _source(text, part) for part in self.parts
        )


def _source(text: str, item: Item) -> str:
    """An item's text with its spacing collapsed, shortened to 40 characters."""
    shown = " ".join(text[item.start : item.end].split())
    return shown if len(shown) <= 40 else shown[:37] + "..."


def located_error(text: str, pos: int, message: str) -> CutExpressionError:
    """An error naming the 1-based column, with the text and a caret under that column."""
    start = max(0, pos - 40)
    end = min(len(text), start + 80)
    shown = "".join(
        c if c.isprintable() else (" " if c in _SPACE else "?") for c in text[start:end]
    )
    caret = pos - start
    if start > 0:
        shown, caret = "..." + shown, caret + 3
    if end < len(text):
        shown += "..."
    return CutExpressionError(
        f"cut expression, column {pos + 1} (1-based): {message}\n  {shown}\n  {' ' * caret}^"
    )
