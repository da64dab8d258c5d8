"""The photometry gate: its threshold for a completeness, a tiny training run."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch")

from lensflow.registry import PhotometryModel
from lensflow.train.config import PhotometryConfig
from lensflow.train.photometry import threshold_for_completeness, train_photometry


@pytest.mark.parametrize(("completeness", "expected"), [(1.0, 0.5), (0.8, 0.6), (0.5, 0.7)])
def test_threshold_keeps_the_asked_completeness(completeness: float, expected: float) -> None:
    scores = np.array([0.6, 0.9, 0.5, 0.8, 0.7])
    threshold = threshold_for_completeness(scores, completeness)
    assert threshold == expected
    assert np.mean(scores >= threshold) >= completeness


def _trained(tmp_path: Path, **settings: Any) -> PhotometryModel:
    """The manifest entry of a tiny gate trained into tmp_path/models."""
    config = PhotometryConfig(output=tmp_path / "models", reports=tmp_path / "reports", **settings)
    with train_photometry(config).open("rb") as f:
        return PhotometryModel.model_validate(tomllib.load(f)["photometry"])


def test_a_tiny_photometry_gate_trains_and_exports(tmp_path: Path) -> None:
    entry = _trained(
        tmp_path,
        n_lenses=30,
        n_non_lenses=300,
        n_test_lenses=20,
        n_test_non_lenses=200,
        epochs=2,
        batch_size=64,
    )
    assert (tmp_path / "models" / entry.file).is_file()
    assert entry.features == ("mag_g", "mag_r", "mag_i", "mag_z")
    assert entry.survey == "lsst"
    assert (entry.metrics["n_lenses"], entry.metrics["n_non_lenses"]) == (20, 200)
    assert entry.training["n_lenses"] == 30
    assert entry.metrics["completeness"] >= 0.0
    assert (tmp_path / "reports" / "photometry.png").is_file()


def test_the_gate_takes_the_catalog_bands_of_its_survey(tmp_path: Path) -> None:
    entry = _trained(
        tmp_path, survey="hsc", n_lenses=10, n_non_lenses=60, n_test_lenses=10,
        n_test_non_lenses=40, epochs=1, batch_size=32,
    )  # fmt: skip
    assert entry.survey == "hsc"
    assert entry.features == ("mag_g", "mag_r", "mag_i", "mag_z", "mag_y")
    assert entry.training["architecture"] == "9-64-64-1"
    assert entry.training["inputs"].startswith("AB magnitudes g, r, i, z, y; colours g-r, r-i,")


def test_a_gate_on_morphology_records_its_columns_and_reads_them(tmp_path: Path) -> None:
    import onnxruntime as ort

    entry = _trained(
        tmp_path, features=("mag", "colour", "psf_minus_model", "size"), n_lenses=20,
        n_non_lenses=200, n_test_lenses=10, n_test_non_lenses=100, epochs=2, batch_size=64,
    )  # fmt: skip
    bands = ("g", "r", "i", "z")
    assert entry.features == (
        *(f"mag_{b}" for b in bands),
        *(f"psfmag_{b}" for b in bands),
        *(f"size_{b}" for b in bands),
    )
    assert entry.training["feature_spec"] == ["mag", "colour", "psf_minus_model", "size"]
    assert entry.training["derived_features"][-1] == "size_z"
    assert entry.training["architecture"] == "15-64-64-1"
    assert "PSF minus model magnitudes g, r, i, z" in entry.training["inputs"]
    assert entry.metrics["unusable_rows"] == {"lens": 0, "non_lens": 0}
    session = ort.InferenceSession(str(tmp_path / "models" / entry.file))
    assert session.get_inputs()[0].shape[1] == len(entry.features) == 12
    again = PhotometryModel.model_validate(entry.model_dump())
    assert again.features == entry.features
