"""Lens models of the rows of shared/reference tables (lens_points, point_source_images)."""

from __future__ import annotations

from typing import Any

from lensflow.simulate.lensing import LensModel, lens_model

LENS_COLUMNS = ("theta_E", "e1", "e2", "center_x", "center_y")
SHEAR_COLUMNS = ("gamma_ext1", "gamma_ext2", "ra_0", "dec_0")


def lens_of(row: Any) -> LensModel:
    """The lens model of a reference row (its model name and lens and shear columns)."""
    names = LENS_COLUMNS + SHEAR_COLUMNS
    return lens_model(str(row["model"]), **{c: float(row[c]) for c in names})
