"""ONNX Runtime sessions: the one per-worker-process cache and batched runs, for every model.

The photometry gate, the ensemble members and evaluation all load their models here: each file
is hash-checked against the manifest before it is loaded, only ONNX is ever loaded, and a
session uses as many intra-op threads as the Dask worker running it has, spinning off. On a GPU
(onnxruntime-gpu and a CUDA device) sessions run on CUDA and batches go through IO binding:
each batch is copied to the device once and its output bound there, not allocated per run.
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


GPU_PROVIDER = "CUDAExecutionProvider"


def available_providers() -> list[str]:
    """ONNX Runtime providers this process can use, CUDA first when it is there."""
    present = ort.get_available_providers()
    return [p for p in (GPU_PROVIDER, "CPUExecutionProvider") if p in present]


def runs_on_gpu() -> bool:
    """Whether sessions of this process run on CUDA (onnxruntime-gpu with a device)."""
    return available_providers()[0] == GPU_PROVIDER


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
    """Run a one-input, one-output probability model over rows in batches; float32 (N,).

    A session on CUDA runs through IO binding (run_bound); others through session.run.
    """
    if session.get_providers()[0] == GPU_PROVIDER:
        return run_bound(session, inputs, batch=batch, device="cuda")
    name = session.get_inputs()[0].name
    out = np.empty(inputs.shape[0], dtype=np.float32)
    for start in range(0, inputs.shape[0], batch):
        (result,) = session.run(None, {name: inputs[start : start + batch]})
        out[start : start + batch] = np.asarray(result, dtype=np.float32).reshape(-1)
    return out


def run_bound(
    session: ort.InferenceSession, inputs: np.ndarray, *, batch: int, device: str
) -> np.ndarray:
    """run_batched through IO binding on `device` ("cuda", or "cpu"); float32 (N,).

    Each batch is copied to the device once as an OrtValue and the output is bound on the
    device, so a run allocates nothing on the host but the (batch,) scores it copies back.
    """
    name = session.get_inputs()[0].name
    output = session.get_outputs()[0].name
    binding = session.io_binding()
    out = np.empty(inputs.shape[0], dtype=np.float32)
    for start in range(0, inputs.shape[0], batch):
        rows = np.ascontiguousarray(inputs[start : start + batch], dtype=np.float32)
        binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(rows, device, 0))
        binding.bind_output(output, device)
        session.run_with_iobinding(binding)
        (result,) = binding.copy_outputs_to_cpu()
        out[start : start + batch] = np.asarray(result, dtype=np.float32).reshape(-1)
        binding.clear_binding_inputs()
        binding.clear_binding_outputs()
    return out
