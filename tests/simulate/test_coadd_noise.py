"""Coadd noise: Lanczos-3 resampled white noise keeps its per-pixel sigma and has the stated
neighbour correlation."""

from __future__ import annotations

import numpy as np
import pytest

from lensflow.errors import SimulationError
from lensflow.simulate.coadd_noise import (
    CoaddNoise,
    correlated_noise,
    draw_coadd_noise,
    lanczos_weights,
)
from lensflow.simulate.observe import add_coadd_noise, noise_sigma, observe_band

N_FIELDS = 400
"""Fields of 64 x 64 per measurement: 1.6e6 pixels, so a correlation is known to ~1e-3."""


def _measured(noise: CoaddNoise, seed: int) -> tuple[float, float, float, float]:
    rng = np.random.default_rng(seed)
    fields = np.stack([correlated_noise(rng, (64, 64), noise) for _ in range(N_FIELDS)])
    var = float(fields.var())
    rho_x = float((fields[:, :, 1:] * fields[:, :, :-1]).mean()) / var
    rho_y = float((fields[:, 1:, :] * fields[:, :-1, :]).mean()) / var
    rho_2 = float((fields[:, :, 2:] * fields[:, :, :-2]).mean()) / var
    return float(fields.std()), rho_x, rho_y, rho_2


def test_lanczos_weights_sum_to_one_and_are_a_delta_at_zero_shift() -> None:
    assert lanczos_weights(0.0).tolist() == [0.0, 0.0, 1.0, 0.0, 0.0, 0.0]
    for shift in (0.1, 0.5, 0.77):
        w = lanczos_weights(shift)
        assert w.shape == (6,) and w.sum() == pytest.approx(1.0, abs=1e-14)
    # symmetric at half a pixel: the two nearest pixels weigh the same
    w = lanczos_weights(0.5)
    assert w[2] == pytest.approx(w[3]) and w[0] == pytest.approx(w[5])


@pytest.mark.parametrize(
    "shifts",
    [((0.5, 0.5),), ((0.5, 0.0),), ((0.2, 0.7), (0.9, 0.4), (0.55, 0.05))],
    ids=["half-pixel", "x-only", "three-exposures"],
)
def test_noise_keeps_unit_sigma_and_has_the_stated_correlation(
    shifts: tuple[tuple[float, float], ...],
) -> None:
    noise = CoaddNoise(shifts)
    sigma, rho_x, rho_y, _ = _measured(noise, seed=4)
    want_x, want_y = noise.neighbour_correlation()
    assert sigma == pytest.approx(1.0, abs=3e-3)
    assert rho_x == pytest.approx(want_x, abs=4e-3)
    assert rho_y == pytest.approx(want_y, abs=4e-3)


def test_the_stated_numbers_of_the_module() -> None:
    assert CoaddNoise(((0.5, 0.5),)).neighbour_correlation()[0] == pytest.approx(0.256, abs=1e-3)
    assert CoaddNoise(((0.0, 0.0),)).neighbour_correlation() == (0.0, 0.0)
    # a many-exposure coadd at uniform shifts: 0.112 along each axis, -0.076 at lag two
    rng = np.random.default_rng(0)
    many = CoaddNoise(tuple((float(a), float(b)) for a, b in rng.uniform(0, 1, size=(400, 2))))
    rho_x, rho_y = many.neighbour_correlation()
    assert rho_x == pytest.approx(0.112, abs=0.01) and rho_y == pytest.approx(0.112, abs=0.01)
    _, mx, _, m2 = _measured(CoaddNoise(many.shifts[:40]), seed=2)
    assert mx == pytest.approx(0.112, abs=0.02) and m2 == pytest.approx(-0.076, abs=0.02)


def test_a_zero_shift_coadd_is_white() -> None:
    sigma, rho_x, rho_y, _ = _measured(CoaddNoise(((0.0, 0.0), (0.0, 0.0))), seed=1)
    assert sigma == pytest.approx(1.0, abs=3e-3)
    assert abs(rho_x) < 4e-3 and abs(rho_y) < 4e-3


def test_observed_noise_keeps_the_profiles_sigma_with_a_source() -> None:
    rng = np.random.default_rng(3)
    signal = np.zeros((64, 64))
    signal[20:44, 20:44] = 400.0
    sigma = noise_sigma(signal, sky_sigma=3.9, gain=0.5)
    noise = CoaddNoise(((0.3, 0.6), (0.8, 0.1)))
    residuals = np.stack(
        [
            add_coadd_noise(signal, sky_sigma=3.9, gain=0.5, rng=rng, noise=noise) - signal
            for _ in range(300)
        ]
    )
    ratio = residuals.std(axis=0) / sigma
    assert ratio[:16].mean() == pytest.approx(1.0, abs=0.01)  # sky only
    assert ratio[24:40, 24:40].mean() == pytest.approx(1.0, abs=0.01)  # sky + source
    image = observe_band(
        signal,
        band="r",
        sky_sigma=3.9,
        gain=0.5,
        saturation=1e9,
        pixel_scale=0.2,
        fwhm=0.7,
        psf_model="moffat",
        artefacts=(),
        rng=np.random.default_rng(3),
        noise=noise,
    )
    first = add_coadd_noise(
        signal, sky_sigma=3.9, gain=0.5, rng=np.random.default_rng(3), noise=noise
    )
    assert np.array_equal(image, first)


def test_drawn_coadds_and_bad_shifts() -> None:
    rng = np.random.default_rng(5)
    counts = [len(draw_coadd_noise(rng).shifts) for _ in range(300)]
    assert min(counts) == 1 and max(counts) == 12
    with pytest.raises(SimulationError, match=r"shift must be in \[0, 1\)"):
        CoaddNoise(((1.0, 0.2),))
    with pytest.raises(SimulationError, match="at least one exposure"):
        CoaddNoise(())
