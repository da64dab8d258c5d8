"""ONNX export of trained networks, checked against torch, and the models manifest entries.

Graphs take raw inputs ("magnitudes" float32 (N, 4) AB, or "images" float32 (N, bands, H, W)
nJy) with a dynamic batch and give "probability" float32 (N,). A file is accepted only when
ONNX Runtime and torch agree within 1e-4 on probabilities.
"""

from __future__ import annotations

import logging
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import onnxruntime as ort
import tomli_w
import torch
from pydantic import ValidationError

from lensflow.errors import ModelMismatchError
from lensflow.registry import EnsembleModels, PhotometryModel, load_manifest
from lensflow.train.config import TrainingError
from lensflow.train.models import ProbabilityModel

logger = logging.getLogger(__name__)

OPSET = 17
TOLERANCE = 1e-4
INPUT_NAMES: Mapping[str, str] = {"photometry": "magnitudes", "cnn": "images"}


def export_onnx(
    model: ProbabilityModel,
    path: Path,
    *,
    kind: Literal["photometry", "cnn"],
    example: np.ndarray,
    check: Sequence[np.ndarray] = (),
) -> float:
    """Export model (on CPU, eval mode) to path; returns the largest |ONNX - torch| seen.

    example float32 (B, ...) traces the graph; check: more input batches to compare on
    (example and a batch of one are always compared). Raises ModelMismatchError beyond 1e-4.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.cpu()
    model.train(False)
    name = INPUT_NAMES[kind]
    tmp = path.with_suffix(".onnx.tmp")
    with torch.no_grad():
        torch.onnx.export(
            model,
            (torch.from_numpy(np.ascontiguousarray(example, dtype=np.float32)),),
            str(tmp),
            dynamo=False,
            input_names=[name],
            output_names=["probability"],
            dynamic_axes={name: {0: "batch"}, "probability": {0: "batch"}},
            opset_version=OPSET,
        )
    worst = check_onnx(model, tmp, [example, example[:1], *check])
    tmp.replace(path)
    logger.info("%s: exported (ONNX vs torch within %.2e)", path, worst)
    return worst


def check_onnx(
    model: ProbabilityModel, path: Path, batches: Sequence[np.ndarray], *, atol: float = TOLERANCE
) -> float:
    """Largest |ONNX Runtime - torch| probability over the batches; refused beyond atol."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    model = model.cpu()
    model.train(False)
    worst = 0.0
    for batch in batches:
        x = np.ascontiguousarray(batch, dtype=np.float32)
        (onnx_out,) = session.run(None, {name: x})
        with torch.no_grad():
            torch_out = model(torch.from_numpy(x)).numpy()
        onnx_out = np.asarray(onnx_out).reshape(-1)
        if onnx_out.shape != torch_out.shape:
            raise ModelMismatchError(
                f"{path}: ONNX gives {onnx_out.shape} probabilities for batch {x.shape}"
            )
        worst = max(worst, float(np.max(np.abs(onnx_out - torch_out), initial=0.0)))
    if not worst <= atol:
        raise ModelMismatchError(f"{path}: ONNX Runtime and torch differ by {worst:.2e} > {atol}")
    return worst


def _plain(value: Any) -> Any:
    """Numbers, strings, lists and tables TOML can hold (numpy scalars unwrapped, None dropped)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return value


def write_manifest(
    path: Path,
    *,
    photometry: Mapping[str, Any] | None = None,
    members: Sequence[Mapping[str, Any]] = (),
    threshold: float | None = None,
    ensemble_metrics: Mapping[str, Any] | None = None,
) -> Path:
    """Merge entries into a models manifest (created if absent); validate; write atomically.

    photometry replaces that table; members replace those of the same name and are appended
    otherwise; threshold and ensemble_metrics replace the ensemble's. Once both sections exist
    the file is checked with load_manifest(verify=True).
    """
    path = Path(path)
    raw: dict[str, Any] = {"version": 1}
    if path.is_file():
        with path.open("rb") as f:
            raw = tomllib.load(f)
    if photometry is not None:
        raw["photometry"] = _plain(photometry)
    if members or threshold is not None or ensemble_metrics is not None:
        ensemble = dict(raw.get("ensemble", {}))
        merged = {m["name"]: m for m in ensemble.get("members", [])}
        for member in members:
            merged[str(member["name"])] = _plain(member)
        ensemble["members"] = list(merged.values())
        if threshold is not None:
            ensemble["threshold"] = float(threshold)
        if ensemble_metrics is not None:
            ensemble["metrics"] = _plain(ensemble_metrics)
        raw["ensemble"] = ensemble
    try:
        if "photometry" in raw:
            PhotometryModel.model_validate(raw["photometry"])
        if "ensemble" in raw:
            EnsembleModels.model_validate(raw["ensemble"])
    except ValidationError as exc:
        raise TrainingError(f"{path}: the manifest entries do not validate:\n{exc}") from exc
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".toml.tmp")
    tmp.write_text(tomli_w.dumps(raw))
    tmp.replace(path)
    if "photometry" in raw and "ensemble" in raw:
        load_manifest(path, verify=True)
    return path
