"""ONNX Runtime sessions: the one per-worker-process cache and batched runs, for every model.

The photometry gate, the ensemble members and evaluation all load their models here: each file
is hash-checked against the manifest before it is loaded, only ONNX is ever loaded, and a
session uses as many intra-op threads as the Dask worker running it has, spinning off.
"""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path

import numpy as np
import onnxruntime as ort

from lensflow.registry import verify_hash

logger = logging.getLogger(__name__)


def available_providers() -> list[str]:
    """ONNX Runtime providers this process can use, CUDA first when it is there."""
    present = ort.get_available_providers()
    return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in present]


def load_session(path: Path, sha256: str, threads: int = 0) -> ort.InferenceSession:
    """An ONNX Runtime session for a model file, hash-checked, cached per worker process.

    threads = 0 means as many intra-op threads as the Dask worker running this has (all cores
    outside a worker); spinning is off so an idle session does not hold cores other tasks need.
    The cache is keyed by the thread count resolved, so a session opened ahead of the tasks with
    the worker's count (lensflow.scan.warm) is the one the tasks get.
    """
    return _cached_session(Path(path), sha256, threads or _worker_threads())


@functools.lru_cache(maxsize=16)
def _cached_session(path: Path, sha256: str, threads: int) -> ort.InferenceSession:
    return new_session(path, sha256, threads)


def new_session(path: Path, sha256: str, threads: int = 0) -> ort.InferenceSession:
    """A fresh, uncached ONNX Runtime session (one per thread where sessions run in parallel)."""
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
