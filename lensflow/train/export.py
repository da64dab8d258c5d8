"""ONNX export of trained networks, accepted only where ONNX Runtime agrees with torch.

Graphs take raw inputs ("magnitudes" float32 (N, 4) AB, or "images" float32 (N, bands, H, W)
nJy) with a dynamic batch and give "probability" float32 (N,). A file is accepted only when
ONNX Runtime and torch agree within 1e-4 on probabilities.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import onnxruntime as ort
import torch

from lensflow.errors import ModelMismatchError
from lensflow.io import write_atomic
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
    worst = 0.0

    def write(tmp: Path) -> None:
        nonlocal worst
        write_graph(model, tmp, example=example, input_name=name, output_name="probability")
        worst = check_onnx(model, tmp, [example, example[:1], *check])

    write_atomic(path, write)
    logger.info("%s: exported (ONNX vs torch within %.2e)", path, worst)
    return worst


def write_graph(
    model: torch.nn.Module, path: Path, *, example: np.ndarray, input_name: str, output_name: str
) -> None:
    """Trace model on example float32 (B, ...) into an ONNX graph at path, batch dynamic.

    The TorchScript exporter (dynamo=False): the dynamo one failed on a dynamic batch here.
    """
    with torch.no_grad():
        torch.onnx.export(
            model,
            (torch.from_numpy(np.ascontiguousarray(example, dtype=np.float32)),),
            str(path),
            dynamo=False,
            input_names=[input_name],
            output_names=[output_name],
            dynamic_axes={input_name: {0: "batch"}, output_name: {0: "batch"}},
            opset_version=OPSET,
        )


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
