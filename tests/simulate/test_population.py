"""Populations: classic scenes pinned bit for bit, every wide class and variant drawn and
rendered, deterministically, and names checked."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from lensflow.errors import SimulationError
from lensflow.simulate import CLASSES, draw_scene, render_scene, simulate_cutouts
from lensflow.simulate.population import POPULATIONS, WIDE_DRAWERS, WIDE_VARIANTS

CLASSIC_PIN = {
    "images": "1155fe02b3c4e9d90db9e1ced1d81b56212f6cad0f971eebf3a2e17e57e973d1",
    "truth": "8a444e16cf6b56e9fc66b1189250eeab5c7341fa1d944acfe9176ef3050da2dc",
}
"""Digests of 55 classic scenes (seed 2024, ids 0-54, classes in turn) made before the wide
population existed: images rounded to 0.1 nJy, and the catalog magnitudes and params to 9
significant digits (robust to last-bit differences between CPUs' maths libraries)."""


def _digests(scenes: list, images: np.ndarray) -> dict[str, str]:
    pixels = np.round(images.astype(np.float64), 1)
    truth = [
        [
            s.kind,
            {b: float(f"{m:.9g}") for b, m in s.mag.items()},
            {k: float(f"{v:.9g}") for k, v in s.params.items()},
            float(f"{s.size_arcsec:.9g}"),
        ]
        for s in scenes
    ]
    return {
        "images": hashlib.sha256(pixels.tobytes()).hexdigest(),
        "truth": hashlib.sha256(json.dumps(truth, sort_keys=True).encode()).hexdigest(),
    }


def test_classic_scenes_are_unchanged() -> None:
    kinds = [CLASSES[k % len(CLASSES)] for k in range(55)]
    scenes, images = simulate_cutouts(kinds, np.arange(55), seed=2024)
    assert _digests(scenes, images) == CLASSIC_PIN
    assert all(s.population == "classic" and not s.psf_shapes and not s.noise for s in scenes)
    again = draw_scene(kinds[3], seed=(2024, 3), population="classic")
    assert np.array_equal(render_scene(again), images[3])


WIDE_ROWS = [(kind, v) for kind in CLASSES for v in WIDE_VARIANTS.get(kind, (None,))]


@pytest.mark.parametrize(("kind", "variant"), WIDE_ROWS)
def test_every_wide_class_and_variant_renders_finite(kind: str, variant: str | None) -> None:
    scene = draw_scene(kind, seed=(5, 2), population="wide", variant=variant)
    image = render_scene(scene)
    assert image.dtype == np.float32 and image.shape == (3, 64, 64)
    assert np.isfinite(image).all()
    assert scene.population == "wide" and scene.variant == (variant or "")
    assert set(scene.psf_shapes) == set(scene.noise) == {"g", "r", "i"}
    assert scene.is_lens == (kind == "lens")


def test_wide_scenes_are_deterministic_per_seed_and_differ_between_seeds() -> None:
    kinds = ["lens", "blue_neighbours", "spiral", "group"]
    a_scenes, a = simulate_cutouts(kinds, [0, 1, 2, 3], seed=9, population="wide")
    b_scenes, b = simulate_cutouts(kinds, [0, 1, 2, 3], seed=9, population="wide")
    _, c = simulate_cutouts(kinds, [0, 1, 2, 3], seed=10, population="wide")
    assert np.array_equal(a, b)
    assert [s.params for s in a_scenes] == [s.params for s in b_scenes]
    assert all(not np.array_equal(a[k], c[k]) for k in range(4))


def test_wide_variants_are_drawn_by_chance_when_not_asked() -> None:
    seen = {draw_scene("group", seed=(1, k), population="wide").variant for k in range(30)}
    assert seen == set(WIDE_VARIANTS["group"])


def test_wide_mag_r_fixes_the_catalogued_magnitude() -> None:
    for kind in ("elliptical", "blue_neighbours", "merger", "lens"):
        scene = draw_scene(kind, seed=(4, 4), population="wide", mag_r=20.0)
        assert scene.mag["r"] == pytest.approx(20.0, abs=1e-6)


def test_populations_and_variants_are_checked() -> None:
    assert POPULATIONS == ("classic", "wide")
    assert set(WIDE_DRAWERS) == set(CLASSES)
    with pytest.raises(SimulationError, match="unknown population 'broad'"):
        draw_scene("lens", seed=1, population="broad")
    with pytest.raises(SimulationError, match="no variant 'quasar'"):
        draw_scene("lens", seed=1, variant="quasar")
    with pytest.raises(SimulationError, match="no variant 'spiral'"):
        draw_scene("ring", seed=1, population="wide", variant="spiral")
