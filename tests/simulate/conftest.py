"""Fixtures of the simulator tests: the shared reference values beside the repository."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

REFERENCE = Path(__file__).resolve().parents[2] / ".." / "shared" / "reference"


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """shared/reference/, next to the repository root (never copied into it)."""
    if not (REFERENCE / "README.md").is_file():
        pytest.fail(f"reference values not found at {REFERENCE.resolve()}")
    return REFERENCE


@pytest.fixture(scope="session")
def reference_manifest(reference_dir: Path) -> dict[str, Any]:
    """manifest.json: row counts and sha256 of every reference file."""
    manifest: dict[str, Any] = json.loads((reference_dir / "manifest.json").read_text())
    return manifest
