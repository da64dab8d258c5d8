"""Scenes: the classes and mixes, every class renders, rendering does not hang on caches."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from lensflow.simulate import (
    CLASSES,
    LENS_PARAMS,
    NATURAL_MIX,
    NON_LENS_CLASSES,
    TRAINING_MIX,
    draw_scene,
    render_scene,
)
from lensflow.surveys import survey_profile

LSST = survey_profile("lsst")

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
        assert set(scene.mag) == set(LSST.catalog_bands)
        assert scene.size_arcsec >= 0.0
        assert (set(scene.params) == set(LENS_PARAMS)) == (kind == "lens")
        assert image.max() > 10 * LSST.sky_sigma_njy["i"], "something must be there"


def test_render_does_not_depend_on_caches() -> None:
    from lensflow.simulate.scene import unit_templates

    scene = draw_scene("lens", seed=(3, 3))
    first = render_scene(scene)
    unit_templates.cache_clear()
    again = pickle.loads(pickle.dumps(scene))
    np.testing.assert_array_equal(render_scene(again), first)
