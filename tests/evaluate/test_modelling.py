"""Modelling metrics: bias, scatter and coverage on predictions of known error, the sigma
calibration, the lenses of a labelled store, the table and the figure."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lensflow.cutouts import create_store, write_group
from lensflow.errors import EvaluationError
from lensflow.evaluate.modelling import (
    build_modelling_report,
    fit_sigma_scales,
    load_lenses,
    parameter_metrics,
    write_modelling_reports,
    write_scatter_figure,
)
from lensflow.modelling import LensPredictions


def gaussian_predictions(
    n: int, *, sigma: float, claimed: float, bias: float = 0.0, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(predicted, claimed sigma, truth) (n,): errors N(bias, sigma), sigma claimed `claimed`."""
    rng = np.random.default_rng(seed)
    truth = rng.uniform(0.6, 3.0, size=n)
    predicted = truth + bias + rng.normal(0.0, sigma, size=n)
    return predicted, np.full(n, claimed), truth


def test_honest_gaussian_errors_cover_as_nominal() -> None:
    predicted, sigma, truth = gaussian_predictions(40_000, sigma=0.1, claimed=0.1, bias=0.02)
    m = parameter_metrics("theta_E", "arcsec", predicted, sigma, truth)
    assert m.n == 40_000
    assert m.bias == pytest.approx(0.02, abs=0.003)
    assert m.scatter_mad == pytest.approx(0.1, rel=0.03)
    assert m.rms == pytest.approx(np.hypot(0.1, 0.02), rel=0.03)
    # the bias costs a little coverage: P(|N(0.2, 1)| <= z)
    assert m.coverage_68 == pytest.approx(0.670, abs=0.01)
    assert m.coverage_95 == pytest.approx(0.946, abs=0.006)
    assert m.truth_spread == pytest.approx(1.4826 * 0.6, rel=0.05)  # uniform on 2.4"


def test_claimed_errors_twice_too_small_under_cover() -> None:
    predicted, sigma, truth = gaussian_predictions(20_000, sigma=0.2, claimed=0.1)
    m = parameter_metrics("theta_E", "arcsec", predicted, sigma, truth)
    assert m.coverage_68 == pytest.approx(0.381, abs=0.015)  # P(|N(0, 1)| <= z68 / 2)
    assert m.coverage_95 == pytest.approx(0.673, abs=0.015)


def test_the_sigma_scale_is_fitted_per_parameter() -> None:
    a = gaussian_predictions(20_000, sigma=0.2, claimed=0.1, seed=1)
    b = gaussian_predictions(20_000, sigma=0.05, claimed=0.1, seed=2)
    mean = np.column_stack([a[0], b[0]])
    sigma = np.column_stack([a[1], b[1]])
    truth = np.column_stack([a[2], b[2]])
    scales = fit_sigma_scales(mean, sigma, truth)
    assert scales == pytest.approx([2.0, 0.5], rel=0.04)


def _labelled_store(folder: Path, *, null_theta: bool = False) -> tuple[Path, Path]:
    """Ten cutouts in two groups (odd ids lenses, with truth), labels beside them."""
    store = folder / "cutouts.zarr"
    create_store(
        store,
        bands=["g", "r", "i"],
        pixel_scale_arcsec=0.2,
        psf_fwhm_arcsec={"g": 0.85, "r": 0.75, "i": 0.7},
        cutout_size=8,
    )
    ids = np.arange(10, dtype=np.int64) + 100
    images = np.arange(10, dtype=np.float32)[:, None, None, None] * np.ones(
        (1, 3, 8, 8), np.float32
    )
    write_group(store, "b", ids=ids[5:], images=images[5:])
    write_group(store, "a", ids=ids[:5], images=images[:5])
    is_lens = ids % 2 == 1
    theta = [float(i) / 100 if lens else None for i, lens in zip(ids, is_lens, strict=True)]
    if null_theta:
        theta[3] = None
    labels = folder / "labels.parquet"
    table = pa.table(
        {
            "id": pa.array(ids[::-1], pa.int64()),
            "is_lens": is_lens[::-1],
            "theta_e": pa.array(theta[::-1], pa.float64()),
        }
    )
    pq.write_table(table, labels)
    return store, labels


def test_the_lenses_of_a_store_come_with_their_truth(tmp_path: Path) -> None:
    store, labels = _labelled_store(tmp_path)
    lenses = load_lenses(store, labels, columns=["theta_e"])
    assert lenses.ids.tolist() == [101, 103, 105, 107, 109]
    assert lenses.truth[:, 0].tolist() == [1.01, 1.03, 1.05, 1.07, 1.09]
    assert lenses.images[:, 0, 0, 0].tolist() == [1.0, 3.0, 5.0, 7.0, 9.0]


def test_a_missing_or_null_truth_is_refused(tmp_path: Path) -> None:
    store, labels = _labelled_store(tmp_path)
    with pytest.raises(EvaluationError, match="no truth columns"):
        load_lenses(store, labels, columns=["theta_e", "lens_e1"])
    store, labels = _labelled_store(tmp_path / "null", null_theta=True)
    with pytest.raises(EvaluationError, match="lack a finite 'theta_e'"):
        load_lenses(store, labels, columns=["theta_e"])


def test_the_table_json_and_figure_are_written(tmp_path: Path) -> None:
    predicted, sigma, truth = gaussian_predictions(500, sigma=0.1, claimed=0.1)
    other = gaussian_predictions(500, sigma=0.02, claimed=0.02, seed=5)
    predictions = LensPredictions(
        names=("theta_E", "e1"),
        mean=np.column_stack([predicted, other[0]]),
        aleatoric=np.column_stack([sigma, other[1]]) ** 2,
        epistemic=np.zeros((500, 2)),
        sigma=np.column_stack([sigma, other[1]]),
    )
    truth2 = np.column_stack([truth, other[2]])
    report = build_modelling_report(
        "test", predictions, truth2, units=["arcsec", ""], spec={"n_lenses": 500, "seed": 3}
    )
    text = report.markdown()
    assert text.startswith("test: 500 lenses (n_lenses 500, seed 3)")
    assert "| theta_E | arcsec |" in text and "| e1 | - |" in text
    md, js = write_modelling_reports([report], tmp_path)
    assert md.read_text() == text
    parsed = json.loads(js.read_text())
    assert parsed["test"]["parameters"]["e1"]["n"] == 500
    png = write_scatter_figure(predictions, truth2, tmp_path / "scatter.png", title="test")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
