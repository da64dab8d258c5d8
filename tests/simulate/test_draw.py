"""Drawing scenes: seeds decide, chunking does not matter, catalog magnitudes match the pixels."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace

import numpy as np
import pytest

from lensflow.errors import SimulationError
from lensflow.simulate import (
    CLASSES,
    Scene,
    draw_scene,
    noiseless_image,
    observe_magnitudes,
    render_scene,
    simulate_cutouts,
)
from lensflow.simulate.colours import in_bands
from lensflow.simulate.observe import StarHalo
from lensflow.simulate.scene import Component, PointSource
from lensflow.surveys import ab_to_njy, survey_profile

LSST = survey_profile("lsst")


def test_stars_are_point_like_and_galaxies_extended() -> None:
    star = draw_scene("star", seed=1)
    assert not star.extended
    assert star.size_arcsec == 0.0
    for kind in ("lens", "elliptical", "spiral", "ring", "merger"):
        scene = draw_scene(kind, seed=1)
        assert scene.extended
        assert scene.size_arcsec > 0.0


def test_same_seed_same_pixels_and_catalog() -> None:
    for kind in CLASSES:
        a = draw_scene(kind, seed=(9, 4))
        b = draw_scene(kind, seed=[9, 4])
        assert a == b
        np.testing.assert_array_equal(render_scene(a), render_scene(b))
        other = draw_scene(kind, seed=(9, 5))
        assert not np.array_equal(render_scene(a), render_scene(other))
        ra, ea = observe_magnitudes(a, rng=np.random.default_rng(1))
        rb, eb = observe_magnitudes(b, rng=np.random.default_rng(1))
        assert ra.keys() == rb.keys()
        np.testing.assert_array_equal(list(ra.values()), list(rb.values()))
        np.testing.assert_array_equal(list(ea.values()), list(eb.values()))


def test_chunking_does_not_change_the_cutouts() -> None:
    kinds = ["lens", "spiral", "star", "ring", "artefact", "merger", "lens", "group"]
    ids = np.arange(100, 108)
    scenes, images = simulate_cutouts(kinds, ids, seed=42)
    assert images.shape == (8, 3, 64, 64)
    assert images.dtype == np.float32
    parts = [simulate_cutouts(kinds[a:b], ids[a:b], seed=42) for a, b in ((0, 3), (3, 8))]
    np.testing.assert_array_equal(np.concatenate([p[1] for p in parts]), images)
    assert [s for p in parts for s in p[0]] == scenes
    order = np.arange(8)[::-1]
    rev_scenes, rev_images = simulate_cutouts([kinds[i] for i in order], ids[order], seed=42)
    np.testing.assert_array_equal(rev_images[::-1], images)
    assert rev_scenes[::-1] == scenes


def _catalog_light(scene: Scene) -> Scene:
    """The scene without what the catalog does not count (field galaxies, companions)."""
    return replace(
        scene,
        components=tuple(c for c in scene.components if c.in_catalog),
        points=tuple(p for p in scene.points if p.in_catalog),
        artefacts=(),
    )


@pytest.mark.parametrize("kind", ["lens", "elliptical", "disc_face_on", "star", "ring", "merger"])
def test_catalog_magnitudes_match_the_pixels(kind: str) -> None:
    """The noiseless light of what the catalog counts adds up to its magnitudes (on a cutout
    wide enough to hold the galaxies' wings)."""
    wide = replace(LSST, cutout_size=256)
    for k in range(3):
        scene = draw_scene(kind, seed=(8, k))
        image = noiseless_image(_catalog_light(scene), survey=wide)
        for b, band in enumerate(LSST.bands):
            assert image[b].sum() == pytest.approx(ab_to_njy(scene.mag[band]), rel=0.02), band


@pytest.mark.parametrize("kind", CLASSES)
def test_mag_r_fixes_the_system_magnitude(kind: str) -> None:
    scene = draw_scene(kind, seed=(4, 2), mag_r=20.5)
    assert scene.mag["r"] == pytest.approx(20.5, abs=1e-9)


def test_bad_requests_are_refused() -> None:
    with pytest.raises(SimulationError, match="unknown class"):
        draw_scene("quasar", seed=1)
    with pytest.raises(SimulationError, match="non-negative"):
        draw_scene("star", seed=-1)
    with pytest.raises(SimulationError, match="kinds for"):
        simulate_cutouts(["star"], np.arange(2), seed=1)


HSC = survey_profile("hsc")


def _log_wavelength_law(flux: Mapping[str, float], lo: str, hi: str, band: str) -> float:
    """The flux in band from the anchors lo and hi: AB magnitude linear in log(wavelength)."""
    lam = HSC.wavelength_nm
    t = math.log(lam[band] / lam[lo]) / math.log(lam[hi] / lam[lo])
    return math.copysign(abs(flux[lo]) ** (1 - t) * abs(flux[hi]) ** t, flux[lo])


@pytest.mark.parametrize("kind", ["lens", "spiral", "disc_edge_on", "star", "artefact"])
def test_a_y_band_flux_follows_the_log_wavelength_law(kind: str) -> None:
    """y lies beyond z: its flux continues the power law through i and z, for every light."""
    for k in range(4):
        scene = draw_scene(kind, seed=(12, k), survey=HSC)
        halos = [a for a in scene.artefacts if isinstance(a, StarHalo)]
        lights: list[Component | PointSource | StarHalo] = [
            *scene.components,
            *scene.points,
            *halos,
        ]
        for light in lights:
            assert set(light.flux) == {"g", "r", "i", "z", "y"}
            assert light.flux["y"] == pytest.approx(
                _log_wavelength_law(light.flux, "i", "z", "y"), rel=1e-9
            )
        assert set(scene.mag) == set(HSC.catalog_bands)
        assert render_scene(scene, survey=HSC).shape == (5, 64, 64)


def test_a_band_between_or_below_the_anchors_interpolates_or_extrapolates() -> None:
    flux = {"g": 100.0, "r": 200.0, "i": 300.0, "z": 350.0}
    lam = HSC.wavelength_nm
    narrow = replace(
        HSC,
        catalog_bands=(*HSC.catalog_bands, "N708", "u"),
        psf_fwhm_arcsec={**HSC.psf_fwhm_arcsec, "N708": 0.7, "u": 0.9},
        sky_sigma_njy={**HSC.sky_sigma_njy, "N708": 5.0, "u": 2.0},
        sky_mag_arcsec2={**HSC.sky_mag_arcsec2, "N708": 20.8, "u": 23.0},
        wavelength_nm={**lam, "N708": 708.0, "u": 360.0},
    )
    full = in_bands(flux, narrow)
    t = math.log(708.0 / lam["r"]) / math.log(lam["i"] / lam["r"])
    assert full["N708"] == pytest.approx(200.0 ** (1 - t) * 300.0**t)
    t = math.log(360.0 / lam["g"]) / math.log(lam["r"] / lam["g"])
    assert full["u"] == pytest.approx(100.0 ** (1 - t) * 200.0**t) and full["u"] < 100.0
    lane = in_bands({b: -v for b, v in flux.items()}, narrow)
    assert lane["N708"] == pytest.approx(-full["N708"]), "an absorbing lane keeps its sign"
    assert in_bands(flux | {"z": -1.0}, HSC)["y"] == 0.0
    assert in_bands(full, narrow) is full


def test_a_profile_without_r_is_refused() -> None:
    no_r = replace(
        HSC,
        bands=("g", "i", "z"),
        catalog_bands=("g", "i", "z", "y"),
    )
    with pytest.raises(SimulationError, match="no r band"):
        draw_scene("elliptical", seed=1, survey=no_r)
    with pytest.raises(SimulationError, match="no r band"):
        simulate_cutouts(["star"], [1], seed=1, survey=no_r)
