"""The helpers lensflow ships for tests: a loopback cluster, mock skies, survey-like tables."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from distributed import Client

from lensflow.cluster import dashboard_link
from lensflow.config import ScanConfig
from lensflow.io import write_parquet, write_text
from lensflow.layout import leaf_path
from lensflow.simulate.mock_sky import MockSky
from lensflow.sky import HealpixPixel
from lensflow.testing import (
    SMALL_SKY_LENSES,
    SMALL_SKY_SOURCES,
    copy_sky,
    leaf_inodes,
    loopback_cluster,
    onnx_reference,
    sky_config,
    survey_frame,
)


def test_importing_the_helpers_needs_no_pytest() -> None:
    code = "import sys, lensflow.testing; print(sorted({'pytest', '_pytest'} & set(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == "[]"


def test_the_session_cluster_is_one_thread_processes_on_loopback(dask_client: Client) -> None:
    workers = dask_client.scheduler_info(n_workers=-1)["workers"]
    assert len(workers) == 2
    assert all(address.startswith("tcp://127.0.0.1:") for address in workers)
    assert {w["nthreads"] for w in workers.values()} == {1}
    pids = dask_client.run(os.getpid)
    assert len(set(pids.values())) == 2 and os.getpid() not in pids.values()
    link = dashboard_link(dask_client)
    assert link is None or link.startswith("http://127.0.0.1:"), "HTTP stays on loopback"


def test_loopback_cluster_starts_the_workers_asked_for() -> None:
    with loopback_cluster(n_workers=1) as cluster, Client(cluster) as client:
        client.wait_for_workers(1)
        assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
        assert len(client.scheduler_info(n_workers=-1)["workers"]) == 1


def test_the_small_sky_holds_what_its_fixture_promises(mock_sky: MockSky) -> None:
    truth = pq.read_table(mock_sky.truth, columns=["id", "is_lens"])
    assert truth.num_rows == SMALL_SKY_SOURCES == 3_000
    assert len(mock_sky.lens_ids) == SMALL_SKY_LENSES == 12
    assert sum(truth["is_lens"].to_pylist()) == SMALL_SKY_LENSES


def test_sky_config_points_the_output_elsewhere_and_changes_only_what_it_is_told(
    mock_sky: MockSky, tmp_path: Path
) -> None:
    original = ScanConfig.from_toml(mock_sky.config)
    plain = sky_config(mock_sky, tmp_path / "out")
    assert plain.output.path == tmp_path / "out"
    assert plain.model_copy(update={"output": original.output}) == original
    changed = sky_config(
        mock_sky, tmp_path / "out", cuts={"expression": "rKronMag < 21"}, ensemble={"batch_size": 8}
    )
    assert changed.cuts.expression == "rKronMag < 21" and changed.ensemble.batch_size == 8
    assert changed.ensemble.threshold == original.ensemble.threshold
    assert (changed.catalog, changed.cutouts) == (original.catalog, original.cutouts)


def _fake_sky(root: Path) -> MockSky:
    """A folder laid out as a mock sky, with a scan inside it, made without the simulator."""
    for name in ("catalog/dataset/part.parquet", "cutouts.zarr/zarr.json", "scan/marker.json"):
        write_text(root / name, name)
    write_parquet(root / "truth.parquet", pa.table({"id": pa.array([1, 2], pa.int64())}))
    write_text(root / "scan.toml", '[catalog]\npath = "catalog"\n')
    return MockSky(
        root=root,
        catalog=root / "catalog",
        cutouts=root / "cutouts.zarr",
        truth=root / "truth.parquet",
        config=root / "scan.toml",
        pixels=[HealpixPixel(2, 5)],
        lens_ids=np.array([2], dtype=np.int64),
    )


def test_copy_sky_gives_a_private_copy_without_scans(tmp_path: Path) -> None:
    sky = _fake_sky(tmp_path / "sky")
    copy = copy_sky(sky, tmp_path / "copy")
    assert copy.root == tmp_path / "copy"
    for name in ("catalog", "cutouts", "truth", "config"):
        path = getattr(copy, name)
        assert path == copy.root / getattr(sky, name).relative_to(sky.root)
        assert path.exists()
    assert (copy.catalog / "dataset" / "part.parquet").read_text() == "catalog/dataset/part.parquet"
    assert not (copy.root / "scan").exists()
    assert copy.pixels == sky.pixels and copy.lens_ids is sky.lens_ids
    copy.truth.write_bytes(b"damaged")
    assert pq.read_table(sky.truth)["id"].to_pylist() == [1, 2]


def test_leaf_inodes_change_exactly_where_a_file_was_replaced(tmp_path: Path) -> None:
    pixels = [HealpixPixel(3, 10), HealpixPixel(4, 700)]
    table = pa.table({"id": pa.array([1], pa.int64())})
    for pixel in pixels:
        write_parquet(leaf_path(tmp_path, pixel), table)
    before = leaf_inodes(tmp_path, pixels)
    assert list(before) == ["3/10", "4/700"]
    write_parquet(leaf_path(tmp_path, pixels[1]), table)
    after = leaf_inodes(tmp_path, pixels)
    assert after["3/10"] == before["3/10"] and after["4/700"] != before["4/700"]


def test_survey_frame_is_a_reproducible_survey_export() -> None:
    frame = survey_frame(1_000, seed=3)
    pd.testing.assert_frame_equal(frame, survey_frame(1_000, seed=3))
    assert not frame.equals(survey_frame(1_000, seed=4))
    assert len(frame) == 1_000 and frame["objID"].is_unique
    assert frame["objID"].dtype == np.int64 and frame["objID"].min() >= 2**58
    assert frame.isna().sum().to_dict() == {c: 20 if c == "gKronMag" else 0 for c in frame}
    assert frame["raStack"].between(20, 60).all() and frame["decStack"].between(-10, 10).all()
    assert (frame["rPSFMag"] >= frame["rKronMag"]).all()


def test_onnx_reference_is_a_plain_run_of_the_graph(tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", ["x"], ["mean"], axes=[1], keepdims=1),
            helper.make_node("Sigmoid", ["mean"], ["p"]),
        ],
        "mean_sigmoid",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3])],
        [helper.make_tensor_value_info("p", TensorProto.FLOAT, ["batch", 1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "mean_sigmoid.onnx"))
    x = np.random.default_rng(0).normal(0, 2, size=(6, 3)).astype(np.float32)
    got = onnx_reference(tmp_path / "mean_sigmoid.onnx", x)
    assert got.dtype == np.float32 and got.shape == (6,)
    np.testing.assert_allclose(got, 1 / (1 + np.exp(-x.mean(axis=1))), rtol=1e-6)
