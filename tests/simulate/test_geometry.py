"""Complex ellipticity: round trip through (q, phi) and refused values."""

from __future__ import annotations

import math

import pytest

from lensflow.errors import SimulationError
from lensflow.simulate.geometry import ellipticity_to_q_phi, q_phi_to_ellipticity
from lensflow.simulate.lensing import lens_model


def test_ellipticity_round_trip_and_bad_values() -> None:
    e1, e2 = q_phi_to_ellipticity(0.4, 2.0)
    q, phi = ellipticity_to_q_phi(e1, e2)
    assert q == pytest.approx(0.4)
    assert math.cos(2 * (phi - 2.0)) == pytest.approx(1.0)
    with pytest.raises(SimulationError, match="ellipticity"):
        ellipticity_to_q_phi(0.8, 0.7)
    with pytest.raises(SimulationError, match="unknown mass profile"):
        lens_model("NFW")
