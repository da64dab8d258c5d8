"""Simulated catalogs for the gate: morphology measured on pixels, the same whatever the number
of processes, the magnitudes unchanged by it; columns by their column-map names."""

from __future__ import annotations

import numpy as np
import pytest

from lensflow.errors import TrainingError
from lensflow.train.catalogs import Catalog, simulate_catalog
from lensflow.train.config import CatalogCuts


@pytest.fixture(scope="module")
def measured() -> Catalog:
    return simulate_catalog(
        n_lenses=4, n_non_lenses=40, seed=5, cuts=CatalogCuts(), morphology=True, workers=1
    )


def test_morphology_leaves_the_magnitudes_as_they_were(measured: Catalog) -> None:
    plain = simulate_catalog(n_lenses=4, n_non_lenses=40, seed=5, cuts=CatalogCuts())
    assert plain.psf_mags is None and plain.sizes is None and plain.extendedness is None
    np.testing.assert_array_equal(plain.mags, measured.mags)
    np.testing.assert_array_equal(plain.classes, measured.classes)
    with pytest.raises(TrainingError, match="without morphology"):
        plain.column("size_g")


def test_the_rows_morphology_is_measured_in_every_band(measured: Catalog) -> None:
    catalog = measured
    assert catalog.psf_mags is not None and catalog.sizes is not None
    assert catalog.psf_mags.shape == catalog.sizes.shape == (44, 4)
    columns = catalog.inputs(["psfmag_g", "mag_g", "size_r", "extendedness"])
    assert columns.dtype == np.float32 and columns.shape == (44, 4)
    assert np.isfinite(columns).all()
    # the cuts keep extended sources: their PSF magnitudes are fainter, their sizes > 0
    assert np.median(columns[:, 0] - columns[:, 1]) > 0.3
    assert np.median(columns[:, 2]) > 0.1 and np.mean(columns[:, 3] == 1.0) > 0.9
    lenses, sizes = catalog.is_lens, catalog.sizes
    assert np.median(sizes[lenses, 0] - sizes[lenses, 2]) > 0.1, "arcs are bluer than lenses"
    with pytest.raises(TrainingError, match="no catalog column 'size_y'"):
        catalog.column("size_y")


def test_processes_measure_the_same_rows(measured: Catalog) -> None:
    pooled = simulate_catalog(
        n_lenses=4, n_non_lenses=40, seed=5, cuts=CatalogCuts(), morphology=True, workers=2
    )
    for name in ("psf_mags", "sizes", "extendedness"):
        np.testing.assert_array_equal(getattr(pooled, name), getattr(measured, name))
