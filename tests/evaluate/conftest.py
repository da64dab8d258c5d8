"""Fixtures of the evaluation tests: a labelled two-group store and ONNX members of known scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lensflow.cutouts import create_store, write_group
from lensflow.evaluate import EvaluationReport, evaluate_store
from lensflow.io import file_digest


def _mean_sigmoid_model(path: Path, *, input_name: str, rank: int, gain: float) -> None:
    """An ONNX graph giving sigmoid(gain x mean over every axis but the first), (N,)."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    axes = list(range(1, rank))
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", [input_name], ["mean"], axes=axes, keepdims=0),
            helper.make_node("Mul", ["mean", "gain"], ["scaled"]),
            helper.make_node("Sigmoid", ["scaled"], ["probability"]),
        ],
        "mean_sigmoid",
        [
            helper.make_tensor_value_info(
                input_name, TensorProto.FLOAT, ["batch", *[None] * (rank - 1)]
            )
        ],
        [helper.make_tensor_value_info("probability", TensorProto.FLOAT, ["batch"])],
        [helper.make_tensor("gain", TensorProto.FLOAT, [], [gain])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))


@pytest.fixture
def labelled_store(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A 2-group store: 4 lenses (mean +2), 3 spirals (mean +1), 5 rings (mean -3); manifest."""
    models = tmp_path / "models"
    models.mkdir()
    _mean_sigmoid_model(models / "photometry.onnx", input_name="magnitudes", rank=2, gain=1.0)
    _mean_sigmoid_model(models / "a.onnx", input_name="images", rank=4, gain=1.0)
    _mean_sigmoid_model(models / "b.onnx", input_name="images", rank=4, gain=0.5)
    member = 'bands = ["g", "r", "i"]\nsize = 8\npixel_scale_arcsec = 0.2\nunits = "nJy"\n'
    (models / "manifest.toml").write_text(
        f"""version = 1
[photometry]
name = "p"
file = "photometry.onnx"
sha256 = "{file_digest(models / "photometry.onnx")}"
threshold = 0.5
features = ["mag_g", "mag_r", "mag_i", "mag_z"]
[ensemble]
threshold = 0.5
[[ensemble.members]]
name = "a"
file = "a.onnx"
sha256 = "{file_digest(models / "a.onnx")}"
{member}
[[ensemble.members]]
name = "b"
file = "b.onnx"
sha256 = "{file_digest(models / "b.onnx")}"
{member}"""
    )
    store = tmp_path / "cutouts.zarr"
    create_store(
        store,
        bands=["g", "r", "i"],
        pixel_scale_arcsec=0.2,
        psf_fwhm_arcsec={"g": 0.85, "r": 0.75, "i": 0.7},
        cutout_size=8,
    )
    classes = ["lens"] * 4 + ["spiral"] * 3 + ["ring"] * 5
    level = {"lens": 2.0, "spiral": 1.0, "ring": -3.0}
    ids = np.arange(100, 100 + len(classes), dtype=np.int64) * 7
    images = np.stack([np.full((3, 8, 8), level[c], np.float32) for c in classes])
    write_group(store, "first", ids=ids[::2], images=images[::2])
    write_group(store, "nested/second", ids=ids[1::2], images=images[1::2])
    labels = tmp_path / "labels.parquet"
    order = np.random.default_rng(3).permutation(ids.size)
    pq.write_table(
        pa.table(
            {
                "id": pa.array(ids[order], pa.int64()),
                "is_lens": [classes[i] == "lens" for i in order],
                "class": [classes[i] for i in order],
            }
        ),
        labels,
    )
    return store, labels, models / "manifest.toml"


@pytest.fixture
def evaluated(labelled_store: tuple[Path, Path, Path]) -> EvaluationReport:
    """The labelled store scored by its two members in batches of 3."""
    store, labels, manifest = labelled_store
    return evaluate_store(store, labels, manifest=manifest, batch=3)
