"""Rendering: lenstronomy's EPL against the reference SIE, the band images against lenstronomy's
own ImageModel, fluxes, noise."""

from __future__ import annotations

import itertools
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lensflow.independent.population import Deflector, Light, Points, Seeing, sersic_light
from lensflow.independent.render import (
    Canvas,
    add_noise,
    band_images,
    light_maps,
    noise_variance,
    psf_kernel,
    unit_flux,
)
from lensflow.independent.seds import SED, band_fluxes
from lensflow.surveys import frozen, survey_profile

LSST = survey_profile("lsst")
FLAT = SED("quasar", 0.0, (0.0,))
"""A flat f_nu: the same flux in every band."""


def test_epl_of_slope_two_is_the_reference_sie(reference_dir: Path) -> None:
    """The check set's deflector (lenstronomy EPL, gamma = 2, plus shear) follows the
    reference's SIE + shear conventions: deflections, convergence and det A."""
    from lenstronomy.LensModel.lens_model import LensModel

    points = pd.read_csv(reference_dir / "lens_points.csv")
    model = LensModel(list(Deflector.models))
    for _, rows in points.groupby(["config_id", "model"]):
        r = rows.iloc[0]
        deflector = Deflector(
            r.theta_E, 2.0, r.e1, r.e2, r.center_x, r.center_y, r.gamma_ext1, r.gamma_ext2
        )
        kwargs = deflector.kwargs()
        kwargs[1].update(ra_0=r.ra_0, dec_0=r.dec_0)
        x, y = rows.x.to_numpy(), rows.y.to_numpy()
        ax, ay = model.alpha(x, y, kwargs)
        scale = np.hypot(rows.alpha_x, rows.alpha_y)
        assert np.all(np.hypot(ax - rows.alpha_x, ay - rows.alpha_y) <= 1e-6 * scale), r.case
        fxx, fxy, fyx, fyy = model.hessian(x, y, kwargs)
        np.testing.assert_allclose((fxx + fyy) / 2, rows.kappa, rtol=1e-6)
        det = (1 - fxx) * (1 - fyy) - fxy * fyx
        assert np.all(np.abs(det - rows.det_A) <= 1e-6 * np.maximum(1, np.abs(rows.det_A)))


def _scene() -> tuple[list[Light], Deflector, Seeing]:
    lens = sersic_light(
        0.6, 4.0, 0.8, 0.3, (0.05, -0.02), sed=SED("old", 0.5, (1.45, 2.0)), mag_ref=20.0
    )
    source = sersic_light(
        0.15, 1.0, 0.7, 1.0, (0.12, 0.08), sed=SED("star_forming", 1.5, (-1.8, 1.1, 1.1)),
        mag_ref=24.0, lensed=True,
    )  # fmt: skip
    deflector = Deflector(1.2, 2.0, 0.05, -0.03, 0.05, -0.02, 0.02, 0.01)
    seeing = Seeing("moffat", 3.0, frozen({"g": 0.85, "r": 0.75, "i": 0.7}))
    return [lens, source], deflector, seeing


def test_band_images_are_lenstronomys_image_model() -> None:
    """The per-band assembly equals lenstronomy's ImageModel with supersampled convolution."""
    from lenstronomy.Data.imaging_data import ImageData
    from lenstronomy.Data.psf import PSF
    from lenstronomy.ImSim.image_model import ImageModel
    from lenstronomy.LensModel.lens_model import LensModel
    from lenstronomy.LightModel.light_model import LightModel
    from lenstronomy.PointSource.point_source import PointSource

    lights, deflector, seeing = _scene()
    star = Points((1.7,), (-2.3,), (1.0,), FLAT, 21.0)
    canvas = Canvas(n=64, scale=0.2, ss=3)
    ours = band_images(
        lights, [star], deflector=deflector, seeing=seeing, survey=LSST, canvas=canvas
    )
    n, p = 64, 0.2
    data = ImageData(
        image_data=np.zeros((n, n)), ra_at_xy_0=-(n - 1) / 2 * p, dec_at_xy_0=-(n - 1) / 2 * p,
        transform_pix2angle=np.eye(2) * p,
    )  # fmt: skip
    wavelengths = {b: LSST.wavelength_nm[b] for b in LSST.bands}
    for k, band in enumerate(LSST.bands):
        psf = PSF(psf_type="PIXEL", kernel_point_source=psf_kernel(seeing, band, canvas.step),
                  point_source_supersampling_factor=3)  # fmt: skip
        model = ImageModel(
            data, psf, lens_model_class=LensModel(list(Deflector.models)),
            source_model_class=LightModel(["SERSIC_ELLIPSE"]),
            lens_light_model_class=LightModel(["SERSIC_ELLIPSE"]),
            point_source_class=PointSource(["UNLENSED"]),
            kwargs_numerics={"supersampling_factor": 3, "supersampling_convolution": True,
                             "supersampling_kernel_size": 25},
        )  # fmt: skip
        lens_kw, source_kw = (
            [{**li.kwargs[0], "amp": band_fluxes(li.sed, li.mag_ref, wavelengths)[band] / unit_flux(li)}]
            for li in lights
        )  # fmt: skip
        flux = band_fluxes(FLAT, 21.0, wavelengths)[band]
        kw_ps = [{"ra_image": [1.7], "dec_image": [-2.3], "point_amp": [flux]}]
        theirs = model.image(deflector.kwargs(), source_kw, lens_kw, kw_ps)
        assert np.abs(ours[k] - theirs).max() < 1e-3 * theirs.max(), band


def test_a_lensed_light_sums_to_its_magnification() -> None:
    """Unlensed, a light in the frame sums to 1; lensed, its sum is its magnification, > 1
    for a source inside the caustics, and equals a direct ray-shooting estimate."""
    lights, deflector, _ = _scene()
    canvas = Canvas(n=64, scale=0.2, ss=3)
    unlensed = light_maps([replace(lights[1], lensed=False)], deflector=None, canvas=canvas)
    assert unlensed[0].total == pytest.approx(1.0, abs=0.01)  # ss = 3 midpoint rule
    lensed = light_maps(lights[1:], deflector=deflector, canvas=canvas)[0]
    fine = light_maps(lights[1:], deflector=deflector, canvas=Canvas(n=64, scale=0.2, ss=8))[0]
    assert lensed.total > 3.0
    assert lensed.total == pytest.approx(fine.total, rel=0.01)


def test_a_lens_has_more_light_near_theta_e_than_its_lens_light() -> None:
    """Azimuthally, the rendered system is brighter than its lens light alone at ~theta_E."""
    lights, deflector, seeing = _scene()
    system = band_images(lights, [], deflector=deflector, seeing=seeing, survey=LSST)
    alone = band_images(lights[:1], [], deflector=None, seeing=seeing, survey=LSST)
    axis = (np.arange(64) - 31.5) * 0.2
    xx, yy = np.meshgrid(axis, axis)
    r = np.hypot(xx - deflector.center_x, yy - deflector.center_y)
    ring = np.abs(r - deflector.theta_e) < 0.3
    edges = np.arange(0.0, 3.01, 0.2)
    for k in range(len(LSST.bands)):
        assert system[k][ring].sum() > 1.2 * alone[k][ring].sum()
        excess = system[k] - alone[k]
        mean = [excess[(r >= a) & (r < b)].mean() for a, b in itertools.pairwise(edges)]
        peak = edges[int(np.argmax(mean))] + 0.1
        assert abs(peak - deflector.theta_e) < 0.4


def test_noise_has_the_profiles_sky_sigma_and_source_poisson_noise() -> None:
    rng = np.random.default_rng(1)
    flat = np.zeros((3, 64, 64))
    flat[:, :32] = 500.0
    noisy = add_noise(flat, survey=LSST, rng=rng)
    for k, band in enumerate(LSST.bands):
        sky = LSST.sky_sigma_njy[band]
        assert np.std(noisy[k, 32:]) == pytest.approx(sky, rel=0.05)
        expected = np.sqrt(sky**2 + 500.0 / LSST.gain(band))
        assert np.std(noisy[k, :32]) == pytest.approx(expected, rel=0.05)
    assert noise_variance(flat, LSST)[0, 0, 0] > noise_variance(flat, LSST)[0, 40, 0]


@pytest.mark.parametrize("model", ["moffat", "gaussian"])
def test_psf_kernels_have_the_fwhm_asked_for(model: str) -> None:
    seeing = Seeing(model, 3.5, frozen({"r": 0.8}))
    step = 0.2 / 3
    kernel = psf_kernel(seeing, "r", step)
    assert kernel.sum() == pytest.approx(1.0)
    centre = kernel.shape[0] // 2
    profile = kernel[centre, centre:] / kernel[centre, centre]
    half = np.interp(0.5, profile[::-1], np.arange(profile.size)[::-1]) * step
    assert 2 * half == pytest.approx(0.8, rel=0.03)
