"""Helpers for testing lensflow and the projects built on it: a cluster, skies, survey tables.

Plain functions, no pytest: a project's own conftest wraps them in fixtures. The cluster is
the one `lensflow.cluster.local_cluster` starts, with one-thread worker processes on 127.0.0.1
and the dashboard off; skies are small mock skies written by lensflow's simulator; `survey_frame`
is a table as a survey would export it, made without the simulator, so readers are checked
against data lensflow did not write.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from lensflow.cluster import local_cluster
from lensflow.config import ClusterConfig, ScanConfig
from lensflow.layout import leaf_path
from lensflow.sky import HealpixPixel, pixel_key

if TYPE_CHECKING:
    from distributed import Client, LocalCluster

    from lensflow.simulate.mock_sky import MockSky

__all__ = [
    "SMALL_SKY_LENSES",
    "SMALL_SKY_SEED",
    "SMALL_SKY_SOURCES",
    "copy_sky",
    "hats_import",
    "leaf_inodes",
    "loopback_cluster",
    "make_small_sky",
    "onnx_reference",
    "settle",
    "sky_config",
    "survey_frame",
]

SMALL_SKY_SOURCES = 3_000
SMALL_SKY_LENSES = 12
SMALL_SKY_SEED = 7


def loopback_cluster(n_workers: int = 2) -> LocalCluster:
    """A LocalCluster of `n_workers` processes, one thread each, on 127.0.0.1, dashboard off.

    The scheduler still serves its plain HTTP endpoints (health, metrics), on 127.0.0.1.
    """
    return local_cluster(ClusterConfig(n_workers=n_workers, threads_per_worker=1, dashboard=False))


def settle(cluster: LocalCluster, client: Client, *, timeout: float = 120.0) -> None:
    """Wait until every nanny of `cluster` has its worker process up and registered.

    After a test kills a worker its nanny starts another; closing the cluster while that one
    is still starting can hang in the nanny's kill (it waits for a start that never ends).

    Raises:
        TimeoutError: not settled within `timeout` seconds.
    """
    import time

    from distributed.core import Status

    deadline = time.monotonic() + timeout
    while True:
        registered = set(client.scheduler_info(n_workers=-1)["workers"])
        processes = [getattr(nanny, "process", None) for nanny in cluster.workers.values()]
        if all(
            p is not None and p.status == Status.running and p.worker_address in registered
            for p in processes
        ):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"the cluster's workers did not settle within {timeout:.0f} s")
        time.sleep(0.1)


def make_small_sky(out: Path, *, client: Client | None = None) -> MockSky:
    """A small mock sky under `out`: 3,000 sources at mixed orders, 12 lenses, their cutouts.

    Simulated on `client`, or on a local cluster started for the purpose when it is None.
    """
    from lensflow.simulate.mock_sky import make_mock_sky

    return make_mock_sky(
        out,
        n_sources=SMALL_SKY_SOURCES,
        n_lenses=SMALL_SKY_LENSES,
        seed=SMALL_SKY_SEED,
        client=client,
    )


def copy_sky(sky: MockSky, target: Path) -> MockSky:
    """A private copy of a mock sky (catalog, cutouts, truth, config) to damage.

    Any scan folder inside the sky is left behind.
    """
    shutil.copytree(sky.root, target, ignore=shutil.ignore_patterns("scan"))
    return sky._replace(
        root=target,
        catalog=target / sky.catalog.relative_to(sky.root),
        cutouts=target / sky.cutouts.relative_to(sky.root),
        truth=target / sky.truth.relative_to(sky.root),
        config=target / sky.config.relative_to(sky.root),
    )


def sky_config(sky: MockSky, output: Path, **changes: Any) -> ScanConfig:
    """The sky's own scan config, writing to `output`, with sections updated by `changes`.

    `sky_config(sky, out, cuts={"expression": "rKronMag < 21"})` changes only the cut.
    """
    config = ScanConfig.from_toml(sky.config)
    update: dict[str, Any] = {"output": config.output.model_copy(update={"path": output})}
    for section, values in changes.items():
        update[section] = getattr(config, section).model_copy(update=values)
    return config.model_copy(update=update)


def leaf_inodes(root: Path, pixels: Iterable[HealpixPixel]) -> dict[str, tuple[int, int]]:
    """(inode, mtime in ns) of each pixel's leaf file under `root`, keyed by "K/P".

    Two snapshots differ exactly where a file was replaced, so a test can show which
    partitions a run rewrote and which it left alone.
    """
    stats = {}
    for pixel in pixels:
        stat = leaf_path(root, pixel).stat()
        stats[pixel_key(pixel)] = (stat.st_ino, stat.st_mtime_ns)
    return stats


def onnx_reference(path: Path, inputs: np.ndarray) -> np.ndarray:
    """A one-input probability model run once by plain ONNX Runtime on the CPU: float32 (N,).

    No cache, batches, hash check or thread settings: the reference lensflow's scorers are
    checked against.
    """
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (result,) = session.run(None, {session.get_inputs()[0].name: inputs})
    return np.asarray(result, dtype=np.float32).reshape(-1)


def survey_frame(n: int, seed: int) -> pd.DataFrame:
    """A Pan-STARRS-like source table, not made by lensflow's simulator: what a survey exports.

    `n` rows in RA 20-60 deg, Dec -10-10 deg; objID int64 above 2**58 (so a pass through float64
    would show); Kron magnitudes g, r, i, z, rPSFMag, flags; n // 50 rows without gKronMag (NaN).
    """
    rng = np.random.default_rng(seed)
    dec = rng.uniform(-10.0, 10.0, n)
    ra = rng.uniform(20.0, 60.0, n)
    r = rng.uniform(17.0, 24.0, n)
    frame = pd.DataFrame(
        {
            "objID": (np.int64(1) << 58) + np.arange(n, dtype=np.int64) * 7919,
            "raStack": ra,
            "decStack": dec,
            "gKronMag": r + rng.normal(0.8, 0.3, n),
            "rKronMag": r,
            "iKronMag": r - rng.normal(0.4, 0.2, n),
            "zKronMag": r - rng.normal(0.6, 0.2, n),
            "rPSFMag": r + np.abs(rng.normal(0.3, 0.3, n)),
            "flags": rng.integers(0, 4, n).astype(np.int32),
        }
    )
    frame.loc[rng.choice(n, n // 50, replace=False), "gKronMag"] = np.nan
    return frame


def hats_import(
    source: Path,
    out: Path,
    *,
    name: str,
    ra_column: str,
    dec_column: str,
    client: Client,
    **options: Any,
) -> Path:
    """Partition a Parquet file into a HATS catalog with hats-import (not lensflow's writer).

    `options` go to hats-import's ImportArguments (pixel_threshold, highest_healpix_order, ...).
    Returns the catalog folder, `out / name`. Needs the hats-import package.
    """
    from hats_import.catalog.arguments import ImportArguments
    from hats_import.pipeline import pipeline_with_client

    arguments = ImportArguments(
        output_artifact_name=name,
        input_file_list=[str(source)],
        file_reader="parquet",
        ra_column=ra_column,
        dec_column=dec_column,
        output_path=str(out),
        progress_bar=False,
        tmp_dir=str(out / f"{name}_tmp"),
        **options,
    )
    pipeline_with_client(arguments, client)
    return out / name
