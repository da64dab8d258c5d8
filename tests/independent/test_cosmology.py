"""Distances and the SIS Einstein radius of the check set against the reference values."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lensflow.errors import SimulationError
from lensflow.independent.cosmology import (
    angular_diameter_distance,
    einstein_radius,
    kpc_to_arcsec,
    lensing_efficiency,
)


@pytest.fixture(scope="module")
def einstein(reference_dir: Path) -> pd.DataFrame:
    return pd.read_csv(reference_dir / "einstein_radius.csv")


def test_sigma_v_to_theta_e_matches_the_reference(einstein: pd.DataFrame) -> None:
    got = np.array(
        [
            einstein_radius(r.sigma_v_kms, r.z_lens, r.z_source)
            for r in einstein.itertuples(index=False)
        ]
    )
    np.testing.assert_allclose(got, einstein.theta_E_arcsec, rtol=1e-6)


def test_distance_tables_match_the_reference(einstein: pd.DataFrame) -> None:
    np.testing.assert_allclose(
        angular_diameter_distance(einstein.z_lens), einstein.D_l_Mpc, rtol=1e-4
    )
    np.testing.assert_allclose(
        angular_diameter_distance(einstein.z_source), einstein.D_s_Mpc, rtol=1e-4
    )
    ratio = lensing_efficiency(einstein.z_lens.to_numpy(), einstein.z_source.to_numpy())
    np.testing.assert_allclose(ratio, einstein.D_ls_Mpc / einstein.D_s_Mpc, rtol=1e-4)


def test_an_arcsecond_at_redshift_one_is_about_eight_kpc() -> None:
    assert 1.0 / kpc_to_arcsec(1.0, 1.0) == pytest.approx(8.0, rel=0.02)


def test_a_source_in_front_of_the_lens_is_refused() -> None:
    with pytest.raises(SimulationError, match="z_lens < z_source"):
        einstein_radius(250.0, 1.0, 0.5)
