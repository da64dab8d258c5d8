"""Plain values: what JSON and TOML each can hold, from numpy scalars, paths and gaps."""

from __future__ import annotations

import json
import math
import tomllib
from pathlib import Path

import numpy as np
import tomli_w

from lensflow.train.plain import plain

VALUES = {
    "rate": np.float32(1.5),
    "count": np.int64(7),
    "loss": float("nan"),
    "best": np.float64("inf"),
    "path": Path("models") / "a.onnx",
    "none": None,
    "nested": {3: (np.int32(1), "x"), "gap": None},
}


def test_json_values_have_null_for_non_finite_numbers_and_keep_none() -> None:
    out = plain(VALUES, target="json")
    assert json.loads(json.dumps(out, allow_nan=False)) == {
        "rate": 1.5,
        "count": 7,
        "loss": None,
        "best": None,
        "path": str(Path("models") / "a.onnx"),
        "none": None,
        "nested": {"3": [1, "x"], "gap": None},
    }


def test_toml_values_drop_none_and_keep_non_finite_numbers() -> None:
    out = tomllib.loads(tomli_w.dumps(plain(VALUES, target="toml")))
    assert set(out) == {"rate", "count", "loss", "best", "path", "nested"}
    assert (out["rate"], out["count"], out["path"]) == (1.5, 7, str(Path("models") / "a.onnx"))
    assert math.isnan(out["loss"]) and out["best"] == math.inf
    assert out["nested"] == {"3": [1, "x"]}
    assert type(plain(np.int64(2), target="toml")) is int
