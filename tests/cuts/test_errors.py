"""Cut errors: the 1-based column, a caret under it and what was expected, for any text."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lensflow.cuts import MAX_DEPTH, MAX_LENGTH, Cut, parse_cuts
from lensflow.errors import CutExpressionError, LensflowError

pytestmark = pytest.mark.bad_input


def parse_or_none(text: str) -> Cut | None:
    """The parsed cut, or None after checking the error says where it failed."""
    try:
        return parse_cuts(text)
    except CutExpressionError as error:
        message = str(error)
    assert error_column(message) >= 1
    return None


def error_column(message: str) -> int:
    """The 1-based column an error message reports."""
    found = re.search(r"column (\d+) \(1-based\)", message)
    assert found is not None, message
    return int(found.group(1))


@pytest.mark.parametrize(
    ("text", "column", "expected"),
    [
        ("r < ", 5, "expected a value (a number, a column, a function call or '(') after '<'"),
        ("(r < 1", 7, "expected ')' to close the '(' at column 1, found the end of the cut"),
        ("r << 1", 3, "shift operators are not supported"),
        ("r < 1 && g > 2", 7, "use 'and' instead of '&&'"),
        ("r < 1 & g > 2", 7, "use 'and' instead of '&'"),
        ("r < 1 || g > 2", 7, "use 'or' instead of '||'"),
        ("~(r < 1)", 1, "use 'not'"),
        ("!(r < 1)", 1, "use 'not'"),
        ("r = 1", 3, "use '==' to test equality"),
        ("r => 1", 3, "use '==' to test equality"),
        ("r <> 1", 3, "use '!='"),
        ("r ** 2 > 1", 3, "powers are not supported"),
        ('"abc" == r', 1, "string literals are not supported"),
        ("r == 'abc'", 6, "string literals are not supported"),
        ("exp(r) > 1", 1, "unknown function 'exp'; the functions are abs, isfinite, isnan"),
        ("`exp`(r) > 1", 1, "is a column, not a function"),
        ("__import__('os')", 1, "unknown function '__import__'"),
        ("r.__class__", 2, "no attribute access"),
        ("lambda: r < 1", 7, "':' is not supported"),
        ("lambda r: r < 1", 8, "expected an operator"),
        ("r + 1", 1, "a cut must be a condition"),
        ("-r", 1, "a cut must be a condition"),
        ("", 1, "the cut is empty"),
        ("   ", 1, "the cut is empty"),
        ("r < 1 )", 7, "unmatched ')'"),
        ("r < 1 or", 9, "expected a value"),
        ("r < 1 or or g", 10, "found the keyword 'or'"),
        ("r < 1 g > 2", 7, "expected an operator ('and', 'or', a comparison, + - * /)"),
        ("isnan(r, g)", 8, "isnan() takes one argument"),
        ("isnan < 1", 1, "'isnan' is a function; expected '(' after it"),
        ("true < 1", 6, "'<' compares numbers"),
        ("1r > 0", 1, "malformed number '1r'"),
        ("r > 1.2.3", 5, "malformed number"),
        ("r > 0x10", 5, "malformed number"),
        ("r > 1_000", 5, "malformed number"),
        ("r > 99999999999999999999", 5, "out of the int64 range"),
        ("`r < 1", 1, "expected a closing '`'"),
        ("`` < 1", 1, "empty column name"),
        ("`a\tb` < 1", 3, "may not hold"),
        ("not r + 1", 5, "'not' needs a condition"),
        ("-(r < 1) > 0", 2, "unary '-' needs a number"),
        ("(r < 1) + 1 > 0", 1, "'+' needs a number"),
        ("r < 1 and 2", 11, "'and' needs a condition (true/false), but `2` is a number"),
        ("isfinite(r < 1)", 10, "isfinite() needs a number"),
        ("r ＜ 1", 3, "unexpected character '＜' (U+FF1C)"),
    ],
)
def test_errors_name_the_column_and_what_was_expected(
    text: str, column: int, expected: str
) -> None:
    with pytest.raises(CutExpressionError) as caught:
        parse_cuts(text)
    message = str(caught.value)
    assert expected in message
    assert error_column(message) == column
    shown, caret = message.splitlines()[-2:]
    assert caret.index("^") == column + 1  # two spaces of indent before the text
    assert isinstance(caught.value, LensflowError)
    if "\t" not in text and len(text) < 80:
        assert shown == "  " + text


def test_comparing_a_condition_with_a_number_names_both_sides() -> None:
    with pytest.raises(CutExpressionError) as caught:
        parse_cuts("(r < 1) == g + 2")
    message = str(caught.value)
    assert "`(r < 1)` is a condition (true/false)" in message
    assert "`g + 2` is a number" in message
    assert error_column(message) == 9


def test_too_long_text_is_refused() -> None:
    text = "r < 1 and " * 500 + "true"
    assert len(text) > MAX_LENGTH
    with pytest.raises(CutExpressionError, match=f"expected at most {MAX_LENGTH}") as caught:
        parse_cuts(text)
    assert error_column(str(caught.value)) == MAX_LENGTH + 1
    assert len(str(caught.value)) < 400


@pytest.mark.parametrize(
    "text",
    [
        "(" * 1000 + "r < 1" + ")" * 1000,
        "(" * 4000,
        "not " * 1000 + "flag",
        "-" * 4000,
        "-" * 3000 + "1 < r",
        "abs(" * 800 + "r",
        "isnan(" * 600 + "r" + ")" * 600,
        "r + " * 200 + "r > 0",
        "(" * (MAX_DEPTH + 1) + "r < 1" + ")" * (MAX_DEPTH + 1),
    ],
)
def test_deep_nesting_is_an_error_not_a_recursion_error(text: str) -> None:
    with pytest.raises(CutExpressionError, match=f"deeper than {MAX_DEPTH} levels"):
        parse_cuts(text[:MAX_LENGTH])


def test_reserved_words_need_backquotes_as_columns() -> None:
    for word in ("and", "or", "not", "true", "false", "isnan", "abs", "AND", "IsNull"):
        with pytest.raises(CutExpressionError):
            parse_cuts(f"{word} > 1")
        assert parse_cuts(f"`{word}` > 1").columns == (word,)
    for word in ("inf", "nan", "Inf"):
        assert parse_cuts(f"{word} > 1").columns == ()
        assert parse_cuts(f"`{word}` > 1").columns == (word,)


def test_non_text_is_refused() -> None:
    with pytest.raises(CutExpressionError, match="must be text"):
        parse_cuts(b"r < 1")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# Any text


TOKENS = (
    "a", "b", "`c`", "i", "flag", "1", "0", "2.5", "1e-3", "-", "+", "*", "/", "<", "<=", ">",
    ">=", "==", "!=", "(", ")", "and", "or", "not", "true", "false", "inf", "nan", "isnan(",
    "isnull(", "isfinite(", "abs(", ",", "=", "&", "'", ".", "`", "AND", "Not", " ",
)  # fmt: skip


@settings(max_examples=200)
@given(st.text())
def test_any_text_parses_or_raises_cut_expression_error(text: str) -> None:
    cut = parse_or_none(text)
    if cut is None:
        return
    assert parse_cuts(cut.canonical).canonical == cut.canonical
    cut.to_arrow()


@settings(max_examples=200)
@given(st.lists(st.sampled_from(TOKENS), max_size=30).map(" ".join))
def test_token_soup_parses_or_raises_cut_expression_error(text: str) -> None:
    cut = parse_or_none(text)
    if cut is None:
        return
    assert parse_cuts(cut.canonical).canonical == cut.canonical
    assert all(name and "`" not in name for name in cut.columns)
    cut.to_arrow()
