"""Score cutouts with the CNN ensemble: ONNX members, batched, CUDA when present, else CPU.

Each worker process loads each member once (`load_session`, the one per-worker cache) and keeps
it for every partition it scores. A member returns one lens probability per cutout; the
ensemble score is the mean over members.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import onnxruntime as ort

from lensflow.cutouts import StoreInfo
from lensflow.errors import ModelMismatchError
from lensflow.registry import ModelManifest, verify_hash

logger = logging.getLogger(__name__)

DEFAULT_BATCH = 256


def available_providers() -> list[str]:
    """ONNX Runtime providers this process can use, CUDA first when it is there."""
    present = ort.get_available_providers()
    return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in present]


@functools.lru_cache(maxsize=16)
def load_session(path: Path, sha256: str, threads: int = 0) -> ort.InferenceSession:
    """An ONNX Runtime session for a model file, hash-checked, cached per worker process.

    threads = 0 means as many intra-op threads as the Dask worker running this has (all cores
    outside a worker); spinning is off so an idle session does not hold cores other tasks need.
    """
    verify_hash(path, sha256)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or _worker_threads()
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), sess_options=options, providers=available_providers())


def _worker_threads() -> int:
    """Threads of the Dask worker running this task; the machine's cores outside a worker."""
    from distributed import get_worker

    try:
        return int(get_worker().state.nthreads)
    except ValueError:
        return os.cpu_count() or 1


def run_batched(session: ort.InferenceSession, inputs: np.ndarray, *, batch: int) -> np.ndarray:
    """Run a one-input, one-output probability model over rows in batches; float32 (N,)."""
    name = session.get_inputs()[0].name
    out = np.empty(inputs.shape[0], dtype=np.float32)
    for start in range(0, inputs.shape[0], batch):
        (result,) = session.run(None, {name: inputs[start : start + batch]})
        out[start : start + batch] = np.asarray(result, dtype=np.float32).reshape(-1)
    return out


def check_ensemble_inputs(manifest: ModelManifest, store: StoreInfo) -> None:
    """Refuse, before a scan starts, members whose input spec or graph does not fit the store."""
    for member in manifest.ensemble.members:
        want = (member.bands, member.size, member.pixel_scale_arcsec, member.units)
        have = (store.bands, store.cutout_size, store.pixel_scale_arcsec, store.units)
        if (
            tuple(want[0]) != tuple(have[0])
            or want[1] != have[1]
            or not np.isclose(want[2], have[2])
            or want[3] != have[3]
        ):
            raise ModelMismatchError(
                f"model {member.name!r} ({member.file}) expects bands {list(want[0])}, "
                f'{want[1]}x{want[1]} px at {want[2]}"/px in {want[3]}; cutout store '
                f'{store.path} has bands {list(have[0])}, {have[1]}x{have[1]} px at {have[2]}"/px '
                f"in {have[3]}"
            )
        session = load_session(manifest.path_of(member.file), member.sha256)
        graph_input = session.get_inputs()[0]
        shape = graph_input.shape
        expected = [len(store.bands), store.cutout_size, store.cutout_size]
        fixed = [d for d in shape[1:]]
        if len(shape) != 4 or any(
            isinstance(d, int) and d != e for d, e in zip(fixed, expected, strict=True)
        ):
            raise ModelMismatchError(
                f"model {member.name!r} ({member.file}) graph input {graph_input.name!r} has shape "
                f"{shape}; cutout store {store.path} gives (N, {expected[0]}, {expected[1]}, "
                f"{expected[2]})"
            )


def score_cutouts(
    images: np.ndarray, *, manifest: ModelManifest, batch: int = DEFAULT_BATCH
) -> Mapping[str, np.ndarray]:
    """Each member's lens probability for each cutout, and their mean under "ensemble".

    images float32 (N, bands, H, W) in the store's units. Returns float32 (N,) arrays keyed by
    member name, plus "ensemble".
    """
    images = np.ascontiguousarray(images, dtype=np.float32)
    scores: dict[str, np.ndarray] = {}
    for member in manifest.ensemble.members:
        session = load_session(manifest.path_of(member.file), member.sha256)
        scores[member.name] = run_batched(session, images, batch=batch)
    stacked = np.stack(list(scores.values())) if images.shape[0] else np.empty((1, 0), np.float32)
    scores["ensemble"] = stacked.mean(axis=0).astype(np.float32)
    return scores
