"""Fixtures of the inspection tests: one scan of the session's mock sky, read by every module."""

from __future__ import annotations

from pathlib import Path

import pytest
from distributed import Client

from lensflow.inspect.ranked import ScanCandidates
from lensflow.scan import run_scan
from lensflow.simulate.mock_sky import MockSky
from lensflow.testing import sky_config


@pytest.fixture(scope="session")
def scanned(
    mock_sky: MockSky, dask_client: Client, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A finished scan of the mock sky; the tests write grades elsewhere unless they copy it."""
    output = tmp_path_factory.mktemp("inspect-scan") / "scan"
    outcome = run_scan(sky_config(mock_sky, output), client=dask_client)
    assert outcome.failed == 0 and outcome.exit_status == 0
    return output


@pytest.fixture(scope="session")
def candidates(scanned: Path) -> ScanCandidates:
    """Every candidate of the scan (no score cut), best first."""
    return ScanCandidates(scanned, min_score=0.0)
