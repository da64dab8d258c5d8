"""Lensed sources: quasar images from lenstronomy's solver against the reference, clumps and
shapelets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lensflow.independent.galaxies import star_forming_galaxy
from lensflow.independent.population import Deflector
from lensflow.independent.render import surface_brightness, unit_flux
from lensflow.independent.sources import (
    SOURCES,
    clumps,
    image_positions,
    magnifications,
    shapelets,
)


def test_quasar_images_are_the_reference_images(reference_dir: Path) -> None:
    """Image positions (1e-4") and magnifications (1e-3) of the reference SIE + shear lenses;
    the reference's shear origin is moved to the lens centre by shifting the source."""
    table = pd.read_csv(reference_dir / "point_source_images.csv")
    for _, rows in table.groupby("config_id"):
        r = rows.iloc[0]
        deflector = Deflector(
            r.theta_E, 2.0, r.e1, r.e2, r.center_x, r.center_y, r.gamma_ext1, r.gamma_ext2
        )
        dx, dy = r.center_x - r.ra_0, r.center_y - r.dec_0
        sx = r.source_x + r.gamma_ext1 * dx + r.gamma_ext2 * dy
        sy = r.source_y + r.gamma_ext2 * dx - r.gamma_ext1 * dy
        xs, ys = image_positions(deflector, sx, sy)
        assert xs.size == r.n_images, r.case
        mus = magnifications(deflector, xs, ys)
        for ref in rows.itertuples(index=False):
            d = np.hypot(xs - ref.x_image, ys - ref.y_image)
            assert d.min() < 1e-4, r.case
            assert mus[d.argmin()] == pytest.approx(ref.mu, rel=1e-3)


def test_clumps_hold_their_share_of_the_light() -> None:
    rng = np.random.default_rng(0)
    base = star_forming_galaxy(rng, z=2.0, mag_ref=24.0, center=(0.1, 0.0), lensed=True)
    for _ in range(20):
        knots = clumps(rng, base, SOURCES)
        share = sum(10 ** (-0.4 * (k.mag_ref - base.mag_ref)) for k in knots)
        assert SOURCES.clump_share[0] - 1e-9 <= share <= SOURCES.clump_share[1] + 1e-9
        assert all(k.lensed and k.models == ("GAUSSIAN",) for k in knots)


def test_shapelets_make_an_irregular_source_that_stays_positive() -> None:
    rng = np.random.default_rng(1)
    base = star_forming_galaxy(rng, z=2.0, mag_ref=24.0, center=(0.0, 0.0), lensed=True)
    irregular = shapelets(rng, base, SOURCES)
    assert irregular.models == ("SERSIC_ELLIPSE", "SHAPELETS")
    axis = np.linspace(-1.0, 1.0, 81)
    xx, yy = np.meshgrid(axis, axis)
    values = surface_brightness(irregular, xx.ravel(), yy.ravel())
    smooth = surface_brightness(base, xx.ravel(), yy.ravel())
    assert values.min() >= 0.0
    assert np.abs(values - smooth).max() > 0.2 * smooth.max()
    assert unit_flux(irregular) > 0.0
