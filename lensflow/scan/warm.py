"""Warm a scan's workers: import the stage modules and open the ONNX sessions before any task.

The driver registers `WarmStages` before it submits the graph. Dask runs its `setup` on every
worker at registration and on each worker that joins later, so a partition's first task finds
the stage modules imported and the sessions of the scan's models open in the worker's session
cache (`lensflow.sessions`), with the worker's thread count, as the tasks will ask for them;
Zarr reads on as many threads as the worker has (lensflow.cutouts.limit_io_threads).
Registering it again (the next scan on the same cluster) costs little: imports and sessions are
cached per process. Workers started for scans alone can do the imports as they start:
`dask worker --preload lensflow.scan.warm` (see `dask_setup`).
"""

from __future__ import annotations

import importlib
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from distributed import Client
from distributed.diagnostics.plugin import WorkerPlugin

if TYPE_CHECKING:
    from lensflow.modelling import ModellingModels
    from lensflow.registry import ModelManifest

logger = logging.getLogger(__name__)

PLUGIN_NAME = "lensflow-warm-stages"

STAGE_MODULES = ("lensflow.scan.stages", "pyarrow.acero")
"""What a worker imports to run a partition's tasks: the stages (and, through them, all that
they use) and pyarrow.acero, which the cut's filter imports at its first use (with
pyarrow.dataset and pandas: 0.3 s that a worker's first partition paid)."""


class WarmStages(WorkerPlugin):  # type: ignore[misc]  # distributed is untyped here
    """Imports the stage modules, opens the models' sessions and the cutout store on a worker,
    and sets Zarr's read threads to the worker's.

    models: (path, sha256) of each ONNX file the scan runs; cutouts: the scan's cutout store.
    A failure here is logged, never raised: the tasks meet the same problem and report it per
    partition, where the scan records it.
    """

    def __init__(self, models: tuple[tuple[Path, str], ...], cutouts: Path | None = None):
        self.models = models
        self.cutouts = cutouts

    def setup(self, worker: Any) -> None:
        start = time.perf_counter()
        try:
            from lensflow.cutouts import limit_io_threads, open_root

            limit_io_threads(int(worker.state.nthreads))  # before anything below can fail
            for module in STAGE_MODULES:
                importlib.import_module(module)
            import numpy as np

            from lensflow.sessions import load_session
            from lensflow.sky import spatial_index

            spatial_index(np.zeros(1), np.zeros(1))  # imports and first call of the pixel math
            for path, sha256 in self.models:
                load_session(path, sha256, int(worker.state.nthreads))
            if self.cutouts is not None:
                open_root(str(self.cutouts))
        except Exception as exc:  # noqa: BLE001  an optimisation only: the tasks say what is wrong
            logger.warning("warming worker %s failed: %s", worker.address, exc)
            return
        logger.info("worker %s warmed in %.2f s", worker.address, time.perf_counter() - start)


def warm_stages(
    manifest: ModelManifest,
    *,
    cutouts: Path | None = None,
    modelling: ModellingModels | None = None,
) -> WarmStages:
    """The plugin that warms workers for a scan with these models (and modelling networks, where
    the scan runs them) and cutout store."""
    files = [(manifest.photometry.file, manifest.photometry.sha256)]
    files += [(member.file, member.sha256) for member in manifest.ensemble.members]
    paths = [(manifest.path_of(f), sha256) for f, sha256 in files]
    if modelling is not None:
        paths += [(modelling.path_of(m.file), m.sha256) for m in modelling.members]
    return WarmStages(tuple(paths), cutouts)


def warm_workers(client: Client, plugin: WarmStages) -> float:
    """Register the plugin (its setup runs on every worker now, and on those joining later).

    Returns the seconds it took, which a cold cluster spends importing and opening sessions.
    """
    start = time.perf_counter()
    client.register_plugin(plugin, name=PLUGIN_NAME)
    return time.perf_counter() - start


def dask_setup(worker: Any) -> None:
    """A worker preload (`--preload lensflow.scan.warm`): the imports, as the worker starts.

    The scan's models are opened when its driver registers WarmStages.
    """
    WarmStages(()).setup(worker)
