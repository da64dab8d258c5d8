"""Catalog morphology on pixels: a point source is point-like, an extended Sersic is not, and
PSF minus model magnitude and size grow with the source's size."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from lensflow.simulate import draw_scene
from lensflow.simulate.morphology import (
    EXTENDEDNESS_MAG,
    REFERENCE_SNR,
    adaptive_moment,
    catalog_band_survey,
    catalogued_images,
    extendedness,
    measure_images,
    measure_morphology,
    pixel_psf,
    psf_moment,
    reference_band,
)
from lensflow.simulate.render import pixel_centres
from lensflow.simulate.scene import Component, PointSource, Scene, scene_signal
from lensflow.simulate.sersic import SersicEllipse
from lensflow.surveys import survey_profile

LSST = survey_profile("lsst")
FLUX = 2.0e4
"""nJy in every band (r ~ 20.6): bright enough that noise barely moves a measurement."""


def _scene(
    *, components: tuple[Component, ...] = (), points: tuple[PointSource, ...] = (), seed: int = 1
) -> Scene:
    """A drawn scene's seeing, PSF and seed with the given light instead of its own."""
    base = draw_scene("elliptical", seed=seed, mag_r=20.0)
    return replace(base, components=components, points=points, artefacts=())


def _point(seed: int = 1) -> Scene:
    flux = dict.fromkeys(LSST.catalog_bands, FLUX)
    return _scene(points=(PointSource(0.05, -0.07, flux),), seed=seed)


def _sersic(r_sersic: float, *, n_sersic: float = 1.0, seed: int = 1) -> Scene:
    profile = SersicEllipse.from_flux(1.0, r_sersic, n_sersic, 0.1, -0.05, 0.03, 0.04)
    return _scene(
        components=(Component(profile, dict.fromkeys(LSST.catalog_bands, FLUX)),), seed=seed
    )


def _noiseless(scene: Scene) -> np.ndarray:
    return scene_signal(scene.components, scene.points, scene, catalog_band_survey(LSST))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_point_source_has_no_size_and_its_psf_flux_is_its_flux(seed: int) -> None:
    scene = _point(seed)
    measured = measure_images(_noiseless(scene), scene=scene, survey=LSST)
    for band in LSST.catalog_bands:
        assert abs(-2.5 * math.log10(measured.psf_flux[band] / FLUX)) < 0.3 * EXTENDEDNESS_MAG
        assert measured.size[band] < 0.03  # arcsec, against a PSF sigma of ~0.3
    assert measured.centroid == pytest.approx((0.05, -0.07), abs=0.01)


def test_noisy_point_sources_scatter_about_zero_as_their_errors_say() -> None:
    differences, pulls, sizes = [], [], []
    for seed in range(40):
        scene = replace(_point(seed), seed=(99, seed))
        measured = measure_morphology(scene, survey=LSST)
        for band in ("g", "r", "i"):
            differences.append(-2.5 * math.log10(measured.psf_flux[band] / FLUX))
            pulls.append((measured.psf_flux[band] - FLUX) / measured.psf_flux_error[band])
            sizes.append(measured.size[band])
    assert abs(np.median(differences)) < 0.005
    assert np.std(pulls) == pytest.approx(1.0, abs=0.35)
    assert np.median(sizes) < 0.05


def test_an_extended_sersic_grows_in_psf_minus_model_and_in_size() -> None:
    radii = (0.1, 0.3, 0.6, 1.2, 2.4)
    psf_minus_model, sizes = [], []
    for radius in radii:
        scene = _sersic(radius)
        measured = measure_images(_noiseless(scene), scene=scene, survey=LSST)
        psf_minus_model.append(-2.5 * math.log10(measured.psf_flux["r"] / FLUX))
        sizes.append(measured.size["r"])
    assert psf_minus_model[0] > EXTENDEDNESS_MAG
    assert all(np.diff(psf_minus_model) > 0.1) and all(np.diff(sizes) > 0.05)
    # an exponential's light-weighted sigma is ~1.2 x its half-light radius' Gaussian sigma;
    # adaptive moments of a large source approach its own second-moment scale
    assert sizes[-1] == pytest.approx(radii[-1] / 1.18, rel=0.5)


def test_a_de_vaucouleurs_profile_is_more_concentrated_than_an_exponential() -> None:
    exponential, de_vaucouleurs = _sersic(1.0, n_sersic=1.0), _sersic(1.0, n_sersic=4.0)
    one = measure_images(_noiseless(exponential), scene=exponential, survey=LSST)
    four = measure_images(_noiseless(de_vaucouleurs), scene=de_vaucouleurs, survey=LSST)
    assert four.psf_flux["r"] > one.psf_flux["r"]  # a bright core: more light in the PSF
    assert four.size["r"] < one.size["r"]


def test_adaptive_moments_of_a_gaussian_give_its_variance() -> None:
    scale, sigma = 0.2, 0.7
    c = pixel_centres(64, scale)
    gaussian = np.exp(-0.5 * (c[None, :] ** 2 + c[:, None] ** 2) / sigma**2)
    moment = adaptive_moment(gaussian, centre=(0.0, 0.0), pixel_scale=scale, start=0.1)
    assert moment == pytest.approx(sigma**2 + scale**2 / 12, rel=0.01)  # pixel-centre samples
    template = pixel_psf("gaussian", 0.75, 0.0, 0.0, n=41, pixel_scale=scale)
    assert template.sum() == pytest.approx(1.0, abs=1e-3)  # a Gaussian has no wings
    assert psf_moment("gaussian", 0.75, scale) == pytest.approx(
        (0.75 / 2.3548) ** 2 + scale**2 / 12, rel=0.01
    )


def test_the_reference_band_follows_the_pipelines_priority() -> None:
    bands = ("g", "r", "i", "z")
    assert reference_band(dict.fromkeys(bands, 50.0), bands) == "i"
    assert reference_band({"g": 50.0, "r": 40.0, "i": 3.0, "z": 2.0}, bands) == "r"
    faint = {"g": 0.5 * REFERENCE_SNR, "r": 2.0, "i": 1.0, "z": 1.0}
    assert reference_band(faint, bands) == "g"  # none reaches the floor: the best measured
    assert reference_band({"N921": 30.0, "g": 5.0}, ("g", "N921")) == "N921"


def test_extendedness_is_the_pipelines_flux_ratio_cut() -> None:
    assert pytest.approx(-2.5 * math.log10(0.985)) == EXTENDEDNESS_MAG
    assert extendedness(21.02, 21.0) == 1.0
    assert extendedness(21.01, 21.0) == 0.0
    assert math.isnan(extendedness(math.nan, 21.0))


def test_the_catalogued_light_leaves_out_neighbours_and_is_deterministic() -> None:
    scene = draw_scene("group", seed=4, mag_r=19.5)
    assert any(not c.in_catalog for c in scene.components)
    images = catalogued_images(scene, survey=LSST)
    assert images.shape == (len(LSST.catalog_bands), LSST.cutout_size, LSST.cutout_size)
    np.testing.assert_array_equal(images, catalogued_images(scene, survey=LSST))
    kept = [c for c in scene.components if c.in_catalog]
    signal = scene_signal(kept, [p for p in scene.points if p.in_catalog], scene,
                          catalog_band_survey(LSST))  # fmt: skip
    residual = images - signal
    for k, band in enumerate(LSST.catalog_bands):  # noise only: the neighbours are not there
        assert np.std(residual[k]) < 1.5 * LSST.sky_sigma_njy[band]


def test_drawn_stars_and_galaxies_are_told_apart() -> None:
    for kind, expected in (("star", 0.0), ("elliptical", 1.0)):
        flags = []
        for k in range(15):
            scene = draw_scene(kind, seed=(5, k), mag_r=21.0)
            measured = measure_morphology(scene, survey=LSST)
            psf = measured.psf_magnitudes()[measured.reference_band]
            flags.append(extendedness(psf, scene.mag[measured.reference_band]))
        assert np.mean(np.array(flags) == expected) >= 0.85, (kind, flags)
