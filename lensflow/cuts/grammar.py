"""Reading cut text: an LALR parser (lark) over a small allowlist grammar, loosest first:

    cut      := or
    or       := and ("or" and)*
    and      := not ("and" not)*
    not      := "not" not | compare
    compare  := sum (("<" | "<=" | ">" | ">=" | "==" | "!=") sum)*
    sum      := product (("+" | "-") product)*
    product  := unary (("*" | "/") unary)*
    unary    := "-" unary | atom
    atom     := number | "true" | "false" | "inf" | "nan" | column
              | function "(" or ")" | "(" or ")"
    function := "isnan" | "isnull" | "isfinite" | "abs"

Keywords and function names are case-insensitive; column names are case-sensitive ASCII
identifiers, or any printable text in backquotes (`g-mag`, `and`) for odd or reserved names.
`a < b < c` means `a < b and b < c`. There are no strings, attributes, indexing or calls other
than the four functions. Text is capped at MAX_LENGTH characters and nesting at MAX_DEPTH
levels. Error messages give the 1-based character column, show the text with a caret under it
and say what was expected.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Any

from lark import Lark, Token
from lark.exceptions import UnexpectedToken
from lark.parsers.lalr_parser_state import ParserState

from lensflow.cuts.arrow import Cut
from lensflow.cuts.build import Build, check_argument
from lensflow.cuts.problems import Item, Problem, located_error
from lensflow.cuts.tokens import NUMBER, Tokens, start_of
from lensflow.cuts.tree import FUNCTIONS, MAX_DEPTH, column_roles, kind_of, unparse
from lensflow.errors import CutExpressionError

__all__ = ["MAX_LENGTH", "parse_cuts"]

MAX_LENGTH = 4096
"""Longest cut text accepted, in characters."""

# The open_ rules are operands that end in `not`: its operand reaches as far as comparisons and
# arithmetic go, so they stand last in their chain. Keywords are NAME tokens renamed by Tokens.
_GRAMMAR = rf"""
?start: or_
?or_: and_ (OR and_)*
?and_: cmp (AND cmp)*
?cmp: sum (COMP sum)* | sum (COMP sum)* COMP open_sum | open_sum
?sum: product | sum (PLUS | MINUS) product -> arith
?open_sum: open_product | sum (PLUS | MINUS) open_product -> arith
?product: unary | product (STAR | SLASH) unary -> arith
?open_product: open_unary | product (STAR | SLASH) open_unary -> arith
?unary: atom | MINUS unary -> negate
?open_unary: NOT cmp -> not_ | MINUS open_unary -> negate
?atom: NUMBER -> number | INF -> number | NAN -> number
     | TRUE -> boolean | FALSE -> boolean
     | NAME -> column | QUOTED -> column
     | FUNC LPAR or_ RPAR -> call
     | LPAR or_ RPAR -> paren

NUMBER: /{NUMBER}(?:[A-Za-z0-9_.]+|`)?/
NAME: /[A-Za-z_][A-Za-z0-9_]*/
QUOTED: /`[^`]*`?/
COMP: /<=|>=|==|!=|<|>/
PLUS: "+"
MINUS: "-"
STAR: "*"
SLASH: "/"
LPAR: "("
RPAR: ")"
COMMA: ","
HINT.2: /&&|\|\||<<|>>|\*\*|\/\/|<>/
OTHER.-1: /./s
%declare AND OR NOT TRUE FALSE INF NAN FUNC
%ignore /[ \t\r\n]+/
"""


def parse_cuts(text: str) -> Cut:
    """Parse and type-check cut text; raise CutExpressionError saying where and what."""
    if not isinstance(text, str):
        raise CutExpressionError(f"a cut must be text, not {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise located_error(
            text,
            MAX_LENGTH,
            f"the cut is {len(text)} characters long; expected at most {MAX_LENGTH}",
        )
    try:
        tree = _read(text).node
        columns = tuple(sorted(column_roles(tree)))
        canonical = unparse(tree)
    except Problem as problem:
        raise located_error(text, problem.pos, problem.message(text)) from None
    except RecursionError:
        # MAX_DEPTH keeps the tree shallow; this only fires on an already deep stack.
        raise CutExpressionError(
            "the cut could not be parsed: the interpreter's stack is already too deep here"
        ) from None
    return Cut(text=text, canonical=canonical, columns=columns, tree=tree)


@functools.cache
def _lark() -> Lark:
    """The cut parser, built once: LALR tables, the checking lexer and the tree builder."""
    return Lark(_GRAMMAR, parser="lalr", lexer="basic", postlex=Tokens(), transformer=Build())


def _read(text: str) -> Item:
    """Parse cut text into a checked item; raise Problem at the first fault, reading on."""
    parser = _lark().parse_interactive()
    stack: list[object] = parser.parser_state.value_stack
    seen: list[Token] = []
    try:
        for token in _lark().lex(text):
            seen.append(token)
            parser.feed_token(token)
            if token.type == "RPAR":
                _check_call(stack)
            elif token.type in ("LPAR", "NOT", "MINUS"):
                _check_nesting(stack, token)
        if not seen:
            raise Problem(
                0, "the cut is empty; expected a condition (write 'true' to keep every row)"
            )
        item: Item = parser.feed_token(Token("$END", ""))
    except UnexpectedToken as error:
        found = None if error.token.type == "$END" else error.token
        earlier = seen if found is None else seen[:-1]
        before = earlier[-1] if earlier else None
        raise _unexpected(found, before, parser.parser_state, error.expected, len(text)) from None
    if kind_of(item.node) == "num":
        raise Problem(
            item.start,
            "a cut must be a condition (true or false for each row), but `",
            item,
            "` is a number; compare it, e.g. `... > 0`",
        )
    return item


def _check_call(stack: list[object]) -> None:
    """Check a call's argument once its ')' is read, before the token after it is."""
    name, argument = stack[-4:-3], stack[-2:-1]
    if name and isinstance(name[0], Token) and name[0].type == "FUNC":
        assert isinstance(argument[0], Item)
        check_argument(name[0].lower(), argument[0])


def _check_nesting(stack: list[object], token: Token) -> None:
    """Refuse the token just read if it opens more than MAX_DEPTH parentheses and prefixes."""
    if len(stack) <= MAX_DEPTH:
        return
    open_ = 0
    for before, entry in zip([None, *stack], stack, strict=False):
        if isinstance(entry, Token) and (
            entry.type in ("LPAR", "NOT")
            or (entry.type == "MINUS" and (before is None or isinstance(before, Token)))
        ):
            open_ += 1
    if open_ > MAX_DEPTH:
        raise Problem(
            start_of(token),
            f"nesting deeper than {MAX_DEPTH} levels (parentheses, calls, 'not', unary "
            "'-'); expected a flatter cut",
        )


def _describe(token: Token | None) -> str:
    if token is None:
        return "the end of the cut"
    if token.type == "NUMBER":
        return f"the number {token}"
    if token.type == "QUOTED":
        return f"the column {token}"
    return f"'{token}'"


def _unexpected(
    found: Token | None, before: Token | None, state: ParserState[Any], expected: set[str], end: int
) -> Problem:
    """What the parser wanted instead of `found` (None: the end), said for the cut's writer."""
    pos = end if found is None else start_of(found)
    kind = "$END" if found is None else found.type
    if before is not None and before.type == "FUNC":
        return Problem(
            start_of(before),
            f"'{before}' is a function; expected '(' after it (write `{before}` in backquotes "
            "for a column of that name)",
        )
    functions = ", ".join(FUNCTIONS)
    if kind == "LPAR" and before is not None and before.type == "NAME":
        return Problem(
            start_of(before), f"unknown function '{before}'; the functions are {functions}"
        )
    if kind == "LPAR" and before is not None and before.type == "QUOTED":
        return Problem(
            start_of(before), f"{before} is a column, not a function; the functions are {functions}"
        )
    if "NUMBER" in expected:
        if kind in ("AND", "OR"):
            return Problem(
                pos,
                f"expected a value (a number, a column, a function call or '('), found the "
                f"keyword '{found}' (write `{found}` in backquotes for a column)",
            )
        after = f" after {_describe(before)}" if before is not None else ""
        return Problem(
            pos,
            f"expected a value (a number, a column, a function call or '('){after}, "
            f"found {_describe(found)}",
        )
    opening = _open_paren(state.value_stack)
    # The operand before `found` is complete: close what it completes, checking each part as
    # a reader would, so that a type error there is reported before what may follow.
    closing = Token("$END", "") if opening is None else Token("RPAR", ")")
    with contextlib.suppress(UnexpectedToken):
        state.feed_token(closing, is_end=opening is None)
    if opening is None:
        if kind == "RPAR":
            return Problem(pos, "unmatched ')'; expected an operator or the end of the cut")
        return Problem(
            pos,
            f"expected an operator ('and', 'or', a comparison, + - * /) or the end of the cut, "
            f"found {_describe(found)}",
        )
    paren, function = opening
    if kind == "COMMA" and function is not None:
        return Problem(pos, f"{function}() takes one argument; expected ')'")
    return Problem(
        pos,
        f"expected ')' to close the '(' at column {start_of(paren) + 1}, found {_describe(found)}",
    )


def _open_paren(stack: list[object]) -> tuple[Token, str | None] | None:
    """The innermost '(' still open on the parser's stack, and its function if it has one."""
    closed = 0
    for index in range(len(stack) - 1, -1, -1):
        entry = stack[index]
        if isinstance(entry, Token) and entry.type == "RPAR":
            closed += 1
        elif isinstance(entry, Token) and entry.type == "LPAR":
            if not closed:
                callee = stack[index - 1] if index else None
                is_call = isinstance(callee, Token) and callee.type == "FUNC"
                return entry, str(callee).lower() if is_call else None
            closed -= 1
    return None
