"""Populations: classic scenes pinned bit for bit, every wide class and variant drawn and
rendered, deterministically, and names checked."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from lensflow.errors import SimulationError
from lensflow.simulate import CLASSES, draw_scene, render_scene, simulate_cutouts
from lensflow.simulate.population import POPULATIONS, WIDE_DRAWERS, WIDE_VARIANTS

CLASSIC_IMAGES = "1155fe02b3c4e9d90db9e1ced1d81b56212f6cad0f971eebf3a2e17e57e973d1"
"""Digest of 55 classic scenes' images (seed 2024, ids 0-54, classes in turn), rounded to
0.1 nJy, made before the wide population existed."""

CLASSIC_TRUTH = Path(__file__).parent / "data" / "classic_truth.json"
"""The same scenes' catalog magnitudes and parameters. Compared to a relative 1e-6, not by
digest: some (arc_snr, magnification) are sums over float32 pixels, whose last digits depend
on the CPU's vector width."""


def _truth(scenes: list) -> list[dict]:
    return [
        {"kind": s.kind, "mag": dict(s.mag), "params": dict(s.params), "size_arcsec": s.size_arcsec}
        for s in scenes
    ]


def _assert_close(got: object, want: object, where: str = "truth") -> None:
    if isinstance(want, dict):
        assert isinstance(got, dict) and sorted(got) == sorted(want), where
        for key in want:
            _assert_close(got[key], want[key], f"{where}.{key}")
    elif isinstance(want, str):
        assert got == want, where
    else:
        assert got == pytest.approx(want, rel=1e-6, abs=1e-12), where


def test_classic_scenes_are_unchanged() -> None:
    kinds = [CLASSES[k % len(CLASSES)] for k in range(55)]
    scenes, images = simulate_cutouts(kinds, np.arange(55), seed=2024)
    pixels = np.round(images.astype(np.float64), 1)
    assert hashlib.sha256(pixels.tobytes()).hexdigest() == CLASSIC_IMAGES
    want = json.loads(CLASSIC_TRUTH.read_text())
    assert len(want) == len(scenes)
    for k, (got, wanted) in enumerate(zip(_truth(scenes), want, strict=True)):
        _assert_close(got, wanted, f"scene {k}")
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
