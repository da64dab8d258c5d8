"""Wide lenses: lensed quasars at the lens-equation solutions, lens light redder inside,
acceptance as for classic lenses."""

from __future__ import annotations

import functools
import itertools

import numpy as np
import pytest

from lensflow.simulate import draw_scene, noiseless_image, render_scene
from lensflow.simulate.lensing import LensModel
from lensflow.simulate.render import pixel_centres
from lensflow.simulate.scene import LENS_PARAMS, Scene
from lensflow.surveys import survey_profile


@functools.cache
def _quasar(k: int) -> Scene:
    return draw_scene("lens", seed=(21, k), population="wide", variant="quasar")


@pytest.mark.parametrize("k", range(6))
def test_quasar_images_solve_the_lens_equation(k: int) -> None:
    scene = _quasar(k)
    assert isinstance(scene.lens, LensModel)
    p = scene.params
    n = len(scene.points)
    assert n in (2, 4) and p["n_images"] == n and p["quasar"] == 1.0
    x = np.array([pt.x for pt in scene.points])
    y = np.array([pt.y for pt in scene.points])
    bx, by = scene.lens.ray_shoot(x, y)  # lensing.py's deflection
    assert np.hypot(bx - p["source_x"], by - p["source_y"]).max() < 1e-3
    # each image carries |mu| times the quasar's flux, the same colours in every image
    mu = np.abs(scene.lens.magnification(x, y))
    r_flux = np.array([pt.flux["r"] for pt in scene.points])
    assert np.allclose(r_flux / mu, r_flux[0] / mu[0], rtol=1e-9)
    g_over_r = np.array([pt.flux["g"] / pt.flux["r"] for pt in scene.points])
    assert np.allclose(g_over_r, g_over_r[0])
    assert -2.5 * np.log10(r_flux.sum() / mu.sum()) + 31.4 == pytest.approx(p["quasar_mag_r"])


def test_the_quasar_images_are_the_lenses_full_set_of_solutions() -> None:
    scene = _quasar(0)
    assert scene.lens is not None
    xs, ys, _ = scene.lens.image_positions(scene.params["source_x"], scene.params["source_y"])
    got = sorted((round(pt.x, 9), round(pt.y, 9)) for pt in scene.points)
    assert got == sorted(
        (round(float(a), 9), round(float(b), 9)) for a, b in zip(xs, ys, strict=True)
    )


def test_a_galaxy_lens_has_every_lens_param_and_meets_the_criteria() -> None:
    for k in range(4):
        scene = draw_scene("lens", seed=(22, k), population="wide", variant="galaxy")
        p = scene.params
        assert set(LENS_PARAMS) <= set(p) and p["quasar"] == 0.0 and not scene.points
        assert p["magnification"] >= p["min_magnification"]
        assert p["arc_snr"] >= p["min_arc_snr"]
        assert p["theta_e"] >= p["min_theta_e_over_fwhm"] * p["psf_fwhm_min"]
        assert np.isfinite(render_scene(scene)).all()


def _colour_g_minus_i(scene: Scene, radius: float) -> float:
    """g - i (AB) of the lens light's surface brightness (before the PSF, which differs between
    bands) averaged around a circle of this radius about the lens centre."""
    t = np.linspace(0.0, 2.0 * np.pi, 64, endpoint=False)
    x = scene.params["lens_x"] + radius * np.cos(t)
    y = scene.params["lens_y"] + radius * np.sin(t)
    light = [c for c in scene.components if c.in_catalog and not c.lensed]
    sb = {
        band: sum(
            c.flux[band] * c.profile.surface_brightness(x, y).mean() / c.profile.total_flux()
            for c in light
        )
        for band in ("g", "i")
    }
    return float(-2.5 * np.log10(sb["g"] / sb["i"]))


@pytest.mark.parametrize("k", range(8))
def test_lens_light_is_redder_at_the_centre(k: int) -> None:
    scene = draw_scene("lens", seed=(23, k), population="wide")
    assert scene.params["lens_colour_gradient_gr"] > 0.0
    r_e = scene.params["lens_r_sersic"]
    colours = [_colour_g_minus_i(scene, f * r_e) for f in (0.05, 0.3, 1.0, 3.0)]
    assert all(a > b for a, b in itertools.pairwise(colours)), colours
    assert colours[0] - colours[-1] > 0.02


def test_quasar_lenses_render_their_point_images() -> None:
    scene = _quasar(1)
    survey = survey_profile()
    image = noiseless_image(scene, survey=survey)
    c = pixel_centres(64, 0.2)
    for pt in scene.points:
        ix, iy = int(np.argmin(np.abs(c - pt.x))), int(np.argmin(np.abs(c - pt.y)))
        local = image[1, max(iy - 1, 0) : iy + 2, max(ix - 1, 0) : ix + 2].max()
        assert local > 0.02 * pt.flux["r"]  # a PSF peak of this image's flux sits there
