"""Fixtures of the recovery tests: one scan of the session's mock sky."""

from __future__ import annotations

from pathlib import Path

import pytest
from distributed import Client

from lensflow.scan import run_scan
from lensflow.simulate.mock_sky import MockSky
from lensflow.testing import sky_config


@pytest.fixture(scope="session")
def scanned(
    mock_sky: MockSky, dask_client: Client, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A finished scan of the mock sky (tests that damage it copy it first)."""
    output = tmp_path_factory.mktemp("recover-scan") / "scan"
    assert run_scan(sky_config(mock_sky, output), client=dask_client).exit_status == 0
    return output
