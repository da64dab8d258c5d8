"""ONNX Runtime sessions: hash-checked, ONNX only, cached per process, run in batches."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from distributed import Client

from lensflow.errors import ModelMismatchError
from lensflow.registry import ModelManifest, load_manifest
from lensflow.sessions import (
    available_providers,
    load_session,
    new_session,
    run_batched,
    run_bound,
)
from lensflow.testing import onnx_reference


@pytest.fixture(scope="module")
def model(shipped_manifest: ModelManifest) -> tuple[Path, str]:
    """The shipped photometry model's file and sha256."""
    entry = shipped_manifest.photometry
    return shipped_manifest.path_of(entry.file), entry.sha256


def _threads(path: Path, sha256: str) -> int:
    """Intra-op threads of a fresh session with the default setting (runs on a worker)."""
    return int(new_session(path, sha256).get_session_options().intra_op_num_threads)


def test_the_cache_returns_one_session_per_file_and_hash(model: tuple[Path, str]) -> None:
    path, sha256 = model
    first = load_session(path, sha256)
    assert load_session(Path(str(path)), sha256) is first
    assert load_session(path, sha256, 1) is not first, "another thread count, another session"
    assert new_session(path, sha256) is not first


def test_a_session_opened_with_the_thread_count_a_task_resolves_is_the_tasks(
    model: tuple[Path, str],
) -> None:
    """A warm-up opens sessions with the worker's thread count; a task asking with the
    default (0: the worker's, here the machine's cores) gets that same session."""
    path, sha256 = model
    assert load_session(path, sha256, os.cpu_count() or 1) is load_session(path, sha256)


def test_a_wrong_hash_is_refused_and_not_cached(model: tuple[Path, str]) -> None:
    path, sha256 = model
    with pytest.raises(ModelMismatchError, match=rf"{path.name}: sha256 {sha256}.*0{{64}}"):
        load_session(path, "0" * 64)
    n_features = len(load_manifest().photometry.features)
    assert load_session(path, sha256).get_inputs()[0].shape == ["batch", n_features]


def test_only_onnx_files_are_loaded(model: tuple[Path, str], tmp_path: Path) -> None:
    path, sha256 = model
    pickle = Path(shutil.copy(path, tmp_path / "photometry.pkl"))
    with pytest.raises(ModelMismatchError, match=r"photometry\.pkl: only \.onnx model files"):
        load_session(pickle, sha256)
    with pytest.raises(ModelMismatchError, match=r"absent\.onnx: model file missing"):
        load_session(tmp_path / "absent.onnx", sha256)


def test_any_batch_size_gives_the_single_run_scores(model: tuple[Path, str]) -> None:
    path, sha256 = model
    session = load_session(path, sha256)
    n_features = len(load_manifest().photometry.features)
    inputs = np.random.default_rng(3).uniform(16.0, 26.0, size=(23, n_features))
    inputs = inputs.astype(np.float32)
    expected = onnx_reference(path, inputs)
    for batch in (1, 4, 23, 1000):
        got = run_batched(session, inputs, batch=batch)
        assert got.dtype == np.float32 and got.shape == (23,)
        np.testing.assert_allclose(got, expected, rtol=1e-5)
    assert run_batched(session, inputs[:0], batch=8).shape == (0,)


def test_threads_follow_the_dask_worker(model: tuple[Path, str], dask_client: Client) -> None:
    path, sha256 = model
    assert new_session(path, sha256, 3).get_session_options().intra_op_num_threads == 3
    assert _threads(path, sha256) == (os.cpu_count() or 1)
    worker_threads = {
        w["nthreads"] for w in dask_client.scheduler_info(n_workers=-1)["workers"].values()
    }
    assert dask_client.submit(_threads, path, sha256, pure=False).result() in worker_threads


def test_providers_are_those_present_cuda_first() -> None:
    providers = available_providers()
    present = ort.get_available_providers()
    assert providers[-1] == "CPUExecutionProvider"
    assert set(providers) <= set(present) and set(providers) <= {
        "CUDAExecutionProvider",
        "CPUExecutionProvider",
    }
    assert ("CUDAExecutionProvider" in providers) == ("CUDAExecutionProvider" in present)


def test_runs_through_io_binding_give_the_plain_runs_scores(
    shipped_manifest: ModelManifest,
) -> None:
    member = shipped_manifest.ensemble.members[0]
    session = load_session(shipped_manifest.path_of(member.file), member.sha256, 1)
    images = np.random.default_rng(4).normal(0.0, 5.0, (70, 3, 64, 64)).astype(np.float32)
    plain = run_batched(session, images, batch=32)
    bound = run_bound(session, images, batch=32, device="cpu")
    assert plain.shape == bound.shape == (70,)
    assert np.array_equal(plain, bound)
