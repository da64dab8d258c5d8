"""Point-source images against shared/reference and the SIS's known radii."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from lensflow.simulate.images import find_images
from lensflow.simulate.lensing import SIE, LensModel, lens_model
from tests.simulate.reference_lenses import lens_of


def test_point_source_images_match_reference(reference_dir: Path) -> None:
    frame = pd.read_csv(reference_dir / "point_source_images.csv")
    for _, group in frame.groupby("config_id"):
        row = group.iloc[0]
        lens = lens_of(row)
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
