"""A gate on morphology: the scan reads the columns its manifest names and refuses a map
without them before any task runs."""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pytest
import tomli_w

pytest.importorskip("torch")

from lensflow.catalog import read_partition
from lensflow.errors import ConfigError
from lensflow.io import file_digest
from lensflow.registry import default_manifest_path
from lensflow.scan.run import build_context
from lensflow.scan.stages import Survivors, select_partition
from lensflow.simulate.mock_sky import MockSky
from lensflow.surveys import survey_profile
from lensflow.testing import onnx_reference, sky_config
from lensflow.train.export import export_onnx
from lensflow.train.gate import GateMLP, gate_features

FEATURES = ("mag", "colour", "psf_minus_model", "size")


@pytest.fixture(scope="module")
def morphology_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped manifest with its gate replaced by an (untrained) MLP on morphology."""
    folder = tmp_path_factory.mktemp("models")
    shipped = default_manifest_path()
    with shipped.open("rb") as f:
        raw = tomllib.load(f)
    for member in raw["ensemble"]["members"]:
        shutil.copy(shipped.parent / member["file"], folder / member["file"])
    raw.pop("modelling", None)  # the lens-modelling networks play no part here
    gate = gate_features(FEATURES, survey_profile("lsst"))
    model = GateMLP(gate.matrix, hidden=(8,))
    rng = np.random.default_rng(0)
    example = rng.normal(21.0, 1.0, size=(64, len(gate.inputs))).astype(np.float32)
    export_onnx(model, folder / "gate.onnx", kind="photometry", example=example)
    raw["photometry"] = {
        "name": "morphology_gate",
        "file": "gate.onnx",
        "sha256": file_digest(folder / "gate.onnx"),
        "threshold": 0.0,
        "features": list(gate.inputs),
        "survey": "lsst",
    }
    path = folder / "manifest.toml"
    path.write_text(tomli_w.dumps(raw))
    return path


def test_the_gate_scores_the_mapped_morphology_columns(
    mock_sky: MockSky, morphology_models: Path, tmp_path: Path
) -> None:
    config = sky_config(mock_sky, tmp_path / "scan", models={"manifest": morphology_models})
    context = build_context(config)
    features = context.manifest.photometry.features
    assert "size_g" in features and "psfmag_z" in features
    mapped = config.catalog.columns.mapped()
    scored = 0
    for pixel in context.catalog.pixels:
        survivors = select_partition(pixel, context=context)
        assert isinstance(survivors, Survivors), survivors
        if not survivors.table.num_rows:
            continue
        read = read_partition(
            pixel,
            catalog=context.catalog,
            columns=[mapped["id"], *(mapped[name] for name in features)],
            cut=context.cut,
        ).table
        order = pc.index_in(survivors.table["id"], read[mapped["id"]]).to_numpy()
        x = np.stack([read[mapped[n]].to_numpy()[order] for n in features], axis=1)
        expected = onnx_reference(morphology_models.parent / "gate.onnx", x.astype(np.float32))
        got = survivors.table["photometry_score"].to_numpy()
        np.testing.assert_allclose(got, expected, rtol=1e-5)
        scored += got.size
    assert scored > 50


def test_a_map_without_a_morphology_column_is_refused_by_name(
    mock_sky: MockSky, morphology_models: Path, tmp_path: Path
) -> None:
    config = sky_config(mock_sky, tmp_path / "scan", models={"manifest": morphology_models})
    columns = config.catalog.columns.model_dump(exclude_none=True)
    del columns["size_g"], columns["psfmag_i"]
    config = config.model_copy(
        update={
            "catalog": config.catalog.model_copy(
                update={"columns": type(config.catalog.columns).model_validate(columns)}
            )
        }
    )
    with pytest.raises(ConfigError, match=r"has no psfmag_i, size_g; photometry model"):
        build_context(config)
    assert not (tmp_path / "scan").exists()
