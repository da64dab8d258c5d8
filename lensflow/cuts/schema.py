"""Holding a cut to a catalog's schema: each column it reads exists, once, with a type that fits."""

from __future__ import annotations

import difflib

import pyarrow as pa

from lensflow.cuts.arrow import Cut
from lensflow.cuts.tree import Role, column_roles, format_name
from lensflow.errors import CutExpressionError

__all__ = ["check_columns"]


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
            f"compare it instead, e.g. `{format_name(name)} > 0`"
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
    roles = column_roles(cut.tree)
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
