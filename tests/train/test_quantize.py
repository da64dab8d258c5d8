"""INT8 variants: written beside the members, recorded with their agreement, run only on request."""

from __future__ import annotations

import functools
import tomllib
from pathlib import Path

import numpy as np
import pytest

from lensflow.errors import ConfigError, TrainingError
from lensflow.evaluate import evaluate_store
from lensflow.io import file_digest
from lensflow.registry import load_manifest
from lensflow.train.quantize import quantize_manifest
from tests.evaluate.helpers import noisy_set, write_manifest_of

onnx = pytest.importorskip("onnx")


def conv_model(path: Path, *, seed: int) -> None:
    """A member with a 3x3 convolution (3 -> 4 channels) and ReLU before a mean and a sigmoid."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    weights = rng.uniform(0.05, 0.3, size=(4, 3, 3, 3)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["images", "w", "b"], ["conv"], pads=[1, 1, 1, 1]),
            helper.make_node("Relu", ["conv"], ["relu"]),
            helper.make_node("ReduceMean", ["relu"], ["mean"], axes=[1, 2, 3], keepdims=0),
            helper.make_node("Sub", ["mean", "offset"], ["centred"]),
            helper.make_node("Sigmoid", ["centred"], ["probability"]),
        ],
        "conv_member",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, 8, 8])],
        [helper.make_tensor_value_info("probability", TensorProto.FLOAT, ["batch"])],
        [
            numpy_helper.from_array(weights, "w"),
            numpy_helper.from_array(np.zeros(4, np.float32), "b"),
            numpy_helper.from_array(np.asarray(0.8, np.float32), "offset"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))


def write_conv_models(folder: Path, names: list[str]) -> Path:
    """A manifest of a photometry gate and one convolutional member per name; its path."""
    writers = {name: functools.partial(conv_model, seed=k) for k, name in enumerate(names)}
    return write_manifest_of(folder, writers)


def test_variants_are_written_recorded_and_follow_float32(tmp_path: Path) -> None:
    manifest = write_conv_models(tmp_path / "models", ["first", "second"])
    store, labels = noisy_set(tmp_path / "held-out", n_lenses=100, n_non_lenses=400, seed=1)
    calibration, _ = noisy_set(tmp_path / "calibration", n_lenses=50, n_non_lenses=150, seed=2)
    members_before = manifest.read_bytes()

    quantized = quantize_manifest(
        manifest, store=store, labels=labels, calibration=calibration, calibration_rows=128
    )

    raw = tomllib.loads(manifest.read_text())
    for member in raw["ensemble"]["members"]:
        variant = member["int8"]
        path = manifest.parent / variant["file"]
        assert variant["file"] == f"{member['name']}.int8.onnx"
        assert variant["sha256"] == file_digest(path)
        assert file_digest(manifest.parent / member["file"]) == member["sha256"], "fp32 kept"
        ops = {node.op_type for node in onnx.load(str(path)).graph.node}
        assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= ops
        assert variant["calibration"]["rows"] == 128
        agreement = variant["agreement"]
        assert agreement["spearman"] > 0.95
        assert agreement["agreement_at_threshold"] > 0.97
        assert agreement["n_lenses"] == 100 and agreement["n_non_lenses"] == 400
        assert agreement["speed_up_one_thread"] > 0
        assert abs(agreement["tpr10_int8"] - agreement["tpr10_float32"]) < 0.1
    assert members_before != manifest.read_bytes()
    assert set(quantized.variants) == {"first", "second"}
    assert quantized.ensemble["n_non_lenses"] == 400

    f32 = evaluate_store(store, labels, manifest=manifest)
    i8 = evaluate_store(store, labels, manifest=manifest, precision="int8")
    assert not np.array_equal(f32.scores["first"], i8.scores["first"]), "int8 files were run"
    assert np.abs(f32.scores["first"] - i8.scores["first"]).max() < 0.05
    assert (
        load_manifest(manifest, precision="int8").versions() != load_manifest(manifest).versions()
    ), "the scan fingerprint follows the variant"


def test_int8_without_variants_is_a_config_error_naming_the_member(tmp_path: Path) -> None:
    manifest = write_conv_models(tmp_path / "models", ["only"])
    assert load_manifest(manifest).ensemble.members[0].int8 is None
    with pytest.raises(ConfigError, match=r"member 'only' has no int8 variant.*train quantize"):
        load_manifest(manifest, precision="int8")


def test_a_changed_variant_file_is_refused_by_its_sha256(tmp_path: Path) -> None:
    manifest = write_conv_models(tmp_path / "models", ["only"])
    store, labels = noisy_set(tmp_path / "held-out", n_lenses=60, n_non_lenses=100, seed=3)
    calibration, _ = noisy_set(tmp_path / "calibration", n_lenses=20, n_non_lenses=60, seed=4)
    quantize_manifest(manifest, store=store, labels=labels, calibration=calibration)
    variant = manifest.parent / "only.int8.onnx"
    conv_model(variant, seed=9)
    load_manifest(manifest)  # float32 does not read the variant
    with pytest.raises(Exception, match="sha256"):
        load_manifest(manifest, precision="int8")


def test_the_held_out_store_is_refused_as_calibration(tmp_path: Path) -> None:
    manifest = write_conv_models(tmp_path / "models", ["only"])
    store, labels = noisy_set(tmp_path / "held-out", n_lenses=60, n_non_lenses=100, seed=5)
    text = manifest.read_text()
    with pytest.raises(TrainingError, match="calibration store is the held-out store"):
        quantize_manifest(manifest, store=store, labels=labels, calibration=store)
    assert manifest.read_text() == text
    assert not (manifest.parent / "only.int8.onnx").exists()
