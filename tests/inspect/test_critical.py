"""Critical curves of a predicted SIE + shear model: circles, ellipses, shear, and no curve."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lensflow.inspect.critical import OVERSAMPLE, critical_curve, lens_parameters

SIZE, SCALE = 64, 0.2
STEP = 1.0 / OVERSAMPLE  # grid spacing, display px
ROUND = {"theta_E": 1.2, "e1": 0.0, "e2": 0.0, "center_x": 0.0, "center_y": 0.0}


def _one_line(row: dict[str, float]) -> np.ndarray:
    curve = critical_curve(row, size=SIZE, pixel_scale_arcsec=SCALE)
    assert curve is not None and len(curve.lines) == 1
    line = curve.lines[0]
    assert line.shape[1] == 2 and len(line) > 50
    return line


def _area(line: np.ndarray) -> float:
    x, y = line[:, 0], line[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))))


def test_a_round_sis_without_shear_is_a_circle_of_radius_theta_e() -> None:
    line = _one_line(ROUND)
    radius = np.hypot(line[:, 0] - SIZE / 2, line[:, 1] - SIZE / 2)
    np.testing.assert_allclose(radius, ROUND["theta_E"] / SCALE, atol=STEP)
    assert _area(line) == pytest.approx(math.pi * (ROUND["theta_E"] / SCALE) ** 2, rel=0.01)


def test_the_centre_moves_the_curve_with_plus_y_up() -> None:
    line = _one_line({**ROUND, "center_x": 0.6, "center_y": 0.4})
    centre = line.mean(axis=0)
    np.testing.assert_allclose(centre, [SIZE / 2 + 3.0, SIZE / 2 - 2.0], atol=STEP)


def test_an_sie_curve_is_the_kappa_half_ellipse_of_the_same_area() -> None:
    """Without shear an SIE has |gamma| = kappa: det A = 1 - 2 kappa, so its curve is the
    isodensity q x'^2 + y'^2 / q = theta_E^2 (major axis along phi), of area pi theta_E^2."""
    e1, e2 = 0.0, 0.25  # q = 0.6, phi = 45 degrees
    q = (1 - 0.25) / (1 + 0.25)
    line = _one_line({**ROUND, "e1": e1, "e2": e2})
    x = (line[:, 0] - SIZE / 2) * SCALE
    y = (SIZE / 2 - line[:, 1]) * SCALE
    major, minor = (x + y) / math.sqrt(2), (y - x) / math.sqrt(2)
    radius = np.sqrt(q * major**2 + minor**2 / q)
    np.testing.assert_allclose(radius, ROUND["theta_E"], atol=STEP * SCALE)
    theta_px = ROUND["theta_E"] / SCALE
    assert _area(line) == pytest.approx(math.pi * theta_px**2, rel=0.01)
    reach = np.hypot(line[:, 0] - SIZE / 2, line[:, 1] - SIZE / 2)
    assert reach.max() == pytest.approx(theta_px / math.sqrt(q), abs=STEP)
    assert reach.min() == pytest.approx(theta_px * math.sqrt(q), abs=STEP)


def test_external_shear_stretches_the_curve_across_its_axis() -> None:
    """SIS + shear gamma1: the curve reaches theta_E / (1 + gamma) along x, theta_E / (1 - gamma)
    along y."""
    gamma = 0.1
    line = _one_line({**ROUND, "gamma_ext1": gamma, "gamma_ext2": 0.0})
    theta_px = ROUND["theta_E"] / SCALE
    half_x = 0.5 * (line[:, 0].max() - line[:, 0].min())
    half_y = 0.5 * (line[:, 1].max() - line[:, 1].min())
    assert half_x == pytest.approx(theta_px / (1 + gamma), abs=STEP)
    assert half_y == pytest.approx(theta_px / (1 - gamma), abs=STEP)


@pytest.mark.parametrize(
    "row",
    [
        {**ROUND, "theta_E": 0.0},
        {**ROUND, "theta_E": -1.0},
        {**ROUND, "theta_E": float("nan")},
        {**ROUND, "theta_E": None},
        {k: v for k, v in ROUND.items() if k != "e2"},
        {**ROUND, "e1": 0.8, "e2": 0.7},  # |e| >= 1
        {},
    ],
)
def test_no_model_no_curve(row: dict[str, float | None]) -> None:
    assert critical_curve(row, size=SIZE, pixel_scale_arcsec=SCALE) is None


def test_missing_shear_counts_as_none_and_far_curves_are_empty() -> None:
    assert lens_parameters(ROUND) == {**ROUND, "gamma_ext1": 0.0, "gamma_ext2": 0.0}
    far = critical_curve({**ROUND, "center_x": 100.0}, size=SIZE, pixel_scale_arcsec=SCALE)
    assert far is not None and far.lines == () and far.as_lists() == []
