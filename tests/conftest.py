"""Shared fixtures: a real multi-process Dask cluster on loopback and generated skies."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from distributed import Client

from lensflow.registry import ModelManifest, load_manifest
from lensflow.testing import (
    hats_import,
    loopback_cluster,
    make_small_sky,
    sky_config,
    survey_frame,
)

if TYPE_CHECKING:
    from lensflow.simulate.mock_sky import MockSky


@pytest.fixture(scope="session")
def dask_client() -> Iterator[Client]:
    with loopback_cluster() as cluster, Client(cluster) as client:
        yield client


@pytest.fixture(scope="session")
def mock_sky(tmp_path_factory: pytest.TempPathFactory, dask_client: Client) -> MockSky:
    """A mock sky written by lensflow: 3,000 sources at mixed orders, 12 lenses, its cutouts."""
    return make_small_sky(tmp_path_factory.mktemp("sky") / "sky", client=dask_client)


@pytest.fixture(scope="session")
def shipped_manifest() -> ModelManifest:
    """The models shipped with lensflow, their hashes checked."""
    return load_manifest()


@pytest.fixture(scope="session")
def imported_catalog(tmp_path_factory: pytest.TempPathFactory, dask_client: Client) -> Path:
    """A HATS catalog written by hats-import (not by lensflow) from a survey-like table."""
    base = tmp_path_factory.mktemp("imported")
    source = base / "input.parquet"
    survey_frame(4_000, seed=3).to_parquet(source)
    return hats_import(
        source,
        base,
        name="survey",
        ra_column="raStack",
        dec_column="decStack",
        client=dask_client,
        pixel_threshold=600,
        highest_healpix_order=6,
        lowest_healpix_order=1,
    )


@pytest.fixture(scope="session")
def scanned(
    mock_sky: MockSky, dask_client: Client, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A finished scan of the mock sky, shared by every test folder. Tests that change it leave
    every partition done; tests that damage it, or write grades into it, copy it first."""
    from lensflow.scan import run_scan

    output = tmp_path_factory.mktemp("scan") / "scan"
    outcome = run_scan(sky_config(mock_sky, output), client=dask_client)
    assert outcome.failed == 0 and outcome.exit_status == 0
    return output
