"""Scenes: every class renders, lenses show lensing, photometry matches pixels, seeds decide."""

from __future__ import annotations

import math
import pickle
from dataclasses import replace

import numpy as np
import pytest

from lensflow.errors import SimulationError
from lensflow.simulate import (
    CLASSES,
    LENS_PARAMS,
    LSST_LIKE,
    NATURAL_MIX,
    NON_LENS_CLASSES,
    TRAINING_MIX,
    LensCriteria,
    Scene,
    draw_scene,
    noiseless_image,
    observe_magnitudes,
    render_scene,
    simulate_cutouts,
)
from lensflow.simulate.observe import noise_sigma
from lensflow.simulate.profiles import einstein_radius, render_midpoint
from lensflow.simulate.survey import ab_to_njy

CONFUSING = ("ring", "merger", "blue_neighbours", "disc_edge_on", "group", "artefact")


def test_classes_and_mixes() -> None:
    assert CLASSES[0] == "lens"
    assert set(CLASSES[1:]) == set(NON_LENS_CLASSES)
    assert {"spiral", "ring", "merger", "disc_edge_on", "blue_neighbours", "star", "artefact"} <= (
        set(NON_LENS_CLASSES)
    )
    for mix in (NATURAL_MIX, TRAINING_MIX):
        assert set(mix) == set(NON_LENS_CLASSES)
        assert sum(mix.values()) == pytest.approx(1.0)
    for kind in CONFUSING:
        assert TRAINING_MIX[kind] > NATURAL_MIX[kind]
    common = ("elliptical", "spiral", "disc_face_on", "star")
    assert sum(NATURAL_MIX[k] for k in common) > 0.75


@pytest.mark.parametrize("kind", CLASSES)
def test_every_class_renders_finite_float32_cutouts(kind: str) -> None:
    for seed in range(3):
        scene = draw_scene(kind, seed=(5, seed))
        image = render_scene(scene)
        assert image.dtype == np.float32
        assert image.shape == (3, 64, 64)
        assert np.all(np.isfinite(image))
        assert scene.kind == kind
        assert scene.is_lens == (kind == "lens")
        assert set(scene.mag) == set(LSST_LIKE.catalog_bands)
        assert scene.size_arcsec >= 0.0
        assert (set(scene.params) == set(LENS_PARAMS)) == (kind == "lens")
        assert image.max() > 10 * LSST_LIKE.sky_sigma_njy["i"], "something must be there"


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


def test_render_does_not_depend_on_caches() -> None:
    from lensflow.simulate import scenes

    scene = draw_scene("lens", seed=(3, 3))
    first = render_scene(scene)
    scenes._templates.cache_clear()
    again = pickle.loads(pickle.dumps(scene))
    np.testing.assert_array_equal(render_scene(again), first)


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


def _arc_snr(arcs: np.ndarray, light: np.ndarray) -> float:
    best = 0.0
    for k, band in enumerate(LSST_LIKE.bands):
        sigma = noise_sigma(
            arcs[k] + light[k], sky_sigma=LSST_LIKE.sky_sigma_njy[band], gain=LSST_LIKE.gain(band)
        )
        mask = arcs[k] > sigma
        if mask.any():
            best = max(best, arcs[k][mask].sum() / math.sqrt((sigma[mask] ** 2).sum()))
    return best


@pytest.mark.parametrize(
    "criteria",
    [
        LensCriteria(),
        LensCriteria(min_magnification=6.0, min_arc_snr=60.0, min_theta_e_over_fwhm=1.5),
    ],
)
def test_lenses_meet_their_acceptance_criteria(criteria: LensCriteria) -> None:
    for k in range(5):
        scene = draw_scene("lens", seed=(77, k), criteria=criteria)
        p = scene.params
        assert p["min_magnification"] == criteria.min_magnification
        assert p["min_arc_snr"] == criteria.min_arc_snr
        assert p["min_theta_e_over_fwhm"] == criteria.min_theta_e_over_fwhm
        assert 0.6 <= p["theta_e"] <= 3.0
        assert 1.0 <= p["z_source"] <= 3.0
        assert p["theta_e"] == pytest.approx(
            einstein_radius(p["sigma_v"], p["z_lens"], p["z_source"])
        )
        fwhm_min = min(scene.psf_fwhm(b) for b in LSST_LIKE.bands)
        assert p["theta_e"] >= criteria.min_theta_e_over_fwhm * fwhm_min
        assert p["psf_fwhm_min"] == pytest.approx(fwhm_min)
        # magnification again, by a dense midpoint rule
        lensed = [c for c in scene.components if c.lensed]
        intrinsic = sum(c.flux["r"] for c in lensed)
        magnified = sum(
            c.flux["r"]
            * render_midpoint(
                c.profile, n=64, pixel_scale=0.2, supersample=16, lens=scene.lens
            ).sum()
            / c.profile.total_flux()
            for c in lensed
        )
        assert magnified / intrinsic == pytest.approx(p["magnification"], rel=0.01)
        assert p["magnification"] >= criteria.min_magnification
        # arc signal-to-noise again, from the noiseless images of the arcs and the lens light
        arcs = noiseless_image(replace(scene, components=tuple(lensed), points=()))
        light = noiseless_image(replace(scene, components=scene.components[:1], points=()))
        assert _arc_snr(arcs, light) == pytest.approx(p["arc_snr"], rel=1e-4)
        assert p["arc_snr"] >= criteria.min_arc_snr


def test_impossible_criteria_fail_with_a_clear_error() -> None:
    with pytest.raises(SimulationError, match="no lens met"):
        draw_scene("lens", seed=1, criteria=LensCriteria(min_magnification=1e4, max_draws=3))


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
    wide = replace(LSST_LIKE, cutout_size=256)
    for k in range(3):
        scene = draw_scene(kind, seed=(8, k))
        image = noiseless_image(_catalog_light(scene), survey=wide)
        for b, band in enumerate(LSST_LIKE.bands):
            assert image[b].sum() == pytest.approx(ab_to_njy(scene.mag[band]), rel=0.02), band


def test_lens_magnitudes_include_the_magnified_source() -> None:
    scene = draw_scene("lens", seed=(8, 1))
    p = scene.params
    lens_flux = ab_to_njy(p["lens_mag_r"])
    source_flux = ab_to_njy(p["source_mag_r"]) * p["magnification"]
    assert ab_to_njy(scene.mag["r"]) == pytest.approx(lens_flux + source_flux, rel=1e-9)
    assert scene.mag["r"] < p["lens_mag_r"]


@pytest.mark.parametrize("kind", CLASSES)
def test_mag_r_fixes_the_system_magnitude(kind: str) -> None:
    scene = draw_scene(kind, seed=(4, 2), mag_r=20.5)
    assert scene.mag["r"] == pytest.approx(20.5, abs=1e-9)


def test_observed_magnitudes_follow_the_depth() -> None:
    scene = draw_scene("elliptical", seed=3, mag_r=21.0)
    rng = np.random.default_rng(0)
    draws = [observe_magnitudes(scene, rng=rng) for _ in range(200)]
    r = np.array([m["r"] for m, _ in draws])
    err = np.array([e["r"] for _, e in draws])
    assert set(draws[0][0]) == set(LSST_LIKE.catalog_bands)
    assert np.nanmean(r) == pytest.approx(21.0, abs=0.01)
    assert np.std(r) == pytest.approx(np.mean(err), rel=0.2)
    shallow = LSST_LIKE.shifted(depth_mag=-2.0)
    _, shallow_err = observe_magnitudes(scene, rng=rng, survey=shallow)
    assert shallow_err["r"] > 1.5 * np.mean(err)
    faint = draw_scene("elliptical", seed=3, mag_r=31.0)
    mags, errors = observe_magnitudes(faint, rng=rng)
    assert math.isnan(mags["r"]) and math.isnan(errors["r"])


def test_faint_sources_get_larger_errors() -> None:
    rng = np.random.default_rng(5)
    errors = []
    for mag in (19.0, 22.0, 24.0):
        scene = draw_scene("star", seed=2, mag_r=mag)
        errors.append(observe_magnitudes(scene, rng=rng)[1]["r"])
    assert errors[0] < errors[1] < errors[2]


def test_bad_requests_are_refused() -> None:
    with pytest.raises(SimulationError, match="unknown class"):
        draw_scene("quasar", seed=1)
    with pytest.raises(SimulationError, match="non-negative"):
        draw_scene("star", seed=-1)
    with pytest.raises(SimulationError, match="kinds for"):
        simulate_cutouts(["star"], np.arange(2), seed=1)
