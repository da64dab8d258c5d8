"""Plain values for the files training writes: JSON run reports and the TOML models manifest.

numpy scalars become Python numbers and paths become text. JSON has no NaN, so there a
non-finite float becomes null; TOML has no null, so there a table entry holding None is left out.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np

Target = Literal["json", "toml"]


def plain(value: Any, *, target: Target) -> Any:
    """value (nested mappings, lists, tuples, scalars) as plain values `target` can hold."""
    if isinstance(value, Mapping):
        return {
            str(k): plain(v, target=target)
            for k, v in value.items()
            if not (target == "toml" and v is None)
        }
    if isinstance(value, list | tuple):
        return [plain(v, target=target) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if target == "json" and isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value
