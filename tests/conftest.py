"""Shared fixtures: a real multi-process Dask cluster on loopback and generated skies."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from distributed import Client, LocalCluster

from lensflow.simulate.mock_sky import MockSky, make_mock_sky

SHARED = Path(__file__).resolve().parents[2] / "shared"


def loopback_cluster(n_workers: int = 2) -> LocalCluster:
    """A cluster of worker processes, one thread each, bound to 127.0.0.1, no dashboard."""
    return LocalCluster(
        n_workers=n_workers,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    )


@pytest.fixture(scope="session")
def dask_client() -> Iterator[Client]:
    with loopback_cluster() as cluster, Client(cluster) as client:
        yield client


@pytest.fixture(scope="session")
def mock_sky(tmp_path_factory: pytest.TempPathFactory, dask_client: Client) -> MockSky:
    """A mock sky written by lensflow: 3,000 sources at mixed orders, 12 lenses, its cutouts."""
    return make_mock_sky(
        tmp_path_factory.mktemp("sky") / "sky",
        n_sources=3_000,
        n_lenses=12,
        seed=7,
        client=dask_client,
    )


def survey_frame(n: int, seed: int) -> pd.DataFrame:
    """A Pan-STARRS-like source table (not lensflow's simulator): what a survey would export."""
    rng = np.random.default_rng(seed)
    dec = rng.uniform(-10.0, 10.0, n)
    ra = rng.uniform(20.0, 60.0, n)
    r = rng.uniform(17.0, 24.0, n)
    frame = pd.DataFrame(
        {
            "objID": (np.int64(1) << 58) + np.arange(n, dtype=np.int64) * 7919,
            "raStack": ra,
            "decStack": dec,
            "gKronMag": r + rng.normal(0.8, 0.3, n),
            "rKronMag": r,
            "iKronMag": r - rng.normal(0.4, 0.2, n),
            "zKronMag": r - rng.normal(0.6, 0.2, n),
            "rPSFMag": r + np.abs(rng.normal(0.3, 0.3, n)),
            "flags": rng.integers(0, 4, n).astype(np.int32),
        }
    )
    frame.loc[rng.choice(n, n // 50, replace=False), "gKronMag"] = np.nan
    return frame


@pytest.fixture(scope="session")
def imported_catalog(tmp_path_factory: pytest.TempPathFactory, dask_client: Client) -> Path:
    """A HATS catalog written by hats-import (not by lensflow) from a survey-like table."""
    from hats_import.catalog.arguments import ImportArguments
    from hats_import.pipeline import pipeline_with_client

    base = tmp_path_factory.mktemp("imported")
    source = base / "input.parquet"
    survey_frame(4_000, seed=3).to_parquet(source)
    args = ImportArguments(
        output_artifact_name="survey",
        input_file_list=[str(source)],
        file_reader="parquet",
        ra_column="raStack",
        dec_column="decStack",
        output_path=str(base),
        pixel_threshold=600,
        highest_healpix_order=6,
        lowest_healpix_order=1,
        progress_bar=False,
        tmp_dir=str(base / "tmp"),
    )
    pipeline_with_client(args, dask_client)
    return base / "survey"
