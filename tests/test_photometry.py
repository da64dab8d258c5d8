"""The photometry gate: the shipped MLP on catalog columns, NaN where a feature is unusable."""

from __future__ import annotations

import numpy as np

from lensflow.photometry import photometry_features, score_photometry
from lensflow.registry import ModelManifest
from lensflow.testing import onnx_reference


def _magnitudes(n: int, seed: int) -> np.ndarray:
    """g, r, i, z AB magnitudes of galaxy-like colours, float32 (n, 4)."""
    rng = np.random.default_rng(seed)
    r = rng.uniform(17.0, 24.0, n)
    colours = rng.normal([0.8, 0.0, -0.4, -0.6], 0.3, size=(n, 4))
    return (r[:, None] + colours).astype(np.float32)


def _rows(manifest: ModelManifest, n: int, seed: int) -> np.ndarray:
    """Galaxy-like catalog rows float32 (n, features) in the gate's feature order: magnitudes,
    PSF magnitudes fainter by 0-1.5 mag, sizes 0-1.5 arcsec, extended."""
    mags = dict(zip(("g", "r", "i", "z"), _magnitudes(n, seed).T, strict=True))
    rng = np.random.default_rng(seed + 1)
    columns = {}
    for name in manifest.photometry.features:
        key, _, band = name.partition("_")
        if key == "mag":
            columns[name] = mags[band]
        elif key == "psfmag":
            columns[name] = mags[band] + rng.uniform(0.0, 1.5, n)
        elif key == "size":
            columns[name] = rng.uniform(0.0, 1.5, n)
        else:
            columns[name] = np.ones(n)
    return photometry_features(columns, manifest.photometry.features)


def test_features_follow_the_models_order() -> None:
    columns = {
        "mag_r": np.array([20.0, 21.0]),
        "mag_z": np.array([19.0, 20.5]),
        "mag_g": np.array([21.0, 22.0]),
        "flags": np.array([1, 0]),
    }
    features = photometry_features(columns, ("mag_z", "mag_g", "mag_r"))
    assert features.dtype == np.float32
    np.testing.assert_array_equal(features, [[19.0, 21.0, 20.0], [20.5, 22.0, 21.0]])


def test_unusable_rows_get_nan_and_the_rest_match_onnxruntime(
    shipped_manifest: ModelManifest,
) -> None:
    mags = _rows(shipped_manifest, 300, seed=4)
    bad = np.array([0, 7, 8, 150, 299])
    mags[bad, [0, 1, 3, 2, mags.shape[1] - 1]] = [np.nan, np.inf, -np.inf, np.nan, np.inf]
    scores = score_photometry(mags, manifest=shipped_manifest)
    assert scores.dtype == np.float32 and scores.shape == (300,)
    assert np.flatnonzero(np.isnan(scores)).tolist() == bad.tolist()
    good = np.setdiff1d(np.arange(300), bad)
    model = shipped_manifest.path_of(shipped_manifest.photometry.file)
    np.testing.assert_allclose(scores[good], onnx_reference(model, mags[good]), rtol=1e-5)
    assert ((scores[good] >= 0) & (scores[good] <= 1)).all()
    assert len(np.unique(scores[good])) > 100, "different colours, different scores"


def test_finite_rows_are_scored_as_onnxruntime_scores_them(
    shipped_manifest: ModelManifest,
) -> None:
    mags = _rows(shipped_manifest, 50, seed=5)
    model = shipped_manifest.path_of(shipped_manifest.photometry.file)
    np.testing.assert_allclose(
        score_photometry(mags, manifest=shipped_manifest), onnx_reference(model, mags), rtol=1e-5
    )


def test_no_usable_row_gives_all_nan(shipped_manifest: ModelManifest) -> None:
    n_features = len(shipped_manifest.photometry.features)
    mags = np.full((4, n_features), np.nan, dtype=np.float32)
    mags[1] = 20.0
    mags[1, 2] = np.inf
    scores = score_photometry(mags, manifest=shipped_manifest)
    assert scores.shape == (4,) and np.isnan(scores).all()
    empty = np.empty((0, n_features), np.float32)
    assert score_photometry(empty, manifest=shipped_manifest).shape == (0,)
