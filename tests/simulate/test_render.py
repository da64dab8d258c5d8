"""Pixel integration against the reference's lensed images, and the adaptive renderer's accuracy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import pytest

from lensflow.simulate import draw_scene
from lensflow.simulate.lensing import LensModel, lens_model
from lensflow.simulate.render import render_adaptive, render_midpoint
from lensflow.simulate.scene import template_render
from lensflow.simulate.sersic import SersicEllipse

GRID: dict[str, Any] = {"n": 32, "pixel_scale": 0.2}


@pytest.fixture(scope="module")
def lensed_reference(reference_dir: Path) -> tuple[np.ndarray, list[dict[str, Any]]]:
    meta = json.loads((reference_dir / "lensed_images.json").read_text())
    assert meta["pixel_scale_arcsec"] == GRID["pixel_scale"]
    assert meta["npix"] == GRID["n"]
    return np.load(reference_dir / "lensed_images.npy"), meta["images"]


class LensedCase(NamedTuple):
    """A reference lensed image: its entry, lens, Sersic source and image."""

    entry: dict[str, Any]
    lens: LensModel
    source: SersicEllipse
    ref: np.ndarray


@pytest.fixture(scope="module")
def lensed_cases(lensed_reference: tuple[np.ndarray, list[dict[str, Any]]]) -> list[LensedCase]:
    images, entries = lensed_reference
    cases = []
    for entry in entries:
        s = entry["source"]
        source = SersicEllipse(
            s["amp"], s["R_sersic"], s["n_sersic"], s["e1"], s["e2"], s["center_x"], s["center_y"]
        )
        lens = lens_model(entry["model"], **entry["lens"])
        cases.append(LensedCase(entry, lens, source, images[entry["index"]]))
    return cases


def test_lensed_images_midpoint_ss40_match_every_pixel(lensed_cases: list[LensedCase]) -> None:
    for entry, lens, source, ref in lensed_cases:
        ours = render_midpoint(source, lens=lens, supersample=40, **GRID)
        peak = ref.max()
        assert peak == pytest.approx(entry["peak_pixel"], rel=1e-12)
        assert np.max(np.abs(ours - ref)) <= 1e-6 * peak, entry["case"]
        assert ours.sum() == pytest.approx(entry["lensed_flux_in_image"], rel=1e-6)
        unlensed = render_midpoint(source, supersample=40, **GRID)
        assert unlensed.sum() == pytest.approx(entry["unlensed_flux_in_image"], rel=1e-6)
        assert source.total_flux() == pytest.approx(entry["unlensed_total_flux"], rel=1e-6)
        mu = ours.sum() / source.total_flux()
        assert mu == pytest.approx(entry["magnification_extended"], rel=1e-6)


def test_lensed_images_midpoint_supersampling_check(lensed_cases: list[LensedCase]) -> None:
    """Our midpoint rule at ss = 5, 10, 20 differs from ss = 40 as the reference's does."""
    for entry, lens, source, ref in lensed_cases:
        for ss, check in entry["supersampling_check"]["vs_factor"].items():
            ours = render_midpoint(source, lens=lens, supersample=int(ss), **GRID)
            assert ours.sum() / ref.sum() - 1 == pytest.approx(check["flux_rel_diff"], abs=1e-6)
            worst = np.max(np.abs(ours - ref)) / ref.max()
            assert worst == pytest.approx(check["max_abs_pixel_diff_over_peak"], abs=1e-6)


def test_lensed_flux_table_matches_the_json(
    reference_dir: Path, lensed_reference: tuple[np.ndarray, list[dict[str, Any]]]
) -> None:
    table = pd.read_csv(reference_dir / "lensed_images_flux.csv")
    _, entries = lensed_reference
    for entry in entries:
        row = table[table["index"] == entry["index"]].iloc[0]
        for key in (
            "lensed_flux_in_image",
            "unlensed_flux_in_image",
            "unlensed_total_flux",
            "magnification_extended",
        ):
            assert row[key] == pytest.approx(entry[key], rel=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_adaptive_renderer_meets_the_converged_integration_tolerances(
    lensed_cases: list[LensedCase], dtype: type
) -> None:
    """Flux and extended magnification within 1 %, every pixel within 3 % of the peak."""
    for entry, lens, source, ref in lensed_cases:
        ours = render_adaptive([source], lens=lens, dtype=dtype, **GRID)[0]
        assert ours.sum() == pytest.approx(entry["lensed_flux_in_image"], rel=0.01)
        mu = ours.sum() / source.total_flux()
        assert mu == pytest.approx(entry["magnification_extended"], rel=0.01)
        assert np.max(np.abs(ours - ref)) <= 0.03 * ref.max(), entry["case"]


def test_adaptive_lensed_flux_within_one_percent_of_dense_ss20() -> None:
    """The simulator's own lenses (Sersic sources and clumps): adaptive vs a dense ss = 20."""
    worst = 0.0
    for k in range(8):
        scene = draw_scene("lens", seed=(2024, k))
        lensed = tuple(c.profile for c in scene.components if c.lensed)
        adaptive = template_render(lensed, n=64, pixel_scale=0.2, lens=scene.lens)
        for light, image in zip(lensed, adaptive, strict=True):
            dense = render_midpoint(light, n=64, pixel_scale=0.2, supersample=20, lens=scene.lens)
            worst = max(worst, abs(float(image.sum()) / float(dense.sum()) - 1.0))
    assert worst < 0.01


@pytest.mark.parametrize("n_sersic", [0.5, 1.0, 2.0, 4.0, 6.0])
@pytest.mark.parametrize("r_sersic", [0.05, 0.3, 1.5])
def test_adaptive_unlensed_sersic_is_converged(n_sersic: float, r_sersic: float) -> None:
    light = SersicEllipse.from_flux(1.0, r_sersic, n_sersic, 0.2, -0.1, 0.03, -0.07)
    fast = template_render([light], n=64, pixel_scale=0.2)[0]
    fine = render_adaptive([light], n=64, pixel_scale=0.2, accuracy=8.0, max_supersample=96)[0]
    assert fast.sum() == pytest.approx(fine.sum(), rel=0.01)
    assert np.max(np.abs(fast - fine)) <= 0.03 * fine.max()
