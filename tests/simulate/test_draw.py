"""Drawing scenes: seeds decide, chunking does not matter, catalog magnitudes match the pixels."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from lensflow.errors import SimulationError
from lensflow.simulate import (
    CLASSES,
    LSST_LIKE,
    Scene,
    draw_scene,
    noiseless_image,
    observe_magnitudes,
    render_scene,
    simulate_cutouts,
)
from lensflow.simulate.survey import ab_to_njy


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
    wide = replace(LSST_LIKE, cutout_size=256)
    for k in range(3):
        scene = draw_scene(kind, seed=(8, k))
        image = noiseless_image(_catalog_light(scene), survey=wide)
        for b, band in enumerate(LSST_LIKE.bands):
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
