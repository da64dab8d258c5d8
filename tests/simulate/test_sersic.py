"""The Sersic profile against shared/reference: surface brightness, total flux, q and phi."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lensflow.simulate.geometry import ellipticity_to_q_phi
from lensflow.simulate.sersic import SersicEllipse


def test_sersic_matches_reference(reference_dir: Path) -> None:
    frame = pd.read_csv(reference_dir / "sersic_points.csv")
    for _, group in frame.groupby("config_id"):
        r = group.iloc[0]
        light = SersicEllipse(r.amp, r.R_sersic, r.n_sersic, r.e1, r.e2, r.center_x, r.center_y)
        ours = light.surface_brightness(group.x.to_numpy(), group.y.to_numpy())
        ref = group.surface_brightness.to_numpy()
        assert np.all(np.abs(ours - ref) <= 1e-6 * ref), r.case
        assert abs(light.total_flux() - r.total_flux) <= 1e-6 * r.total_flux
        q, phi = ellipticity_to_q_phi(r.e1, r.e2)
        assert q == pytest.approx(r.q, rel=1e-12)
        assert math.cos(2 * (phi - r.phi)) == pytest.approx(1.0, abs=1e-12)
