"""A cutout from its class, seed and id: its own streams, every class, magnitudes and sizes."""

from __future__ import annotations

import numpy as np
import pytest

from lensflow.errors import SimulationError
from lensflow.independent.scenes import (
    CLASSES,
    draw_scene,
    make_cutout,
    object_rngs,
    scene_magnitudes,
    scene_size,
)
from lensflow.independent.seds import band_fluxes
from lensflow.surveys import njy_to_ab, survey_profile

LSST = survey_profile("lsst")


def test_each_object_has_its_own_reproducible_streams() -> None:
    a, b = object_rngs(3, 10), object_rngs(3, 10)
    assert a[0].random() == b[0].random() and a[1].random() == b[1].random()
    assert object_rngs(3, 10)[0].random() != object_rngs(3, 11)[0].random()
    assert object_rngs(3, 10)[0].random() != object_rngs(3, 10)[1].random()


@pytest.mark.parametrize("kind", CLASSES)
def test_every_class_renders_a_finite_cutout_the_same_twice(kind: str) -> None:
    scene, image = make_cutout(kind, seed=1, ident=4, survey=LSST)
    again = make_cutout(kind, seed=1, ident=4, survey=LSST)[1]
    assert image.shape == (3, 64, 64) and image.dtype == np.float32
    assert np.all(np.isfinite(image))
    np.testing.assert_array_equal(image, again)
    assert scene.kind == kind and scene.is_lens == (kind == "lens")
    assert (scene.deflector is not None) == (kind == "lens")
    assert scene_size(scene) > 0.0
    assert all(np.isfinite(m) for m in scene_magnitudes(scene, LSST).values())


def test_magnitudes_are_the_main_objects_light_only() -> None:
    scene, _ = make_cutout("elliptical", seed=2, ident=0, survey=LSST)
    total = sum(
        band_fluxes(li.sed, li.mag_ref, {"r": LSST.wavelength_nm["r"]})["r"]
        for li in scene.lights
        if li.central
    )
    assert scene_magnitudes(scene, LSST)["r"] == pytest.approx(njy_to_ab(total))
    field = [li for li in scene.lights if not li.central]
    assert field  # the faint field is drawn, and left out of the magnitudes


def test_a_lens_counts_its_magnified_arcs_in_its_magnitudes() -> None:
    scene, _ = make_cutout("lens", seed=2, ident=1, survey=LSST)
    lensed = [li for li in scene.lights if li.lensed]
    assert lensed and all(li.magnification > 1.0 for li in lensed[:1])


def test_an_unknown_class_is_refused() -> None:
    with pytest.raises(SimulationError, match="unknown check-set class 'quasar'"):
        draw_scene("quasar", np.random.default_rng(0), survey=LSST)
