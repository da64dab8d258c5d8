"""Catalog cuts: user text -> checked tree -> a pyarrow expression applied while reading.

Cut text is untrusted. A hand-written tokenizer and operator-precedence (Pratt) parser read it
against a small allowlist grammar; nothing in it is ever evaluated as Python. Grammar, loosest
first:

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

Types: every expression is a condition (true/false) or a number. `and`, `or`, `not` take
conditions; comparisons, arithmetic, `isnan`, `isfinite`, `abs` take numbers; `isnull` takes
either. A cut must be a condition. A bare column takes the type its place asks for, and
`check_columns` holds the schema to it: boolean columns as conditions, integer and floating
columns as numbers.

Values, nulls and NaN (`Cut.to_arrow` and `Cut.evaluate` agree on every row):
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

import difflib
import math
import operator
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Literal, NoReturn, TypeAlias

import pyarrow as pa
import pyarrow.compute as pc

from lensflow.errors import CutExpressionError

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

MAX_LENGTH = 4096
"""Longest cut text accepted, in characters."""

MAX_DEPTH = 64
"""Deepest nesting accepted: parentheses, calls, `not`, unary minus and the tree itself."""

EXACT_INT = 2**53
"""Integer literals at or beyond this magnitude are compared with a column as integers."""

_INT64_MAX = 2**63 - 1
FUNCTIONS = ("abs", "isfinite", "isnan", "isnull")
_KEYWORDS = frozenset({"and", "or", "not", "true", "false", "inf", "nan"})
_RESERVED = _KEYWORDS | frozenset(FUNCTIONS)
_LETTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")
_DIGITS = frozenset("0123456789")
_NAME_CHARS = _LETTERS | _DIGITS
_SPACE = frozenset(" \t\r\n")
_COMPARE_OPS = ("<=", ">=", "==", "!=", "<", ">")
_SINGLE_OPS = frozenset("<>+-*/(),")
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

_BINDING: dict[str, int] = {
    "or": 1,
    "and": 2,
    "not": 3,
    **dict.fromkeys(_COMPARE_OPS, 4),
    "+": 5,
    "-": 5,
    "*": 6,
    "/": 6,
    "unary -": 7,
}
"""Binding powers, loosest first: or < and < not < comparison < + - < * / < unary minus."""

Kind: TypeAlias = Literal["bool", "num", "any"]
Role: TypeAlias = Literal["bool", "num", "any", "int"]


# ---------------------------------------------------------------------------------------------
# Tree


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


def _kind(node: Node) -> Kind:
    """What a node yields; a bare column takes whatever its place asks for."""
    if isinstance(node, Column):
        return "any"
    if isinstance(node, Number | Negate | Arith):
        return "num"
    if isinstance(node, Call):
        return "num" if node.function == "abs" else "bool"
    return "bool"


def _exact_pair(node: Compare) -> tuple[str, int] | None:
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


# ---------------------------------------------------------------------------------------------
# Text


def _format_name(name: str) -> str:
    """A column name as cut text: bare when it is a plain identifier, else in backquotes."""
    plain = (
        bool(name)
        and name[0] in _LETTERS
        and all(c in _NAME_CHARS for c in name)
        and name.lower() not in _RESERVED
    )
    return name if plain else f"`{name}`"


def _format_number(value: float) -> str:
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
        return _format_name(node.name)
    if isinstance(node, Number):
        return _format_number(node.value)
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


def _columns(node: Node, roles: dict[str, set[Role]], role: Role) -> None:
    """Collect each column the tree reads and the roles it is read in."""
    if isinstance(node, Column):
        roles.setdefault(node.name, set()).add(role)
    elif isinstance(node, Negate | Arith):
        for child in (node.operand,) if isinstance(node, Negate) else (node.left, node.right):
            _columns(child, roles, "num")
    elif isinstance(node, Compare):
        exact = _exact_pair(node)
        if exact is not None:
            roles.setdefault(exact[0], set()).add("int")
        else:
            _columns(node.left, roles, "num")
            _columns(node.right, roles, "num")
    elif isinstance(node, Not):
        _columns(node.operand, roles, "bool")
    elif isinstance(node, Logic):
        for child in node.operands:
            _columns(child, roles, "bool")
    elif isinstance(node, Call):
        _columns(node.argument, roles, "any" if node.function == "isnull" else "num")


# ---------------------------------------------------------------------------------------------
# Errors


def _error(text: str, pos: int, message: str) -> CutExpressionError:
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


def _describe_char(c: str) -> str:
    return f"{c!r} (U+{ord(c):04X})"


# ---------------------------------------------------------------------------------------------
# Tokens


@dataclass(frozen=True)
class _Token:
    kind: Literal["num", "name", "quoted", "op", "end"]
    text: str
    pos: int
    value: int | float | str | None = None

    def describe(self) -> str:
        if self.kind == "end":
            return "the end of the cut"
        if self.kind == "num":
            return f"the number {self.text}"
        if self.kind == "quoted":
            return f"the column {self.text}"
        return f"'{self.text}'"


def _tokenize(text: str) -> Iterator[_Token]:
    """Yield cut text's tokens in order, refusing anything outside the grammar with a hint.

    Lazy, so an error earlier in the grammar is reported before a bad character later on.
    """
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c in _SPACE:
            i += 1
        elif c in _DIGITS or (c == "." and i + 1 < n and text[i + 1] in _DIGITS):
            token, i = _read_number(text, i)
            yield token
        elif c in _LETTERS:
            j = i + 1
            while j < n and text[j] in _NAME_CHARS:
                j += 1
            yield _Token("name", text[i:j], i, text[i:j])
            i = j
        elif c == "`":
            token, i = _read_quoted(text, i)
            yield token
        elif text[i : i + 2] in _COMPARE_OPS:
            yield _Token("op", text[i : i + 2], i)
            i += 2
        elif text[i : i + 2] in _HINTS:
            raise _error(text, i, _HINTS[text[i : i + 2]])
        elif c in _SINGLE_OPS:
            yield _Token("op", c, i)
            i += 1
        elif c in _HINTS:
            raise _error(text, i, _HINTS[c])
        else:
            raise _error(
                text,
                i,
                f"unexpected character {_describe_char(c)}; expected a number, a column "
                "(ASCII letters, digits and _, or any name in backquotes), an operator or "
                "a parenthesis",
            )
    yield _Token("end", "", n)


def _read_number(text: str, start: int) -> tuple[_Token, int]:
    """Read a decimal literal (digits, optional fraction, optional exponent) at start."""
    n = len(text)
    i = start
    while i < n and text[i] in _DIGITS:
        i += 1
    is_float = False
    if i < n and text[i] == ".":
        is_float = True
        i += 1
        while i < n and text[i] in _DIGITS:
            i += 1
    if i < n and text[i] in "eE":
        j = i + 1
        if j < n and text[j] in "+-":
            j += 1
        if j < n and text[j] in _DIGITS:
            is_float = True
            i = j
            while i < n and text[i] in _DIGITS:
                i += 1
    if i < n and (text[i] in _NAME_CHARS or text[i] in ".`"):
        j = i
        while j < n and (text[j] in _NAME_CHARS or text[j] == "."):
            j += 1
        raise _error(
            text,
            start,
            f"malformed number {text[start : max(j, i + 1)]!r}; expected digits with an "
            "optional fraction and exponent, like 21, 0.05 or 1e-3",
        )
    literal = text[start:i]
    if is_float:
        return _Token("num", literal, start, float(literal)), i
    digits = literal.lstrip("0") or "0"
    if len(digits) > 19 or int(digits) > _INT64_MAX:
        raise _error(
            text,
            start,
            f"integer {literal} is out of the int64 range (at most {_INT64_MAX}); "
            "write it as a float, like 1e19, to compare in float64",
        )
    return _Token("num", literal, start, int(digits)), i


def _read_quoted(text: str, start: int) -> tuple[_Token, int]:
    """Read a backquoted column name: printable characters other than a backquote."""
    i = start + 1
    while i < len(text) and text[i] != "`":
        if not text[i].isprintable():
            raise _error(
                text,
                i,
                f"a backquoted column name may not hold {_describe_char(text[i])}; "
                "expected printable characters and a closing '`'",
            )
        i += 1
    if i >= len(text):
        raise _error(text, start, "expected a closing '`' for the column name started here")
    if i == start + 1:
        raise _error(text, start, "empty column name ``; expected a name between backquotes")
    name = text[start + 1 : i]
    return _Token("quoted", text[start : i + 1], start, name), i + 1


# ---------------------------------------------------------------------------------------------
# Parser


@dataclass(frozen=True)
class _Item:
    """A parsed node with where its text lies and how deep its tree is."""

    node: Node
    start: int
    end: int
    depth: int


_KIND_WORDS: dict[Kind, str] = {
    "bool": "a condition (true/false)",
    "num": "a number",
    "any": "a column",
}


class _Parser:
    """Pratt parser over the lazily read tokens, checking types and depth as it builds."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.stream = _tokenize(text)
        self.tokens: list[_Token] = []
        self.i = 0
        self.nesting = 0

    # -- helpers

    def peek(self) -> _Token:
        while self.i >= len(self.tokens):
            # The stream ends with an end token; past it, that token repeats.
            self.tokens.append(next(self.stream, None) or self.tokens[-1])
        return self.tokens[self.i]

    def advance(self) -> _Token:
        token = self.peek()
        self.i += 1
        return token

    def at_keyword(self, word: str) -> bool:
        token = self.peek()
        return token.kind == "name" and token.text.lower() == word

    def at_op(self, *ops: str) -> bool:
        token = self.peek()
        return token.kind == "op" and token.text in ops

    def fail(self, pos: int, message: str) -> NoReturn:
        raise _error(self.text, pos, message)

    def source(self, item: _Item) -> str:
        text = " ".join(self.text[item.start : item.end].split())
        return text if len(text) <= 40 else text[:37] + "..."

    def enter(self, pos: int) -> None:
        self.nesting += 1
        if self.nesting > MAX_DEPTH:
            self.fail(
                pos,
                f"nesting deeper than {MAX_DEPTH} levels (parentheses, calls, 'not', unary "
                "'-'); expected a flatter cut",
            )

    def make(self, node: Node, op: _Token, start: int, end: int, *children: _Item) -> _Item:
        """An item for a new node; `op` is the token an over-deep tree is reported at."""
        depth = 1 + max((child.depth for child in children), default=0)
        if depth > MAX_DEPTH:
            self.fail(
                op.pos,
                f"expression nested deeper than {MAX_DEPTH} levels; expected a flatter cut",
            )
        return _Item(node, start, end, depth)

    def need(self, item: _Item, kind: Kind, what: str) -> None:
        found = _kind(item.node)
        if found != "any" and found != kind:
            self.fail(
                item.start,
                f"{what} needs {_KIND_WORDS[kind]}, but `{self.source(item)}` is "
                f"{_KIND_WORDS[found]}",
            )

    def end_of(self) -> int:
        return self.tokens[self.i - 1].pos + len(self.tokens[self.i - 1].text)

    # -- grammar

    def cut(self) -> Node:
        if self.peek().kind == "end":
            self.fail(0, "the cut is empty; expected a condition (write 'true' to keep every row)")
        item = self.expression()
        token = self.peek()
        if token.kind != "end":
            if token.kind == "op" and token.text == ")":
                self.fail(token.pos, "unmatched ')'; expected an operator or the end of the cut")
            self.fail(
                token.pos,
                f"expected an operator ('and', 'or', a comparison, + - * /) or the end of the "
                f"cut, found {token.describe()}",
            )
        if _kind(item.node) == "num":
            self.fail(
                item.start,
                f"a cut must be a condition (true or false for each row), but "
                f"`{self.source(item)}` is a number; compare it, e.g. `... > 0`",
            )
        return item.node

    def infix(self) -> tuple[_Token, int] | None:
        """The binary operator at the cursor and its binding power, if one is there."""
        token = self.peek()
        if token.kind == "name":
            word = token.text.lower()
            return (token, _BINDING[word]) if word in ("and", "or") else None
        if token.kind == "op" and token.text in _BINDING:
            return token, _BINDING[token.text]
        return None

    def expression(self, floor: int = 0) -> _Item:
        """Pratt loop: a prefix item, then operators that bind at least as tight as floor.

        Each level of parentheses costs two or three Python frames, so MAX_DEPTH is far from
        the interpreter's recursion limit.
        """
        left = self.prefix()
        while (found := self.infix()) is not None and found[1] >= floor:
            token, power = found
            if power <= _BINDING["and"]:
                left = self.logic(left, token.text.lower(), power)
            elif power == _BINDING["<"]:
                left = self.comparison(left, power)
            else:
                self.advance()
                right = self.expression(power + 1)
                self.need(left, "num", f"'{token.text}'")
                self.need(right, "num", f"'{token.text}'")
                node = Arith(token.text, left.node, right.node)
                left = self.make(node, token, left.start, right.end, left, right)
        return left

    def logic(self, first: _Item, op: str, power: int) -> _Item:
        """One `and` chain or one `or` chain, as written, into an n-ary Logic node."""
        items = [first]
        ops: list[_Token] = []
        while self.at_keyword(op):
            ops.append(self.advance())
            items.append(self.expression(power + 1))
        for item in items:
            self.need(item, "bool", f"'{op}'")
        node = Logic(op, tuple(item.node for item in items))
        return self.make(node, ops[-1], first.start, items[-1].end, *items)

    def comparison(self, first: _Item, power: int) -> _Item:
        """`a < b`, or a chain `a < b <= c` read as `a < b and b <= c`."""
        items = [first]
        ops: list[_Token] = []
        while self.at_op(*_COMPARE_OPS):
            ops.append(self.advance())
            items.append(self.expression(power + 1))
        compares: list[_Item] = []
        for op, left, right in zip(ops, items[:-1], items[1:], strict=True):
            kinds = (_kind(left.node), _kind(right.node))
            if "bool" in kinds:
                self.fail(
                    op.pos,
                    f"'{op.text}' compares numbers, but `{self.source(left)}` is "
                    f"{_KIND_WORDS[kinds[0]]} and `{self.source(right)}` is "
                    f"{_KIND_WORDS[kinds[1]]}; combine conditions with and/or/not",
                )
            node = Compare(op.text, left.node, right.node)
            compares.append(self.make(node, op, left.start, right.end, left, right))
        if len(compares) == 1:
            return compares[0]
        chain = Logic("and", tuple(item.node for item in compares))
        return self.make(chain, ops[-1], first.start, items[-1].end, *compares)

    def prefix(self) -> _Item:
        """`not x`, `-x` or an atom."""
        if self.at_keyword("not"):
            token = self.advance()
            self.enter(token.pos)
            operand = self.expression(_BINDING["not"])
            self.nesting -= 1
            self.need(operand, "bool", "'not'")
            return self.make(Not(operand.node), token, token.pos, operand.end, operand)
        if self.at_op("-"):
            token = self.advance()
            self.enter(token.pos)
            operand = self.expression(_BINDING["unary -"])
            self.nesting -= 1
            self.need(operand, "num", "unary '-'")
            if isinstance(operand.node, Number):
                return _Item(Number(-operand.node.value), token.pos, operand.end, 1)
            return self.make(Negate(operand.node), token, token.pos, operand.end, operand)
        return self.atom()

    def atom(self) -> _Item:
        token = self.advance()
        if token.kind == "num":
            assert isinstance(token.value, int | float)
            return _Item(Number(token.value), token.pos, self.end_of(), 1)
        if token.kind == "quoted":
            assert isinstance(token.value, str)
            if self.at_op("("):
                self.fail(
                    token.pos,
                    f"{token.text} is a column, not a function; the functions are "
                    f"{', '.join(FUNCTIONS)}",
                )
            return _Item(Column(token.value), token.pos, self.end_of(), 1)
        if token.kind == "op" and token.text == "(":
            self.enter(token.pos)
            inner = self.expression()
            self.close(token)
            self.nesting -= 1
            return _Item(inner.node, token.pos, self.end_of(), inner.depth)
        if token.kind == "name":
            return self.name(token)
        after = f" after {self.tokens[self.i - 2].describe()}" if self.i >= 2 else ""
        self.fail(
            token.pos,
            f"expected a value (a number, a column, a function call or '('){after}, "
            f"found {token.describe()}",
        )

    def name(self, token: _Token) -> _Item:
        word = token.text.lower()
        end = self.end_of()
        if word in ("true", "false"):
            return _Item(Bool(word == "true"), token.pos, end, 1)
        if word in ("inf", "nan"):
            return _Item(Number(float(word)), token.pos, end, 1)
        if word in FUNCTIONS:
            if not self.at_op("("):
                self.fail(
                    token.pos,
                    f"'{token.text}' is a function; expected '(' after it (write "
                    f"`{token.text}` in backquotes for a column of that name)",
                )
            return self.call(token, word)
        if word in _KEYWORDS:
            self.fail(
                token.pos,
                f"expected a value (a number, a column, a function call or '('), found the "
                f"keyword '{token.text}' (write `{token.text}` in backquotes for a column)",
            )
        if self.at_op("("):
            self.fail(
                token.pos,
                f"unknown function '{token.text}'; the functions are {', '.join(FUNCTIONS)}",
            )
        return _Item(Column(token.text), token.pos, end, 1)

    def call(self, token: _Token, function: str) -> _Item:
        paren = self.advance()
        self.enter(paren.pos)
        argument = self.expression()
        if self.at_op(","):
            self.fail(self.peek().pos, f"{function}() takes one argument; expected ')'")
        self.close(paren)
        self.nesting -= 1
        if function != "isnull":
            self.need(argument, "num", f"{function}()")
        node = Call(function, argument.node)
        return self.make(node, token, token.pos, self.end_of(), argument)

    def close(self, opening: _Token) -> None:
        token = self.advance()
        if token.kind != "op" or token.text != ")":
            self.fail(
                token.pos,
                f"expected ')' to close the '(' at column {opening.pos + 1}, "
                f"found {token.describe()}",
            )


# ---------------------------------------------------------------------------------------------
# Arrow and the reference evaluator


_ARROW_COMPARE: dict[str, Callable[..., pc.Expression]] = {
    "<": pc.less,
    "<=": pc.less_equal,
    ">": pc.greater,
    ">=": pc.greater_equal,
    "==": pc.equal,
    "!=": pc.not_equal,
}
_ARROW_ARITH: dict[str, Callable[..., pc.Expression]] = {
    "+": pc.add,
    "-": pc.subtract,
    "*": pc.multiply,
    "/": pc.divide,
}
_ARROW_TEST: dict[str, Callable[..., pc.Expression]] = {
    "isnan": pc.is_nan,
    "isfinite": pc.is_finite,
}
_PY_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}


def _arrow(node: Node, kind: Kind) -> pc.Expression:
    """The pyarrow expression of a node read as `kind` (a bare column's kind is its place)."""
    if isinstance(node, Column):
        field = pc.field(node.name)
        return field.cast(pa.float64(), safe=False) if kind == "num" else field
    if isinstance(node, Number):
        return pc.scalar(float(node.value))
    if isinstance(node, Bool):
        return pc.scalar(node.value)
    if isinstance(node, Negate):
        return pc.negate(_arrow(node.operand, "num"))
    if isinstance(node, Arith):
        return _ARROW_ARITH[node.op](_arrow(node.left, "num"), _arrow(node.right, "num"))
    if isinstance(node, Compare):
        compare = _ARROW_COMPARE[node.op]
        exact = _exact_pair(node)
        if exact is not None:
            name, value = exact
            sides = [pc.field(name), pc.scalar(pa.scalar(value, pa.int64()))]
            if not isinstance(node.left, Column):
                sides.reverse()
            return compare(*sides)
        return compare(_arrow(node.left, "num"), _arrow(node.right, "num"))
    if isinstance(node, Not):
        return pc.invert(_arrow(node.operand, "bool"))
    if isinstance(node, Logic):
        combine = pc.and_kleene if node.op == "and" else pc.or_kleene
        result = _arrow(node.operands[0], "bool")
        for child in node.operands[1:]:
            result = combine(result, _arrow(child, "bool"))
        return result
    if node.function == "isnull":
        argument = _arrow(node.argument, _kind(node.argument))
        return pc.is_null(argument, nan_is_null=False)
    argument = _arrow(node.argument, "num")
    if node.function == "abs":
        return pc.abs(argument)
    return _ARROW_TEST[node.function](argument)


def _divide(x: float, y: float) -> float:
    """IEEE division, as pyarrow's unchecked `divide` on float64."""
    if y != 0.0:
        return x / y
    if x == 0.0 or math.isnan(x):
        return math.nan
    return math.copysign(math.inf, x) * math.copysign(1.0, y)


_PY_ARITH: dict[str, Callable[[float, float], float]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": _divide,
}


def _lookup(row: Mapping[str, float | None], name: str) -> float | None:
    try:
        return row[name]
    except KeyError:
        raise CutExpressionError(f"the row has no column {name!r}") from None


def _eval_number(node: Node, row: Mapping[str, float | None]) -> float | None:
    """A numeric node's value in float64, or None for null."""
    if isinstance(node, Column):
        value = _lookup(row, node.name)
        return None if value is None else float(value)
    if isinstance(node, Number):
        return float(node.value)
    if isinstance(node, Negate):
        operand = _eval_number(node.operand, row)
        return None if operand is None else -operand
    if isinstance(node, Arith):
        left, right = _eval_number(node.left, row), _eval_number(node.right, row)
        if left is None or right is None:
            return None
        return _PY_ARITH[node.op](left, right)
    assert isinstance(node, Call)
    argument = _eval_number(node.argument, row)
    return None if argument is None else abs(argument)


def _eval_truth(node: Node, row: Mapping[str, float | None]) -> bool | None:
    """A condition's value with Kleene logic, or None for null."""
    if isinstance(node, Column):
        value = _lookup(row, node.name)
        return None if value is None else bool(value)
    if isinstance(node, Bool):
        return node.value
    if isinstance(node, Not):
        operand = _eval_truth(node.operand, row)
        return None if operand is None else not operand
    if isinstance(node, Logic):
        values = [_eval_truth(child, row) for child in node.operands]
        decisive = node.op == "or"
        if decisive in values:
            return decisive
        return None if None in values else not decisive
    if isinstance(node, Compare):
        exact = _exact_pair(node)
        if exact is not None:
            value = _lookup(row, exact[0])
            if value is None:
                return None
            sides = [value, exact[1]] if isinstance(node.left, Column) else [exact[1], value]
            return _PY_COMPARE[node.op](*sides)
        left, right = _eval_number(node.left, row), _eval_number(node.right, row)
        if left is None or right is None:
            return None
        return _PY_COMPARE[node.op](left, right)
    assert isinstance(node, Call)
    if node.function == "isnull":
        kind = _kind(node.argument)
        if kind == "any":
            assert isinstance(node.argument, Column)
            return _lookup(row, node.argument.name) is None
        value = (
            _eval_truth(node.argument, row) if kind == "bool" else _eval_number(node.argument, row)
        )
        return value is None
    argument = _eval_number(node.argument, row)
    if argument is None:
        return None
    return math.isnan(argument) if node.function == "isnan" else math.isfinite(argument)


# ---------------------------------------------------------------------------------------------
# Public API


@dataclass(frozen=True)
class Cut:
    """A parsed, type-checked cut: its text, canonical form, columns and tree."""

    text: str
    canonical: str
    columns: tuple[str, ...]
    tree: Node

    def to_arrow(self) -> pc.Expression:
        """The cut as a pyarrow expression; a row passes where it is true (null drops it)."""
        return _arrow(self.tree, "bool")

    def evaluate(self, row: Mapping[str, float | None]) -> bool:
        """Whether one row (column -> value, None for null) passes, in plain Python.

        The reference for `to_arrow`: same float64 arithmetic, NaN and Kleene null rules.
        """
        return _eval_truth(self.tree, row) is True


def parse_cuts(text: str) -> Cut:
    """Parse and type-check cut text; raise CutExpressionError saying where and what."""
    if not isinstance(text, str):
        raise CutExpressionError(f"a cut must be text, not {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise _error(
            text,
            MAX_LENGTH,
            f"the cut is {len(text)} characters long; expected at most {MAX_LENGTH}",
        )
    try:
        tree = _Parser(text).cut()
    except RecursionError:
        # MAX_DEPTH keeps parsing far below the limit; this only fires on an already deep stack.
        raise CutExpressionError(
            "the cut could not be parsed: the interpreter's stack is already too deep here"
        ) from None
    roles: dict[str, set[Role]] = {}
    _columns(tree, roles, "bool")
    return Cut(text=text, canonical=unparse(tree), columns=tuple(sorted(roles)), tree=tree)


def _type_problem(name: str, dtype: pa.DataType, roles: set[Role]) -> str | None:
    """Why a column of this type cannot be read in these roles, or None when it can."""
    if pa.types.is_boolean(dtype):
        if roles & {"num", "int"}:
            return (
                f"column {name!r} is boolean but the cut uses it as a number; use it as a "
                f"condition (`{name}`, `not {name}`)"
            )
        return None
    if not (pa.types.is_integer(dtype) or pa.types.is_floating(dtype)):
        return f"column {name!r} has type {dtype}; cuts read numeric or boolean columns only"
    if "bool" in roles:
        return (
            f"column {name!r} has type {dtype} but the cut uses it as a condition; "
            f"compare it instead, e.g. `{_format_name(name)} > 0`"
        )
    exact = pa.types.is_signed_integer(dtype) or dtype in (pa.uint8(), pa.uint16(), pa.uint32())
    if "int" in roles and not exact:
        return (
            f"column {name!r} has type {dtype} but is compared with an integer literal of "
            f"magnitude 2**53 or more, which needs a signed integer column; write the "
            f"literal as a float (like 1e16) to compare in float64"
        )
    return None


def check_columns(cut: Cut, schema: pa.Schema, *, where: str = "") -> None:
    """Raise CutExpressionError unless every column the cut reads exists with a usable type.

    Names each unknown column (with close matches) and lists the columns that exist; refuses
    duplicated names, non-numeric non-boolean types, and a type that does not fit its use.
    `where` (a path, a pixel) starts the message.
    """
    roles: dict[str, set[Role]] = {}
    _columns(cut.tree, roles, "bool")
    names = list(schema.names)
    problems: list[str] = []
    unknown: list[str] = []
    for name in cut.columns:
        indices = schema.get_all_field_indices(name)
        if not indices:
            close = difflib.get_close_matches(name, names, n=3)
            hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
            unknown.append(f"{name!r}{hint}")
        elif len(indices) > 1:
            problems.append(f"column {name!r} appears {len(indices)} times in the schema")
        else:
            problem = _type_problem(name, schema.field(indices[0]).type, roles[name])
            if problem is not None:
                problems.append(problem)
    if unknown:
        problems.insert(0, f"unknown column {', '.join(unknown)}; the columns are {sorted(names)}")
    if problems:
        prefix = f"{where}: " if where else ""
        raise CutExpressionError(f"{prefix}cut {cut.text!r}: " + "; ".join(problems))
