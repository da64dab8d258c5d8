"""ONNX export: ONNX Runtime agrees with torch, the batch is dynamic, disagreement is refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

from lensflow.errors import ModelMismatchError
from lensflow.surveys import survey_profile
from lensflow.train.export import check_onnx, export_onnx
from lensflow.train.models import ARCHITECTURES, PhotometryMLP, build_cnn

LSST = survey_profile("lsst")


def _run(path: Path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {session.get_inputs()[0].name: x})
    return np.asarray(out)


@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
def test_cnn_export_agrees_with_torch_at_any_batch(architecture: str, tmp_path: Path) -> None:
    torch.manual_seed(1)
    model = build_cnn(architecture, LSST)  # type: ignore[arg-type]
    rng = np.random.default_rng(0)
    example = (rng.normal(size=(2, 3, 64, 64)) * 30).astype(np.float32)
    path = tmp_path / f"{architecture}.onnx"
    worst = export_onnx(model, path, kind="cnn", example=example)
    assert worst <= 1e-4
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].name == "images"
    assert session.get_outputs()[0].name == "probability"
    assert not isinstance(session.get_inputs()[0].shape[0], int)
    for batch in (1, 5):
        x = (rng.normal(size=(batch, 3, 64, 64)) * 100).astype(np.float32)
        out = _run(path, x)
        assert out.shape == (batch,)
        with torch.no_grad():
            expected = model(torch.from_numpy(x)).numpy()
        np.testing.assert_allclose(out, expected, atol=1e-4, rtol=0)
    assert path.stat().st_size < 2_000_000


def test_photometry_export_agrees_with_torch(tmp_path: Path) -> None:
    torch.manual_seed(2)
    model = PhotometryMLP()
    rng = np.random.default_rng(1)
    mags = rng.uniform(19, 25, size=(500, 4)).astype(np.float32)
    model.fit_normalisation(torch.from_numpy(mags))
    path = tmp_path / "photometry.onnx"
    export_onnx(model, path, kind="photometry", example=mags[:8], check=[mags])
    for batch in (1, 5):
        out = _run(path, mags[:batch])
        with torch.no_grad():
            expected = model(torch.from_numpy(mags[:batch])).numpy()
        np.testing.assert_allclose(out, expected, atol=1e-4, rtol=0)


def test_a_graph_that_disagrees_is_refused(tmp_path: Path) -> None:
    torch.manual_seed(3)
    model = PhotometryMLP()
    mags = np.random.default_rng(2).uniform(19, 25, size=(16, 4)).astype(np.float32)
    path = tmp_path / "photometry.onnx"
    export_onnx(model, path, kind="photometry", example=mags)
    last = model.net[-1]
    assert isinstance(last, torch.nn.Linear)
    with torch.no_grad():
        last.bias += 1.0
    with pytest.raises(ModelMismatchError, match="differ"):
        check_onnx(model, path, [mags])
