"""Fixtures of the check-set tests: the shared reference values and a tiny check set."""

from __future__ import annotations

from pathlib import Path

import pytest

from lensflow.independent import CheckSet, make_check_set

REFERENCE = Path(__file__).resolve().parents[2] / ".." / "shared" / "reference"

TINY = {"n_lenses": 3, "n_non_lenses": 18, "seed": 5}
"""A check set with every non-lens class twice."""


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """shared/reference/, next to the repository root (read at run time, never copied)."""
    if not (REFERENCE / "README.md").is_file():
        pytest.fail(f"reference values not found at {REFERENCE.resolve()}")
    return REFERENCE


@pytest.fixture(scope="session")
def tiny_set(tmp_path_factory: pytest.TempPathFactory) -> CheckSet:
    """TINY rendered in this process in chunks of 5."""
    out = tmp_path_factory.mktemp("check") / "set"
    return make_check_set(out, **TINY, chunk_size=5, progress=False)
