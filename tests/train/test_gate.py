"""The gate's features: groups over any survey's bands, single features, the map from catalog
columns to features inside the network."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

import torch

from lensflow.errors import ConfigError
from lensflow.surveys import survey_profile
from lensflow.train.gate import GateMLP, gate_features

LSST = survey_profile("lsst")


def test_the_default_gate_reads_magnitudes_and_makes_colours() -> None:
    gate = gate_features(("mag", "colour"), LSST)
    assert gate.inputs == ("mag_g", "mag_r", "mag_i", "mag_z")
    assert gate.derived == (*gate.inputs, "colour_g_r", "colour_r_i", "colour_i_z")
    assert (
        gate.text == "AB magnitudes g, r, i, z; colours g-r, r-i, i-z and standardisation in graph"
    )
    assert not gate.morphology


def test_morphology_groups_add_their_columns_once() -> None:
    hsc = survey_profile("hsc")
    gate = gate_features(("mag", "colour", "psf_minus_model", "size", "mag_g"), hsc)
    bands = hsc.catalog_bands
    assert gate.inputs == (
        *(f"mag_{b}" for b in bands),
        *(f"psfmag_{b}" for b in bands),
        *(f"size_{b}" for b in bands),
    )
    assert len(gate.derived) == 5 + 4 + 5 + 5 and gate.morphology
    assert "PSF minus model magnitudes g, r, i, z, y" in gate.text
    assert "PSF-corrected sizes (arcsec) g, r, i, z, y" in gate.text


def test_single_features_and_unknown_ones() -> None:
    gate = gate_features(("size_g", "colour_g_i", "extendedness", "psfmag_r"), LSST)
    assert gate.inputs == ("size_g", "mag_g", "mag_i", "extendedness", "psfmag_r")
    assert gate.derived == ("size_g", "colour_g_i", "extendedness", "psfmag_r")
    for bad in ("size_y", "colour_g_u", "shape_g"):
        with pytest.raises(ConfigError, match=bad):
            gate_features(("mag", bad), LSST)


def test_the_network_makes_its_features_from_the_columns() -> None:
    gate = gate_features(("mag", "colour", "psf_minus_model", "size"), LSST)
    model = GateMLP(gate.matrix, hidden=(8,))
    rng = np.random.default_rng(0)
    x = rng.normal(20.0, 1.0, size=(5, len(gate.inputs))).astype(np.float32)
    features = model.features(torch.from_numpy(x)).numpy()
    column = {name: x[:, gate.inputs.index(name)] for name in gate.inputs}
    derived = dict(zip(gate.derived, features.T, strict=True))
    np.testing.assert_allclose(derived["colour_g_r"], column["mag_g"] - column["mag_r"], atol=1e-5)
    np.testing.assert_allclose(
        derived["psf_minus_model_z"], column["psfmag_z"] - column["mag_z"], atol=1e-5
    )
    np.testing.assert_array_equal(derived["size_i"], column["size_i"])
    probabilities = model(torch.from_numpy(x))
    assert probabilities.shape == (5,) and ((probabilities > 0) & (probabilities < 1)).all()
