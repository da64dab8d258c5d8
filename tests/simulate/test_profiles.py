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

from lensflow.errors import SimulationError
from lensflow.simulate import draw_scene
from lensflow.simulate.profiles import (
    LIGHT_PROFILES,
    PROFILES,
    SIE,
    ExternalShear,
    GaussianClumps,
    GaussianPSF,
    GaussianRing,
    LensModel,
    MoffatPSF,
    SersicArms,
    SersicEllipse,
    SersicLane,
    TidalArc,
    angular_diameter_distances,
    einstein_radius,
    ellipticity_to_q_phi,
    find_images,
    lens_model,
    q_phi_to_ellipticity,
    render_adaptive,
    render_midpoint,
)
from lensflow.simulate.scenes import TEMPLATE_ACCURACY

LENS_COLUMNS = ("theta_E", "e1", "e2", "center_x", "center_y")
SHEAR_COLUMNS = ("gamma_ext1", "gamma_ext2", "ra_0", "dec_0")
GRID: dict[str, Any] = {"n": 32, "pixel_scale": 0.2}


def _lens_of(row: Any) -> LensModel:
    names = LENS_COLUMNS + SHEAR_COLUMNS
    return lens_model(str(row["model"]), **{c: float(row[c]) for c in names})


# --- the reference files ----------------------------------------------------------------------


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


# --- deflection, convergence, shear, magnification --------------------------------------------


@pytest.fixture(scope="module")
def lens_points(reference_dir: Path) -> pd.DataFrame:
    """lens_points.csv with our values of every column beside the reference ones."""
    frame = pd.read_csv(reference_dir / "lens_points.csv")
    out = {k: np.empty(len(frame)) for k in ("ax", "ay", "kappa", "g1", "g2", "det", "mu")}
    for _, group in frame.groupby(["config_id", "model"]):
        lens = _lens_of(group.iloc[0])
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


# --- point-source images ----------------------------------------------------------------------


def test_point_source_images_match_reference(reference_dir: Path) -> None:
    frame = pd.read_csv(reference_dir / "point_source_images.csv")
    for _, group in frame.groupby("config_id"):
        row = group.iloc[0]
        lens = _lens_of(row)
        x, y, mu = find_images(lens, float(row.source_x), float(row.source_y))
        assert len(x) == int(row.n_images), (row.case, x, y)
        for _, image in group.iterrows():
            d = np.hypot(x - image.x_image, y - image.y_image)
            k = int(np.argmin(d))
            assert d[k] <= 1e-4, (row.case, image.image_index)
            assert abs(mu[k] - image.mu) <= 1e-3 * abs(image.mu)
            assert abs(lens.det_a(x[k], y[k]) - image.det_A) <= 1e-6 * max(1.0, abs(image.det_A))


def test_images_solve_the_lens_equation_and_sis_radii() -> None:
    lens = LensModel((SIE(1.3),))
    x, y, mu = find_images(lens, 0.3, 0.0)
    np.testing.assert_allclose(np.sort(np.hypot(x, y)), [1.0, 1.6], atol=1e-9)
    np.testing.assert_allclose(np.sort(mu), np.sort(1.0 / (1.0 - 1.3 / np.hypot(x, y))))
    quad = lens_model("SIE+SHEAR", theta_E=1.1, e1=0.1, e2=-0.05, gamma_ext1=0.03)
    x, y, _ = quad.image_positions(0.01, 0.005)
    bx, by = quad.ray_shoot(x, y)
    assert len(x) == 4
    np.testing.assert_allclose(bx, 0.01, atol=1e-10)
    np.testing.assert_allclose(by, 0.005, atol=1e-10)


def test_a_source_far_outside_the_caustics_has_one_image() -> None:
    lens = lens_model("SIE+SHEAR", theta_E=1.0, e1=0.05, gamma_ext2=0.02)
    x, _, mu = find_images(lens, 3.0, 1.0)
    assert len(x) == 1
    assert 0.0 < mu[0] < 2.0


# --- Sersic -----------------------------------------------------------------------------------


def test_sersic_matches_reference(reference_dir: Path) -> None:
    frame = pd.read_csv(reference_dir / "sersic_points.csv")
    for _, group in frame.groupby("config_id"):
        r = group.iloc[0]
        light = SersicEllipse(r.amp, r.R_sersic, r.n_sersic, r.e1, r.e2, r.center_x, r.center_y)
        ours = light.surface_brightness(group.x.to_numpy(), group.y.to_numpy())
        ref = group.surface_brightness.to_numpy()
        assert np.all(np.abs(ours - ref) <= 1e-6 * ref), r.case
        assert abs(light.total_flux() - r.total_flux) <= 1e-6 * r.total_flux
        q, phi = ellipticity_to_q_phi(r.e1, r.e2)
        assert q == pytest.approx(r.q, rel=1e-12)
        assert math.cos(2 * (phi - r.phi)) == pytest.approx(1.0, abs=1e-12)


# --- lensed images ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lensed_reference(reference_dir: Path) -> tuple[np.ndarray, list[dict[str, Any]]]:
    meta = json.loads((reference_dir / "lensed_images.json").read_text())
    assert meta["pixel_scale_arcsec"] == GRID["pixel_scale"]
    assert meta["npix"] == GRID["n"]
    return np.load(reference_dir / "lensed_images.npy"), meta["images"]


def _lensed_setup(entry: dict[str, Any]) -> tuple[LensModel, SersicEllipse]:
    s = entry["source"]
    source = SersicEllipse(
        s["amp"], s["R_sersic"], s["n_sersic"], s["e1"], s["e2"], s["center_x"], s["center_y"]
    )
    return lens_model(entry["model"], **entry["lens"]), source


def test_lensed_images_midpoint_ss40_match_every_pixel(
    lensed_reference: tuple[np.ndarray, list[dict[str, Any]]],
) -> None:
    images, entries = lensed_reference
    for entry in entries:
        lens, source = _lensed_setup(entry)
        ours = render_midpoint(source, lens=lens, supersample=40, **GRID)
        ref = images[entry["index"]]
        peak = ref.max()
        assert peak == pytest.approx(entry["peak_pixel"], rel=1e-12)
        assert np.max(np.abs(ours - ref)) <= 1e-6 * peak, entry["case"]
        assert ours.sum() == pytest.approx(entry["lensed_flux_in_image"], rel=1e-6)
        unlensed = render_midpoint(source, supersample=40, **GRID)
        assert unlensed.sum() == pytest.approx(entry["unlensed_flux_in_image"], rel=1e-6)
        assert source.total_flux() == pytest.approx(entry["unlensed_total_flux"], rel=1e-6)
        mu = ours.sum() / source.total_flux()
        assert mu == pytest.approx(entry["magnification_extended"], rel=1e-6)


def test_lensed_images_midpoint_supersampling_check(
    lensed_reference: tuple[np.ndarray, list[dict[str, Any]]],
) -> None:
    """Our midpoint rule at ss = 5, 10, 20 differs from ss = 40 as the reference's does."""
    images, entries = lensed_reference
    for entry in entries:
        lens, source = _lensed_setup(entry)
        ref = images[entry["index"]]
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
    lensed_reference: tuple[np.ndarray, list[dict[str, Any]]], dtype: type
) -> None:
    """Flux and extended magnification within 1 %, every pixel within 3 % of the peak."""
    images, entries = lensed_reference
    for entry in entries:
        lens, source = _lensed_setup(entry)
        ours = render_adaptive([source], lens=lens, dtype=dtype, **GRID)[0]
        ref = images[entry["index"]]
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
        adaptive = render_adaptive(
            lensed,
            n=64,
            pixel_scale=0.2,
            lens=scene.lens,
            dtype=np.float32,
            accuracy=TEMPLATE_ACCURACY["lensed"],
        )
        for light, image in zip(lensed, adaptive, strict=True):
            dense = render_midpoint(light, n=64, pixel_scale=0.2, supersample=20, lens=scene.lens)
            worst = max(worst, abs(float(image.sum()) / float(dense.sum()) - 1.0))
    assert worst < 0.01


@pytest.mark.parametrize("n_sersic", [0.5, 1.0, 2.0, 4.0, 6.0])
@pytest.mark.parametrize("r_sersic", [0.05, 0.3, 1.5])
def test_adaptive_unlensed_sersic_is_converged(n_sersic: float, r_sersic: float) -> None:
    light = SersicEllipse.from_flux(1.0, r_sersic, n_sersic, 0.2, -0.1, 0.03, -0.07)
    fast = render_adaptive(
        [light], n=64, pixel_scale=0.2, dtype=np.float32, accuracy=TEMPLATE_ACCURACY["unlensed"]
    )[0]
    fine = render_adaptive([light], n=64, pixel_scale=0.2, accuracy=8.0, max_supersample=96)[0]
    assert fast.sum() == pytest.approx(fine.sum(), rel=0.01)
    assert np.max(np.abs(fast - fine)) <= 0.03 * fine.max()


# --- Einstein radii ---------------------------------------------------------------------------


def test_einstein_radius_and_distances_match_reference(reference_dir: Path) -> None:
    frame = pd.read_csv(reference_dir / "einstein_radius.csv")
    for _, r in frame.iterrows():
        d_l, d_s, d_ls = angular_diameter_distances(r.z_lens, r.z_source)
        assert d_l == pytest.approx(r.D_l_Mpc, rel=1e-6)
        assert d_s == pytest.approx(r.D_s_Mpc, rel=1e-6)
        assert d_ls == pytest.approx(r.D_ls_Mpc, rel=1e-6)
        theta = einstein_radius(r.sigma_v_kms, r.z_lens, r.z_source)
        assert theta == pytest.approx(r.theta_E_arcsec, rel=1e-6), r.case


def test_distances_beyond_the_table_fall_back_to_astropy() -> None:
    d_l, d_s, _ = angular_diameter_distances(9.9, 12.0)
    assert 0 < d_s < d_l


def test_bad_redshifts_are_refused() -> None:
    with pytest.raises(SimulationError, match="z_lens < z_source"):
        einstein_radius(250.0, 1.0, 0.5)


# --- invariants -------------------------------------------------------------------------------


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


LIGHTS = [
    SersicEllipse.from_flux(3.0, 0.1, 4.0, 0.1, 0.2),
    SersicArms(SersicEllipse.from_flux(2.0, 0.8, 1.0, 0.2, 0.0), 2, 0.3, 2.5, 0.4),
    SersicLane(SersicEllipse(1.0, 1.0, 1.0, 0.5, 0.3), 0.1),
    GaussianRing(1.3, 1.5, 0.2, 0.1, -0.2, 0.1, 0.0, lopsided=0.5, angle=1.0),
    TidalArc(2.0, 2.0, 0.2, 0.5, 0.8, -0.3, 0.2),
    GaussianClumps((0.1, -0.5), (0.2, 0.3), (0.05, 0.1), (0.4, 0.6)),
    MoffatPSF(0.7, 3.5, 0.05, -0.02),
    GaussianPSF(0.8, -0.1, 0.1),
]


@pytest.mark.parametrize("light", LIGHTS, ids=lambda light: type(light).__name__)
def test_light_profiles_total_flux_is_their_integral(light: Any) -> None:
    image = render_adaptive([light], n=160, pixel_scale=0.1, accuracy=4.0)[0]
    assert image.sum() == pytest.approx(light.total_flux(), rel=3e-3)


def test_registry_names_every_profile() -> None:
    assert {"SIE", "SHEAR", "SERSIC_ELLIPSE"} <= set(PROFILES)
    assert {type(light) for light in LIGHTS} == set(LIGHT_PROFILES.values())


def test_ellipticity_round_trip_and_bad_values() -> None:
    e1, e2 = q_phi_to_ellipticity(0.4, 2.0)
    q, phi = ellipticity_to_q_phi(e1, e2)
    assert q == pytest.approx(0.4)
    assert math.cos(2 * (phi - 2.0)) == pytest.approx(1.0)
    with pytest.raises(SimulationError, match="ellipticity"):
        ellipticity_to_q_phi(0.8, 0.7)
    with pytest.raises(SimulationError, match="unknown mass profile"):
        lens_model("NFW")


@pytest.mark.parametrize("light", LIGHTS, ids=lambda light: type(light).__name__)
def test_light_extent_holds_all_but_the_fraction(light: Any) -> None:
    cx, cy, radius = light.extent(1e-3)
    image = render_adaptive([light], n=200, pixel_scale=0.1, accuracy=4.0)[0]
    c = (np.arange(200) - 99.5) * 0.1
    outside = (c[None, :] - cx) ** 2 + (c[:, None] - cy) ** 2 > radius**2
    assert image[outside].sum() <= 1.5e-3 * light.total_flux()
    assert light.extent(1e-6)[2] > radius
