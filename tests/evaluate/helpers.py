"""Small labelled stores and ONNX members of known scores, for the evaluation and calibration
tests (tests/evaluate, tests/train/test_calibrate.py, tests/cli/test_models.py)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lensflow.cutouts import create_store, write_group
from lensflow.io import file_digest

MEMBER_SPEC = 'bands = ["g", "r", "i"]\nsize = 8\npixel_scale_arcsec = 0.2\nunits = "nJy"\n'


def mean_sigmoid_model(path: Path, *, input_name: str, rank: int, gain: float) -> None:
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


def write_models(folder: Path, gains: dict[str, float], *, extra: str = "") -> Path:
    """A manifest in folder: a photometry gate and one mean-sigmoid member per gain; its path.

    extra: TOML text appended (e.g. an [ensemble.metrics] table).
    """
    writers = {
        name: functools.partial(mean_sigmoid_model, input_name="images", rank=4, gain=gain)
        for name, gain in gains.items()
    }
    return write_manifest_of(folder, writers, extra=extra)


def write_manifest_of(
    folder: Path, members: dict[str, Callable[[Path], None]], *, extra: str = ""
) -> Path:
    """A manifest in folder: a photometry gate and one member per name, each file written by
    its function (given the path); its path. extra: TOML text appended."""
    folder.mkdir(parents=True, exist_ok=True)
    mean_sigmoid_model(folder / "photometry.onnx", input_name="magnitudes", rank=2, gain=1.0)
    text = ""
    for name, write in members.items():
        write(folder / f"{name}.onnx")
        digest = file_digest(folder / f"{name}.onnx")
        text += (
            f'[[ensemble.members]]\nname = "{name}"\nfile = "{name}.onnx"\n'
            f'sha256 = "{digest}"\n{MEMBER_SPEC}'
        )
    manifest = folder / "manifest.toml"
    manifest.write_text(
        f"""version = 1
[photometry]
name = "p"
file = "photometry.onnx"
sha256 = "{file_digest(folder / "photometry.onnx")}"
threshold = 0.5
features = ["mag_g", "mag_r", "mag_i", "mag_z"]
[ensemble]
threshold = 0.5
{text}{extra}"""
    )
    return manifest


def write_store(
    folder: Path, levels: np.ndarray, classes: list[str], *, first_id: int = 100
) -> tuple[Path, Path]:
    """A 2-group 8x8 store whose cutout k is filled with levels[k], and its labels.

    classes: "lens" or a contaminant class per cutout. Returns (store, labels).
    """
    folder.mkdir(parents=True, exist_ok=True)
    store = folder / "cutouts.zarr"
    create_store(
        store,
        bands=["g", "r", "i"],
        pixel_scale_arcsec=0.2,
        psf_fwhm_arcsec={"g": 0.85, "r": 0.75, "i": 0.7},
        cutout_size=8,
    )
    ids = (first_id + np.arange(len(classes), dtype=np.int64)) * 7
    images = np.broadcast_to(
        np.asarray(levels, np.float32)[:, None, None, None], (len(classes), 3, 8, 8)
    ).copy()
    write_group(store, "first", ids=ids[::2], images=images[::2])
    write_group(store, "nested/second", ids=ids[1::2], images=images[1::2])
    labels = folder / "labels.parquet"
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
    return store, labels


def noisy_set(
    folder: Path, *, n_lenses: int, n_non_lenses: int, seed: int, first_id: int = 100
) -> tuple[Path, Path]:
    """A store of lenses (levels ~ N(1, 1)) and rings and spirals (~ N(-1, 1)): overlapping
    classes, so the members' scores need calibrating. Returns (store, labels)."""
    rng = np.random.default_rng(seed)
    classes = ["lens"] * n_lenses + [
        "ring" if k % 3 == 0 else "spiral" for k in range(n_non_lenses)
    ]
    centre = np.where(np.array(classes) == "lens", 1.0, -1.0)
    return write_store(folder, centre + rng.normal(size=centre.size), classes, first_id=first_id)
