"""What a worker imports and holds for a scan: the stage modules only, warmed before any task."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import cloudpickle
import pyarrow.parquet as pq
from distributed import Client, LocalCluster

from lensflow.catalog import partition_files
from lensflow.modelling import load_modelling
from lensflow.registry import ModelManifest
from lensflow.scan import run_scan
from lensflow.scan.run import build_context
from lensflow.scan.warm import WarmStages, warm_stages, warm_workers
from lensflow.simulate.mock_sky import MockSky
from lensflow.sky import PlainPixel
from lensflow.testing import loopback_cluster, sky_config

HEAVY = ("hats", "matplotlib", "pandas", "mocpy", "nested_pandas", "numba", "lark")
"""What the driver imports and a worker does not need (hats pulls in the rest but lark)."""

RUN_HEAVY = tuple(m for m in HEAVY if m != "pandas")
"""pyarrow imports pandas itself at its first conversion (pa.array, pa.scalar) where pandas is
installed, so a worker running tasks holds pandas; never the others."""

WORKER = """
import json, pickle, sys
from lensflow.scan.stages import classify_partitions, select_partitions

with open(sys.argv[1], "rb") as f:
    context, pixels = pickle.load(f)
results = classify_partitions(select_partitions(pixels, context=context), context=context)
print(json.dumps({
    "status": [r.marker.status for r in results],
    "rows_read": [r.marker.rows_read for r in results],
    "imported": sorted(m for m in %r if m in sys.modules),
}))
"""


def _run(code: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_stage_modules_import_none_of_the_drivers_libraries() -> None:
    code = f"import sys, lensflow.scan.stages; print([m for m in {HEAVY!r} if m in sys.modules])"
    assert _run(code).strip() == "[]"


def test_a_worker_runs_partitions_from_the_shipped_context_without_hats(
    mock_sky: MockSky, tmp_path: Path
) -> None:
    """The context the driver ships, unpickled in a fresh process, reads, gates and classifies
    partitions there without importing hats, matplotlib, pandas or the cut grammar."""
    context = build_context(sky_config(mock_sky, tmp_path / "scan"), lock=False)
    shipped = context.stages()
    assert len(cloudpickle.dumps(shipped)) < 32_000
    assert not hasattr(shipped.catalog, "pixels"), "a handle, not the catalog's pixel list"
    pixels = [PlainPixel(p.order, p.pixel) for p in mock_sky.pixels[:3]]
    job = tmp_path / "job.pkl"
    job.write_bytes(cloudpickle.dumps((shipped, pixels)))
    found = json.loads(_run(WORKER % (RUN_HEAVY,), str(job)))
    assert found["imported"] == []
    assert found["status"] == ["done"] * 3
    footers = [
        sum(pq.read_metadata(f).num_rows for f in partition_files(context.catalog, p))
        for p in mock_sky.pixels[:3]
    ]
    assert found["rows_read"] == footers and min(footers) > 0


def test_a_scans_workers_never_import_hats(mock_sky: MockSky, tmp_path: Path) -> None:
    """Everything the driver sends (the context task, the plugin, the chains) is light."""
    with loopback_cluster(n_workers=1) as cluster, Client(cluster) as client:
        outcome = run_scan(sky_config(mock_sky, tmp_path / "scan"), client=client)
        imported = client.run(lambda: [m for m in RUN_HEAVY if m in sys.modules])
    assert outcome.failed == 0 and outcome.ran == len(mock_sky.pixels)
    assert list(imported.values()) == [[]]


def _session_misses(path: str, sha256: str) -> tuple[int, int]:
    """Cache misses before and after a task asks for a session (runs on a worker)."""
    from lensflow.sessions import _cached_session, load_session

    before = _cached_session.cache_info().misses
    load_session(Path(path), sha256)
    return before, _cached_session.cache_info().misses


def test_a_warmed_worker_gives_the_tasks_its_sessions(
    shipped_manifest: ModelManifest, mock_sky: MockSky, dask_client: Client
) -> None:
    modelling = load_modelling()
    plain = warm_stages(shipped_manifest, cutouts=mock_sky.cutouts)
    assert len(plain.models) == 1 + len(shipped_manifest.ensemble.members)
    plugin = warm_stages(shipped_manifest, cutouts=mock_sky.cutouts, modelling=modelling)
    assert plugin.models[: len(plain.models)] == plain.models
    assert len(plugin.models) == len(plain.models) + len(modelling.members)
    assert warm_workers(dask_client, plugin) >= 0.0
    for path, sha256 in plugin.models:
        future = dask_client.submit(_session_misses, str(path), sha256, pure=False)
        before, after = future.result()
        assert after == before, f"{path.name}: the task opened a session the warm-up had not"
    modules = dask_client.run(lambda: "lensflow.scan.stages" in sys.modules)
    assert all(modules.values())


def _zarr_read_threads() -> tuple[object, int]:
    import threading

    import zarr

    pool = [t for t in threading.enumerate() if t.name.startswith(("zarr_pool", "asyncio_"))]
    return zarr.config.get("threading.max_workers"), len(pool)


def test_a_scans_workers_read_zarr_on_as_many_threads_as_they_have(
    mock_sky: MockSky, tmp_path: Path
) -> None:
    with loopback_cluster(n_workers=1) as cluster, Client(cluster) as client:
        broken = WarmStages(((tmp_path / "absent.onnx", "0" * 64),), tmp_path / "absent.zarr")
        warm_workers(client, broken)
        [(limit, _)] = client.run(_zarr_read_threads).values()
        assert limit == 1, "set even by a warm-up that fails on its models"
        assert run_scan(sky_config(mock_sky, tmp_path / "scan"), client=client).failed == 0
        [(limit, threads)] = client.run(_zarr_read_threads).values()
    assert limit == 1, "the worker's one thread"
    assert threads == 1, "one Zarr read thread, not asyncio's default pool of cores + 4"


def test_a_failed_warm_up_is_only_logged_and_the_scan_still_runs(
    mock_sky: MockSky, dask_client: Client, tmp_path: Path
) -> None:
    broken = WarmStages(((tmp_path / "absent.onnx", "0" * 64),), tmp_path / "absent.zarr")
    warm_workers(dask_client, broken)  # each worker logs a warning; nothing is raised here
    outcome = run_scan(sky_config(mock_sky, tmp_path / "scan"), client=dask_client)
    assert outcome.failed == 0 and outcome.ran == len(mock_sky.pixels)


def test_a_worker_preloading_the_warm_module_has_the_stages_before_any_task() -> None:
    with (
        LocalCluster(
            n_workers=1,
            threads_per_worker=1,
            host="127.0.0.1",
            dashboard_address=None,
            preload=["lensflow.scan.warm"],
        ) as cluster,
        Client(cluster) as client,
    ):
        found = client.run(
            lambda: [m for m in ("lensflow.scan.stages", "hats") if m in sys.modules]
        )
    assert list(found.values()) == [["lensflow.scan.stages"]]


def test_the_plugin_pickles_small() -> None:
    plugin = WarmStages(((Path("/models/a.onnx"), "a" * 64),), Path("/data/cutouts.zarr"))
    assert len(pickle.dumps(plugin)) < 1_000
    assert pickle.loads(pickle.dumps(plugin)).models == plugin.models
