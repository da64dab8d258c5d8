"""Cuts against a schema: unknown columns named with close matches, types held to their use."""

from __future__ import annotations

import re

import pyarrow as pa
import pytest

from lensflow.cuts import check_columns, parse_cuts
from lensflow.errors import CutExpressionError

SCHEMA = pa.schema(
    [
        ("rKronMag", pa.float32()),
        ("rPSFMag", pa.float64()),
        ("gKronMag", pa.float64()),
        ("id", pa.int64()),
        ("nobs", pa.uint16()),
        ("pixels", pa.uint64()),
        ("extended", pa.bool_()),
        ("name", pa.string()),
        ("when", pa.timestamp("s")),
    ]
)


def test_check_columns_accepts_a_good_cut() -> None:
    cut = parse_cuts(
        "rKronMag < 21.5 and not extended and id != 9007199254740993 and nobs > 2 "
        "and nobs < -9007199254740993 and pixels > 5 and not isnull(extended) "
        "and isnull(gKronMag)"
    )
    check_columns(cut, SCHEMA)
    check_columns(parse_cuts("true"), SCHEMA)


def test_unknown_column_is_named_with_the_existing_ones() -> None:
    cut = parse_cuts("rKronMgg < 21 and zzz > 1 and rPSFMag > 0")
    with pytest.raises(CutExpressionError, match="rKronMgg") as caught:
        check_columns(cut, SCHEMA, where="Norder=1/Npix=4")
    message = str(caught.value)
    assert message.startswith("Norder=1/Npix=4: ")
    assert "'zzz'" in message
    assert "did you mean 'rKronMag'" in message
    assert "'gKronMag'" in message  # the list of columns that exist
    unknown = message.split("unknown column ")[1].split("; the columns are")[0]
    assert "rPSFMag" not in unknown


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name > 1", "column 'name' has type string"),
        ("isnull(name)", "column 'name' has type string"),
        ("when > 0", "column 'when' has type timestamp[s]"),
        ("extended > 0", "column 'extended' is boolean but the cut uses it as a number"),
        ("rKronMag and true", "column 'rKronMag' has type float but the cut uses it as a cond"),
        ("rKronMag == 9007199254740993", "needs a signed integer column"),
        ("pixels < 9007199254740993", "needs a signed integer column"),
    ],
)
def test_check_columns_refuses_a_type_that_does_not_fit(text: str, expected: str) -> None:
    with pytest.raises(CutExpressionError, match=re.escape(expected)):
        check_columns(parse_cuts(text), SCHEMA)


def test_check_columns_refuses_duplicated_names() -> None:
    schema = pa.schema([("r", pa.float64()), ("r", pa.float64())])
    with pytest.raises(CutExpressionError, match="column 'r' appears 2 times"):
        check_columns(parse_cuts("r < 1"), schema)
