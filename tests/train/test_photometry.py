"""The photometry gate: simulated catalogs behind the cuts, threshold, a tiny training run."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from lensflow.registry import PhotometryModel
from lensflow.train.config import CatalogCuts, PhotometryConfig
from lensflow.train.data import passes_cuts, simulate_catalog
from lensflow.train.photometry import threshold_for_completeness, train_photometry


@pytest.mark.parametrize(("completeness", "expected"), [(1.0, 0.5), (0.8, 0.6), (0.5, 0.7)])
def test_threshold_keeps_the_asked_completeness(completeness: float, expected: float) -> None:
    scores = np.array([0.6, 0.9, 0.5, 0.8, 0.7])
    threshold = threshold_for_completeness(scores, completeness)
    assert threshold == expected
    assert np.mean(scores >= threshold) >= completeness


def test_cuts_need_every_band_extent_and_the_r_range() -> None:
    cuts = CatalogCuts()
    good = {"g": 22.0, "r": 21.0, "i": 20.5, "z": 20.2}
    assert passes_cuts(good, True, cuts)
    assert not passes_cuts(good, False, cuts)
    assert not passes_cuts({**good, "z": float("nan")}, True, cuts)
    assert not passes_cuts({**good, "r": 22.5}, True, cuts)
    assert not passes_cuts({**good, "r": 16.0}, True, cuts)


def test_simulated_catalog_rows_pass_the_cuts_and_repeat() -> None:
    cuts = CatalogCuts()
    catalog = simulate_catalog(n_lenses=3, n_non_lenses=40, seed=5, cuts=cuts)
    assert catalog.mags.shape == (43, 4)
    assert catalog.is_lens.sum() == 3
    assert set(catalog.classes[~catalog.is_lens]) <= {
        "elliptical", "spiral", "disc_face_on", "disc_edge_on", "ring", "merger",
        "blue_neighbours", "group", "artefact",
    }  # fmt: skip
    assert np.isfinite(catalog.mags).all()
    assert catalog.errors.shape == catalog.mags.shape
    assert (np.isfinite(catalog.errors) & (catalog.errors > 0)).all()
    assert ((catalog.mags[:, 1] >= cuts.min_mag_r) & (catalog.mags[:, 1] < cuts.max_mag_r)).all()
    assert sum(catalog.drawn.values()) >= 43
    again = simulate_catalog(n_lenses=3, n_non_lenses=40, seed=5, cuts=cuts)
    np.testing.assert_array_equal(again.mags, catalog.mags)
    np.testing.assert_array_equal(again.errors, catalog.errors)


def test_a_tiny_photometry_gate_trains_and_exports(tmp_path: Path) -> None:
    config = PhotometryConfig(
        n_lenses=30,
        n_non_lenses=300,
        n_test_lenses=20,
        n_test_non_lenses=200,
        epochs=2,
        batch_size=64,
        output=tmp_path / "models",
        reports=tmp_path / "reports",
    )
    manifest = train_photometry(config)
    with manifest.open("rb") as f:
        entry = PhotometryModel.model_validate(tomllib.load(f)["photometry"])
    assert (tmp_path / "models" / entry.file).is_file()
    assert entry.features == ("mag_g", "mag_r", "mag_i", "mag_z")
    assert (entry.metrics["n_lenses"], entry.metrics["n_non_lenses"]) == (20, 200)
    assert entry.training["n_lenses"] == 30
    assert entry.metrics["completeness"] >= 0.0
    assert (tmp_path / "reports" / "photometry.png").is_file()
