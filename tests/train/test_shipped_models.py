"""The shipped models: the manifest verifies and every model gives probabilities in [0, 1]."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lensflow.config import BAND_KEY
from lensflow.ensemble import score_cutouts
from lensflow.photometry import score_photometry
from lensflow.registry import ModelManifest, load_manifest

SHIPPED = Path(__file__).resolve().parents[2] / "models" / "manifest.toml"


@pytest.fixture(scope="module")
def shipped() -> ModelManifest:
    return load_manifest(SHIPPED, verify=True)


def _assert_probabilities(values: np.ndarray, n: int) -> None:
    assert values.shape == (n,)
    assert np.isfinite(values).all()
    assert ((values >= 0) & (values <= 1)).all()


def test_the_shipped_manifest_is_complete(shipped: ModelManifest) -> None:
    assert shipped.photometry.features[:4] == ("mag_g", "mag_r", "mag_i", "mag_z")
    assert all(BAND_KEY.fullmatch(f) or f == "extendedness" for f in shipped.photometry.features)
    assert len(shipped.ensemble.members) >= 2
    for member in shipped.ensemble.members:
        assert member.flops is not None and member.flops <= 100_000_000
        assert shipped.path_of(member.file).stat().st_size < 2_000_000
        for key in ("auroc", "tpr0", "tpr10", "n_lenses", "n_non_lenses"):
            assert key in member.metrics
    for key in ("n_lenses", "n_non_lenses"):
        assert key in shipped.photometry.metrics
        assert key in shipped.ensemble.metrics


def test_every_member_scores_zeros_and_noise(shipped: ModelManifest) -> None:
    member = shipped.ensemble.members[0]
    shape = (len(member.bands), member.size, member.size)
    rng = np.random.default_rng(0)
    for images in (
        np.zeros((3, *shape), np.float32),
        rng.normal(0.0, 10.0, size=(5, *shape)).astype(np.float32),
        rng.lognormal(3.0, 2.0, size=(2, *shape)).astype(np.float32),
    ):
        scores = score_cutouts(images, manifest=shipped, batch=4)
        assert set(scores) == {m.name for m in shipped.ensemble.members} | {"ensemble"}
        for values in scores.values():
            _assert_probabilities(values, images.shape[0])


def test_the_photometry_gate_scores_its_features(shipped: ModelManifest) -> None:
    rng = np.random.default_rng(1)
    n_features = len(shipped.photometry.features)
    mags = rng.uniform(16.0, 27.0, size=(1000, n_features)).astype(np.float32)
    _assert_probabilities(score_photometry(mags, manifest=shipped), 1000)
