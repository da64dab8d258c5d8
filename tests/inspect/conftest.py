"""Fixtures of the inspection tests, on the session's scan of the mock sky (tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lensflow.inspect.ranked import ScanCandidates


@pytest.fixture(scope="session")
def candidates(scanned: Path) -> ScanCandidates:
    """Every candidate of the scan (no score cut), best first."""
    return ScanCandidates(scanned, min_score=0.0)
