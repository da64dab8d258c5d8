"""Distances and Einstein radii against shared/reference."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from lensflow.errors import SimulationError
from lensflow.simulate.cosmology import angular_diameter_distances, einstein_radius


def test_einstein_radius_and_distances_match_reference(reference_dir: Path) -> None:
    frame = pd.read_csv(reference_dir / "einstein_radius.csv")
    for _, r in frame.iterrows():
        d_l, d_s, d_ls = angular_diameter_distances(r.z_lens, r.z_source)
        assert d_l == pytest.approx(r.D_l_Mpc, rel=1e-6)
        assert d_s == pytest.approx(r.D_s_Mpc, rel=1e-6)
        assert d_ls == pytest.approx(r.D_ls_Mpc, rel=1e-6)
        theta = einstein_radius(r.sigma_v_kms, r.z_lens, r.z_source)
        assert theta == pytest.approx(r.theta_E_arcsec, rel=1e-6), r.case


def test_distances_beyond_the_table_fall_back_to_astropy() -> None:
    d_l, d_s, _ = angular_diameter_distances(9.9, 12.0)
    assert 0 < d_s < d_l


def test_bad_redshifts_are_refused() -> None:
    with pytest.raises(SimulationError, match="z_lens < z_source"):
        einstein_radius(250.0, 1.0, 0.5)
