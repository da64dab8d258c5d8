"""Lens physics against shared/reference (every row, the README's tolerances) and invariants."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from lensflow.simulate.geometry import q_phi_to_ellipticity
from lensflow.simulate.lensing import SIE, ExternalShear, LensModel, lens_model
from lensflow.simulate.render import render_adaptive, render_midpoint
from lensflow.simulate.sersic import SersicEllipse
from tests.simulate.reference_lenses import lens_of

# --- the reference files -------------------------------------------------------------------------


def test_every_reference_file_is_listed_with_its_hash(
    reference_dir: Path, reference_manifest: dict[str, Any]
) -> None:
    data_files = sorted(
        p.name for p in reference_dir.iterdir() if p.name not in ("README.md", "manifest.json")
    )
    assert sorted(reference_manifest["sha256"]) == data_files
    for name, digest in reference_manifest["sha256"].items():
        assert hashlib.sha256((reference_dir / name).read_bytes()).hexdigest() == digest, name


def test_reference_row_counts(reference_dir: Path, reference_manifest: dict[str, Any]) -> None:
    rows = reference_manifest["rows"]
    for name in ("lens_points", "point_source_images", "sersic_points", "einstein_radius"):
        assert len(pd.read_csv(reference_dir / f"{name}.csv")) == rows[name]
    meta = json.loads((reference_dir / "lensed_images.json").read_text())
    assert np.load(reference_dir / "lensed_images.npy").shape == (rows["lensed_images"], 32, 32)
    assert len(meta["images"]) == rows["lensed_images"]
    assert len(pd.read_csv(reference_dir / "lensed_images_flux.csv")) == rows["lensed_images"]


# --- deflection, convergence, shear, magnification -----------------------------------------------


@pytest.fixture(scope="module")
def lens_points(reference_dir: Path) -> pd.DataFrame:
    """lens_points.csv with our values of every column beside the reference ones."""
    frame = pd.read_csv(reference_dir / "lens_points.csv")
    out = {k: np.empty(len(frame)) for k in ("ax", "ay", "kappa", "g1", "g2", "det", "mu")}
    for _, group in frame.groupby(["config_id", "model"]):
        lens = lens_of(group.iloc[0])
        idx = group.index.to_numpy()
        x, y = group["x"].to_numpy(), group["y"].to_numpy()
        out["ax"][idx], out["ay"][idx] = lens.deflection(x, y)
        out["kappa"][idx] = lens.convergence(x, y)
        out["g1"][idx], out["g2"][idx] = lens.shear(x, y)
        out["det"][idx] = lens.det_a(x, y)
        out["mu"][idx] = lens.magnification(x, y)
    for key, values in out.items():
        frame[f"ours_{key}"] = values
    return frame


def test_deflection_matches_reference(lens_points: pd.DataFrame) -> None:
    f = lens_points
    err = np.hypot(f.ours_ax - f.alpha_x, f.ours_ay - f.alpha_y)
    assert np.all(err <= 1e-6 * np.hypot(f.alpha_x, f.alpha_y))


def test_convergence_matches_reference(lens_points: pd.DataFrame) -> None:
    f = lens_points
    assert np.all(np.abs(f.ours_kappa - f.kappa) <= 1e-6 * np.abs(f.kappa))


def test_shear_matches_reference(lens_points: pd.DataFrame) -> None:
    f = lens_points
    err = np.hypot(f.ours_g1 - f.gamma1, f.ours_g2 - f.gamma2)
    assert np.all(err <= 1e-6 * f.kappa)


def test_det_a_matches_reference(lens_points: pd.DataFrame) -> None:
    f = lens_points
    assert np.all(np.abs(f.ours_det - f.det_A) <= 1e-6 * np.maximum(1.0, np.abs(f.det_A)))


def test_magnification_matches_reference(lens_points: pd.DataFrame) -> None:
    f = lens_points[np.abs(lens_points.mu) < 100]
    assert len(f) > 0.8 * len(lens_points)
    assert np.all(np.abs(f.ours_mu - f.mu) <= 1e-5 * np.abs(f.mu))


def test_zero_shear_rows_equal_the_sie_rows(lens_points: pd.DataFrame) -> None:
    f = lens_points[lens_points.case == "edge_zero_shear"]
    sie, both = f[f.model == "SIE"], f[f.model == "SIE+SHEAR"]
    assert len(sie) == len(both) > 0
    np.testing.assert_allclose(both.ours_ax.to_numpy(), sie.ours_ax.to_numpy(), rtol=1e-14)


# --- invariants ----------------------------------------------------------------------------------


LENSES = [
    lens_model("SIE", theta_E=1.2, e1=0.1, e2=-0.2, center_x=0.1, center_y=-0.05),
    lens_model("SIE", theta_E=0.8),
    lens_model("SIE", theta_E=1.0, e1=0.0, e2=1e-7),
    lens_model("SIE", theta_E=2.0, e1=0.55, e2=0.3),
    lens_model(
        "SIE+SHEAR",
        theta_E=1.5,
        e1=-0.05,
        e2=0.1,
        gamma_ext1=0.04,
        gamma_ext2=-0.07,
        ra_0=0.3,
        dec_0=-0.2,
    ),
]


def _points(rng: np.random.Generator, lens: LensModel) -> tuple[np.ndarray, np.ndarray]:
    r = rng.uniform(0.3, 3.0, 200)
    t = rng.uniform(0, 2 * np.pi, 200)
    cx, cy = lens.center()
    return cx + r * np.cos(t), cy + r * np.sin(t)


@pytest.mark.parametrize("lens", LENSES)
def test_deflection_is_the_gradient_of_the_potential(lens: LensModel) -> None:
    x, y = _points(np.random.default_rng(1), lens)
    h = 1e-5
    gx = (lens.potential(x + h, y) - lens.potential(x - h, y)) / (2 * h)
    gy = (lens.potential(x, y + h) - lens.potential(x, y - h)) / (2 * h)
    ax, ay = lens.deflection(x, y)
    assert np.all(np.hypot(gx - ax, gy - ay) <= 1e-6 * np.hypot(ax, ay) + 1e-9)


@pytest.mark.parametrize("lens", LENSES)
def test_hessian_is_the_jacobian_of_the_deflection(lens: LensModel) -> None:
    x, y = _points(np.random.default_rng(2), lens)
    h = 1e-6
    axp, ayp = lens.deflection(x + h, y)
    axm, aym = lens.deflection(x - h, y)
    bxp, byp = lens.deflection(x, y + h)
    bxm, bym = lens.deflection(x, y - h)
    fxx, fxy, fyy = lens.hessian(x, y)
    np.testing.assert_allclose((axp - axm) / (2 * h), fxx, atol=1e-6)
    np.testing.assert_allclose((byp - bym) / (2 * h), fyy, atol=1e-6)
    np.testing.assert_allclose((ayp - aym) / (2 * h), fxy, atol=1e-6)
    np.testing.assert_allclose((bxp - bxm) / (2 * h), fxy, atol=1e-6)


def test_sie_tends_to_the_sis() -> None:
    x, y = np.array([0.7, -1.3, 0.2]), np.array([0.4, 0.9, -2.0])
    sis = SIE(1.1).deflection(x, y)
    for e in (1e-12, 1e-9, 1e-6):
        almost = SIE(1.1, e1=e, e2=0.0).deflection(x, y)
        np.testing.assert_allclose(almost, sis, rtol=10 * e + 1e-13)


def test_mean_convergence_inside_the_critical_ellipse_is_one() -> None:
    lens = SIE(1.3, *q_phi_to_ellipticity(0.6, 0.4))
    c = np.linspace(-2.0, 2.0, 1600)
    gx, gy = np.meshgrid(c, c)
    inside = lens.convergence(gx, gy) >= 0.5
    area = inside.sum() * (c[1] - c[0]) ** 2
    assert area == pytest.approx(math.pi * 1.3**2, rel=5e-3)
    assert lens.convergence(gx, gy)[inside].mean() == pytest.approx(1.0, rel=5e-3)


def test_no_lens_means_magnification_one_and_flux_conserved() -> None:
    null = LensModel((ExternalShear(0.0, 0.0, 0.3, -0.1), SIE(0.0)))
    x, y = np.random.default_rng(3).uniform(-3, 3, (2, 50))
    np.testing.assert_array_equal(null.magnification(x, y), 1.0)
    np.testing.assert_array_equal(null.ray_shoot(x, y), (x, y))
    source = SersicEllipse.from_flux(7.0, 0.4, 1.5, 0.1, 0.05, 0.2, -0.1)
    lensed = render_adaptive([source], n=64, pixel_scale=0.2, lens=null)[0]
    plain = render_adaptive([source], n=64, pixel_scale=0.2)[0]
    np.testing.assert_allclose(lensed, plain, rtol=0, atol=0.01 * plain.max())
    assert plain.sum() == pytest.approx(7.0, rel=2e-3)
    assert lensed.sum() == pytest.approx(7.0, rel=5e-3)


def test_lensing_conserves_surface_brightness() -> None:
    lens = LENSES[4]
    source = SersicEllipse(2.0, 0.3, 1.2, 0.1, 0.0, 0.05, 0.02)
    x, y = np.random.default_rng(4).uniform(-2, 2, (2, 20))
    bx, by = lens.ray_shoot(x, y)
    image = render_midpoint(
        lambda u, v: source.surface_brightness(*lens.ray_shoot(u, v)),
        n=8,
        pixel_scale=0.2,
        supersample=1,
    )
    direct = render_midpoint(source, n=8, pixel_scale=0.2, supersample=1, lens=lens)
    np.testing.assert_allclose(image, direct)
    np.testing.assert_allclose(
        source.surface_brightness(bx, by),
        source.surface_brightness(x - lens.deflection(x, y)[0], y - lens.deflection(x, y)[1]),
    )
