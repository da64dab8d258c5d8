"""`lensflow train quantize`: an INT8 variant of each ensemble member, and how closely it follows.

Each member's float32 graph is quantized by ONNX Runtime's static QDQ quantizer (its
`quant_pre_process` first): the weights per output channel, the activations calibrated on
cutouts of a calibration store, and only the operator types in `ops`: by default the
convolutions, where the time goes, with their activations (ReLU, and Clip for ReLU6), so that
ONNX Runtime fuses each convolution with its activation and stays in int8 between them
(convolutions alone measured 0.92-1.31x on one thread, slower for MobileNet's depthwise
blocks; with their activations 1.48-1.53x). The asinh stretch inside each graph, attention
and the dense head stay float32: quantizing everything ranks cutouts far worse. The variant is written beside the
member (`NAME.int8.onnx`) and recorded in the member's [int8] table with its sha256.

Then both precisions score a labelled held-out store as `lensflow evaluate` does, and each
member's [int8] agreement records: the Spearman rank correlation of its scores with float32's,
the fraction of cutouts on the same side of the threshold, AUROC/TPR0/TPR10 of both with the
set's size, and the one-thread speed-up. A scan runs the variants only when asked
([ensemble] precision = "int8"); float32 stays the default.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tomli_w
from pydantic import ValidationError

from lensflow.cutouts import list_groups, open_store, read_group
from lensflow.ensemble import ENSEMBLE
from lensflow.errors import TrainingError
from lensflow.evaluate import EvaluationReport, evaluate_store
from lensflow.io import file_digest, write_text
from lensflow.registry import ModelManifest, QuantizedVariant, load_manifest
from lensflow.sessions import new_session, run_batched
from lensflow.train.manifest import read_manifest_table

logger = logging.getLogger(__name__)

DEFAULT_OPS = ("Conv", "Relu", "Clip")
"""Operator types quantized by default: the convolutions and their activations."""

CALIBRATION_ROWS = 1000
"""Cutouts of the calibration store the activation ranges are fitted on."""

SPEED_ROWS = 512
"""Held-out cutouts each precision scores on one thread for the speed-up (best of 3)."""


@dataclasses.dataclass(frozen=True)
class Quantized:
    """What `quantize_manifest` wrote and measured: the manifest, both reports, the variants."""

    manifest: Path
    float32: EvaluationReport
    int8: EvaluationReport
    variants: Mapping[str, QuantizedVariant]
    ensemble: Mapping[str, Any]


def quantize_manifest(
    manifest: Path,
    *,
    store: Path,
    labels: Path,
    calibration: Path,
    calibration_rows: int = CALIBRATION_ROWS,
    ops: Sequence[str] = DEFAULT_OPS,
    workers: int = 1,
) -> Quantized:
    """Quantize every member of a manifest, measure each variant on a held-out store, record it.

    store, labels: the labelled held-out set both precisions score; calibration: another cutout
    store (never the held-out one) whose first calibration_rows cutouts fit the activation
    ranges. The manifest's [int8] tables are replaced; nothing else in it changes.
    """
    manifest, store, calibration = Path(manifest), Path(store), Path(calibration)
    if calibration.resolve() == store.resolve():
        raise TrainingError(
            f"{calibration}: the calibration store is the held-out store; calibrate on cutouts "
            "the agreement is not measured on (another `lensflow simulate training-set` seed)"
        )
    models = load_manifest(manifest, verify=True)
    images = calibration_images(calibration, rows=calibration_rows)
    variants: dict[str, QuantizedVariant] = {}
    for member in models.ensemble.members:
        source = models.path_of(member.file)
        target = source.with_name(f"{source.stem}.int8.onnx")
        quantize_file(source, target, images=images, ops=ops)
        variants[member.name] = QuantizedVariant(
            file=target.name,
            sha256=file_digest(target),
            ops=tuple(ops),
            calibration={"store": str(calibration.resolve()), "rows": int(images.shape[0])},
        )
        logger.info("%s: quantized to %s", member.name, target)
    write_variants(manifest, variants)
    float32 = evaluate_store(store, labels, manifest=manifest, workers=workers)
    int8 = evaluate_store(store, labels, manifest=manifest, workers=workers, precision="int8")
    speed = speed_ups(models, variants, store)
    threshold = models.ensemble.threshold
    measured = {
        name: variant.model_copy(
            update={
                "agreement": agreement(float32, int8, name, threshold=threshold)
                | {"speed_up_one_thread": speed[name]}
            }
        )
        for name, variant in variants.items()
    }
    write_variants(manifest, measured)
    ensemble = agreement(float32, int8, ENSEMBLE, threshold=threshold)
    return Quantized(manifest, float32, int8, measured, ensemble)


def calibration_images(store: Path, *, rows: int) -> np.ndarray:
    """The first `rows` cutouts of a store, float32 (N, bands, H, W), group by group."""
    open_store(store)
    parts: list[np.ndarray] = []
    held = 0
    for group in list_groups(store):
        if held >= rows:
            break
        _, images = read_group(store, group)
        parts.append(images[: rows - held])
        held += parts[-1].shape[0]
    if held == 0:
        raise TrainingError(f"{store}: the calibration store holds no cutouts")
    return np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)


class _Reader:
    """ONNX Runtime's calibration data reader: the calibration cutouts in batches of 64."""

    def __init__(self, name: str, images: np.ndarray) -> None:
        self._batches: Iterator[dict[str, np.ndarray]] = iter(
            {name: images[start : start + 64]} for start in range(0, images.shape[0], 64)
        )

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)


def quantize_file(source: Path, target: Path, *, images: np.ndarray, ops: Sequence[str]) -> None:
    """Write the static QDQ INT8 variant of an ONNX model (one float32 image input) to target.

    Weights int8 per output channel, activations uint8 calibrated (min-max) on images;
    written to a temporary file beside target, then moved into place.
    """
    try:
        import onnx
        from onnxruntime.quantization import (
            CalibrationMethod,
            QuantFormat,
            QuantType,
            quant_pre_process,
            quantize_static,
        )
    except ImportError as exc:
        raise TrainingError(
            f"quantizing needs onnx ({exc}): pip install 'lensflow[train]'"
        ) from None
    input_name = onnx.load(str(source), load_external_data=False).graph.input[0].name
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".quantize-") as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        written = Path(tmp) / "int8.onnx"
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        quantize_static(
            str(prepared),
            str(written),
            _Reader(input_name, images),
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=list(ops),
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
        )
        written.replace(target)


def agreement(
    float32: EvaluationReport, int8: EvaluationReport, name: str, *, threshold: float
) -> dict[str, Any]:
    """How one scorer's int8 scores follow its float32 ones on the same held-out set."""
    from scipy.stats import spearmanr

    a, b = float32.scores[name], int8.scores[name]
    before, after = float32.metrics[name], int8.metrics[name]
    return {
        "spearman": float(spearmanr(a, b).statistic),
        "agreement_at_threshold": float(np.mean((a >= threshold) == (b >= threshold))),
        "threshold": threshold,
        "max_abs_difference": float(np.max(np.abs(a - b))),
        "auroc_float32": before.auroc,
        "auroc_int8": after.auroc,
        "tpr0_float32": before.tpr0,
        "tpr0_int8": after.tpr0,
        "tpr10_float32": before.tpr10,
        "tpr10_int8": after.tpr10,
        "n_lenses": before.n_lenses,
        "n_non_lenses": before.n_non_lenses,
    }


def speed_ups(
    models: ModelManifest, variants: Mapping[str, QuantizedVariant], store: Path
) -> dict[str, float]:
    """Each member's int8 rate over its float32 rate on one thread (best of 3, interleaved)."""
    images = calibration_images(store, rows=SPEED_ROWS)
    out: dict[str, float] = {}
    for member in models.ensemble.members:
        variant = variants[member.name]
        fp32 = new_session(models.path_of(member.file), member.sha256, 1)
        int8 = new_session(models.path_of(variant.file), variant.sha256, 1)
        best = {"fp32": float("inf"), "int8": float("inf")}
        for _ in range(3):
            for key, session in (("fp32", fp32), ("int8", int8)):
                start = time.perf_counter()
                run_batched(session, images, batch=256)
                best[key] = min(best[key], time.perf_counter() - start)
        out[member.name] = round(best["fp32"] / best["int8"], 3)
    return out


def write_variants(path: Path, variants: Mapping[str, QuantizedVariant]) -> None:
    """Replace the [int8] table of the named members of a manifest, atomically, validated."""
    raw = read_manifest_table(path)
    members = raw.get("ensemble", {}).get("members", [])
    for member in members:
        if member.get("name") in variants:
            member["int8"] = variants[member["name"]].model_dump(mode="json")
    try:
        ModelManifest.model_validate({**raw, "folder": path.parent})
    except ValidationError as exc:
        raise TrainingError(f"{path}: the quantized manifest does not validate:\n{exc}") from exc
    write_text(path, tomli_w.dumps(raw))
