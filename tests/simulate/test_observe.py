"""Observation: PSF, convolution, noise at the survey's depth, saturation, artefacts."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from scipy import integrate, signal

from lensflow.errors import SimulationError
from lensflow.simulate import Scene, render_scene
from lensflow.simulate.observe import (
    BadColumn,
    CosmicRay,
    SatelliteTrail,
    StarHalo,
    add_noise,
    convolve,
    observe_band,
    point_source_image,
    psf_kernel,
    psf_profile,
    saturate,
)
from lensflow.surveys import frozen, survey_profile

LSST = survey_profile("lsst")

MODELS = ("moffat", "gaussian")


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("fwhm", [0.6, 0.75, 0.98])
def test_psf_kernel_is_normalised_and_symmetric(model: str, fwhm: float) -> None:
    kernel = psf_kernel(model, fwhm, 0.2)
    assert kernel.shape == (31, 31)
    assert kernel.sum() == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(kernel, kernel[::-1, ::-1], atol=1e-15)
    np.testing.assert_allclose(kernel, kernel.T, atol=1e-15)
    assert kernel.argmax() == 15 * 31 + 15
    assert not kernel.flags.writeable


@pytest.mark.parametrize("model", MODELS)
def test_psf_profile_has_its_fwhm_and_unit_flux(model: str) -> None:
    psf = psf_profile(model, 0.8)
    peak = psf.surface_brightness(0.0, 0.0)
    assert psf.surface_brightness(0.4, 0.0) == pytest.approx(0.5 * peak, rel=1e-12)
    total, _ = integrate.quad(
        lambda r: 2 * math.pi * r * float(psf.surface_brightness(r, 0.0)), 0, np.inf
    )
    assert total == pytest.approx(1.0, rel=1e-8)


@pytest.mark.parametrize("model", MODELS)
def test_point_source_is_the_pixel_integrated_psf(model: str) -> None:
    image = point_source_image(model, 0.75, 0.07, -0.03, n=64, pixel_scale=0.2)
    assert image.sum() == pytest.approx(1.0, abs=1e-3)
    y, x = np.unravel_index(image.argmax(), image.shape)
    assert (int(y), int(x)) == (31, 32)


def test_unknown_psf_model_is_refused() -> None:
    with pytest.raises(SimulationError, match="unknown PSF model"):
        psf_profile("airy", 0.7)


def test_convolution_matches_scipy_and_keeps_flux() -> None:
    rng = np.random.default_rng(0)
    images = np.zeros((3, 64, 64))
    images[:, 20:44, 20:44] = rng.uniform(0, 1, (3, 24, 24))
    kernels = np.stack([psf_kernel("moffat", f, 0.2) for f in (0.85, 0.75, 0.7)])
    ours = convolve(images, kernels)
    for k in range(3):
        ref = signal.fftconvolve(images[k], kernels[k], mode="same")
        np.testing.assert_allclose(ours[k], ref, atol=1e-12)
    np.testing.assert_allclose(ours.sum(axis=(1, 2)), images.sum(axis=(1, 2)), rtol=1e-3)


def _blank_scene(seed: int) -> Scene:
    return Scene(
        kind="artefact",
        is_lens=False,
        seed=(seed,),
        mag=frozen({b: math.inf for b in LSST.catalog_bands}),
        extended=False,
        size_arcsec=0.0,
        params=frozen(),
    )


def test_blank_sky_noise_matches_the_stated_sigma() -> None:
    images = np.stack([render_scene(_blank_scene(seed)) for seed in range(12)])
    assert images.dtype == np.float32
    for k, band in enumerate(LSST.bands):
        pixels = images[:, k].ravel()
        assert pixels.std() == pytest.approx(LSST.sky_sigma_njy[band], rel=0.02)
        assert abs(pixels.mean()) < 4 * LSST.sky_sigma_njy[band] / math.sqrt(pixels.size)


def test_source_poisson_noise_uses_the_gain() -> None:
    rng = np.random.default_rng(1)
    signal_level = 2000.0
    gain = LSST.gain("r")
    sigma = LSST.sky_sigma_njy["r"]
    noisy = add_noise(np.full((256, 256), signal_level), sky_sigma=sigma, gain=gain, rng=rng)
    expected = math.sqrt(sigma**2 + signal_level / gain)
    assert noisy.std() == pytest.approx(expected, rel=0.02)
    assert noisy.mean() == pytest.approx(signal_level, abs=4 * expected / 256)


def test_saturation_clips_and_bleeds_along_the_column() -> None:
    image = np.zeros((64, 64))
    image[30, 20] = 5.0e5
    image[31, 20] = 2.0e5
    out = saturate(image, 1.0e5)
    assert out.max() == pytest.approx(1.0e5)
    assert out.sum() == pytest.approx(image.sum())
    rows = np.flatnonzero(out[:, 20] > 1.0)
    np.testing.assert_array_equal(rows, np.arange(rows[0], rows[0] + 8))
    assert np.count_nonzero(out[:, 20] == 1.0e5) == 6
    assert np.count_nonzero(out[:, :20]) == 0
    untouched = np.ones((8, 8))
    np.testing.assert_array_equal(saturate(untouched, 10.0), untouched)


def test_cosmic_ray_lands_in_its_band_only() -> None:
    ray = CosmicRay("g", 0.3, -0.2, 1.5, 0.4, 900.0)
    kw: dict[str, Any] = {"pixel_scale": 0.2, "fwhm": 0.8, "psf_model": "moffat"}
    hit = ray.draw(np.zeros((64, 64)), band="g", **kw)
    assert hit.sum() == pytest.approx(900.0)
    assert np.count_nonzero(hit) <= 12
    np.testing.assert_array_equal(ray.draw(np.zeros((64, 64)), band="r", **kw), 0.0)


def test_satellite_trail_carries_its_flux_per_arcsec() -> None:
    trail = SatelliteTrail("i", 0.0, 0.0, 0.0, 50.0)
    image = trail.draw(np.zeros((64, 64)), band="i", pixel_scale=0.2, fwhm=0.7, psf_model="g")
    assert image.sum() == pytest.approx(50.0 * 64 * 0.2, rel=1e-3)
    assert image[:, 10].sum() == pytest.approx(image[:, 50].sum())


def test_bad_columns_hot_and_dead() -> None:
    rng = np.random.default_rng(2)
    noisy = rng.normal(0, 3, (64, 64))
    dead = BadColumn("r", 12, 0.0, dead=True)
    out = dead.draw(noisy, band="r", pixel_scale=0.2, fwhm=0.7, psf_model="moffat")
    np.testing.assert_array_equal(out[:, 12], 0.0)
    np.testing.assert_array_equal(np.delete(out, 12, axis=1), np.delete(noisy, 12, axis=1))
    hot = BadColumn("r", 5, 40.0, start=32)
    out = hot.draw(noisy, band="r", pixel_scale=0.2, fwhm=0.7, psf_model="moffat")
    np.testing.assert_allclose(out[32:, 5] - noisy[32:, 5], 40.0)
    np.testing.assert_array_equal(out[:32, 5], noisy[:32, 5])


def test_dead_column_is_zero_after_the_noise() -> None:
    image = observe_band(
        np.zeros((64, 64)),
        band="g",
        sky_sigma=2.85,
        gain=LSST.gain("g"),
        saturation=1e5,
        pixel_scale=0.2,
        fwhm=0.85,
        psf_model="moffat",
        artefacts=(BadColumn("g", 7, 0.0, dead=True),),
        rng=np.random.default_rng(3),
    )
    np.testing.assert_array_equal(image[:, 7], 0.0)
    assert image[:, 8].std() > 1.0


def test_star_halo_adds_light_in_every_band_with_flux() -> None:
    halo = StarHalo(9.0, 2.0, frozen({"g": 1e6, "r": 2e6, "i": 3e6}), ghost_dx=-8.0)
    kw: dict[str, Any] = {"pixel_scale": 0.2, "fwhm": 0.8, "psf_model": "moffat"}
    sums = [halo.draw(np.zeros((64, 64)), band=b, **kw).sum() for b in ("g", "r", "i", "z")]
    assert 0 < sums[0] < sums[1] < sums[2]
    assert sums[3] == 0.0
    image = halo.draw(np.zeros((64, 64)), band="r", **kw)
    assert image.min() >= 0.0
    assert image[:, 40:].sum() > image[:, :24].sum()
