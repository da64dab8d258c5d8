"""The cut lexer's checks: keywords named, bad literals and characters refused with a hint."""

from __future__ import annotations

import re
from collections.abc import Iterator

from lark import Token
from lark.lark import PostLex

from lensflow.cuts.problems import Problem
from lensflow.cuts.tree import FUNCTIONS, KEYWORDS

__all__ = ["NUMBER", "Tokens", "end_of", "start_of"]

NUMBER = r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
"""A well-formed decimal literal; the NUMBER token also takes what runs on, to refuse it."""

_INT64_MAX = 2**63 - 1
_WORDS = {word: word.upper() for word in KEYWORDS} | dict.fromkeys(FUNCTIONS, "FUNC")
_STRING_HINT = (
    "string literals are not supported (cuts compare numeric columns); "
    "write a column with odd characters in backquotes, like `g-mag`"
)
_OPERATORS = "; expected one of + - * / < <= > >= == != and or not ( )"
_HINTS: dict[str, str] = {
    "&&": "use 'and' instead of '&&'",
    "||": "use 'or' instead of '||'",
    "<<": "shift operators are not supported" + _OPERATORS,
    ">>": "shift operators are not supported" + _OPERATORS,
    "**": "powers are not supported; write x * x",
    "//": "floor division is not supported; use /",
    "<>": "use '!=' for 'not equal'",
    "&": "use 'and' instead of '&'",
    "|": "use 'or' instead of '|'",
    "~": "use 'not' instead of '~'",
    "!": "use 'not' instead of '!'",
    "=": "'=' is not a comparison; use '==' to test equality",
    "%": "the remainder operator '%' is not supported" + _OPERATORS,
    "^": "'^' is not supported" + _OPERATORS,
    "'": _STRING_HINT,
    '"': _STRING_HINT,
    ".": "'.' may only appear inside a number like 0.5; cuts have no attribute access",
    "[": "indexing is not supported",
    "]": "indexing is not supported",
    "{": "braces are not supported",
    "}": "braces are not supported",
    ";": "a cut is one expression; join conditions with 'and'",
    ":": "':' is not supported" + _OPERATORS,
    "#": "comments are not supported",
    "\\": "backslashes are not supported" + _OPERATORS,
}
"""What to write instead of a character or pair the grammar has no place for."""


def start_of(token: Token) -> int:
    """Where a token starts in the cut text, 0-based."""
    return token.start_pos or 0


def end_of(token: Token) -> int:
    """Where a token ends in the cut text, 0-based and exclusive."""
    return token.end_pos or 0


def _describe_char(c: str) -> str:
    return f"{c!r} (U+{ord(c):04X})"


class Tokens(PostLex):
    """Checks each token as it is read: names keywords, refuses bad literals and characters."""

    always_accept = ("COMMA", "HINT", "OTHER")

    def process(self, stream: Iterator[Token]) -> Iterator[Token]:
        for token in stream:
            if token.type == "NAME":
                token = token.update(_WORDS.get(token.lower(), "NAME"))
            elif token.type == "NUMBER":
                _check_number(token)
            elif token.type == "QUOTED":
                _check_quoted(token)
            elif token.type in ("HINT", "OTHER"):
                raise Problem(
                    start_of(token),
                    _HINTS.get(str(token))
                    or f"unexpected character {_describe_char(str(token))}; expected a number, a "
                    "column (ASCII letters, digits and _, or any name in backquotes), an "
                    "operator or a parenthesis",
                )
            yield token


def _check_number(token: Token) -> None:
    """Refuse a decimal literal that runs into letters or dots, or an int beyond int64."""
    if re.fullmatch(NUMBER, token) is None:
        raise Problem(
            start_of(token),
            f"malformed number {str(token)!r}; expected digits with an optional fraction and "
            "exponent, like 21, 0.05 or 1e-3",
        )
    digits = token.lstrip("0") or "0"
    if digits.isdigit() and (len(digits) > 19 or int(digits) > _INT64_MAX):
        raise Problem(
            start_of(token),
            f"integer {token} is out of the int64 range (at most {_INT64_MAX}); "
            "write it as a float, like 1e19, to compare in float64",
        )


def _check_quoted(token: Token) -> None:
    """Refuse a backquoted column name that is unclosed, empty or holds unprintable text."""
    for offset, char in enumerate(token):
        if not char.isprintable():
            raise Problem(
                start_of(token) + offset,
                f"a backquoted column name may not hold {_describe_char(char)}; "
                "expected printable characters and a closing '`'",
            )
    if len(token) < 2 or not token.endswith("`"):
        raise Problem(start_of(token), "expected a closing '`' for the column name started here")
    if token == "``":
        raise Problem(start_of(token), "empty column name ``; expected a name between backquotes")
