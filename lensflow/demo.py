"""`lensflow demo`: a mock sky scanned end to end on a local cluster, with the funnel and recovery.

An injected lens counts as recovered when it is among the exported candidates, i.e. its
ensemble score is at or above the ensemble threshold.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
from rich.console import Console

from lensflow import views
from lensflow.cluster import connect, dashboard_link
from lensflow.config import ScanConfig
from lensflow.scan.run import ScanOutcome
from lensflow.scan.state import funnel_totals, read_markers


@dataclass(frozen=True)
class DemoReport:
    """What a demo run found: the funnel, the injected lenses recovered, times, the export.

    seconds are wall-clock; `reached`: injected lenses among the rows scored by the ensemble.
    """

    outcome: ScanOutcome
    totals: Mapping[str, Any]
    threshold: float
    lenses: int
    recovered: int
    reached: int
    cores: int
    simulate_seconds: float
    total_seconds: float
    candidates: Path
    exported: int

    @property
    def exit_status(self) -> int:
        """The scan's: 0 when every partition is done, 2 when some failed."""
        return self.outcome.exit_status


def run_demo(
    folder: Path, *, sources: int, lenses: int, seed: int, workers: int | None, console: Console
) -> DemoReport:
    """Simulate (unless present), scan, export; what it finds, for `views.print_demo`."""
    from lensflow.scan import run_scan
    from lensflow.scan.export import export_scan
    from lensflow.simulate.mock_sky import make_mock_sky

    folder = Path(folder).resolve()
    sky_dir, scan_dir = folder / "sky", folder / "scan"
    started = time.perf_counter()
    config_path = sky_dir / "scan.toml"
    if not config_path.exists():
        shutil.rmtree(sky_dir, ignore_errors=True)
        console.print(f"simulating a mock sky: {sources:,} sources, {lenses} lenses (seed {seed})")
        make_mock_sky(sky_dir, n_sources=sources, n_lenses=lenses, seed=seed, workers=workers)
    else:
        console.print(f"using the mock sky in {sky_dir}")
    simulated = time.perf_counter()

    shutil.rmtree(scan_dir, ignore_errors=True)
    config = ScanConfig.from_toml(config_path)
    config = config.model_copy(
        update={
            "output": config.output.model_copy(update={"path": scan_dir}),
            "cluster": config.cluster.model_copy(update={"n_workers": workers}),
        }
    )
    with connect(config.cluster) as client:
        views.print_dashboard(console, dashboard_link(client))
        cores = sum(w["nthreads"] for w in client.scheduler_info(n_workers=-1)["workers"].values())
        with views.scan_progress(console) as hook:
            outcome = run_scan(config, client=client, progress=hook)
    candidates = folder / "candidates.parquet"
    exported, threshold = export_scan(
        scan_dir, candidates, fmt="parquet", min_score=None, overwrite=True
    )
    scanned = time.perf_counter()

    from lensflow.recover import injected_lenses, recover, write_recovery

    recovery = write_recovery(
        recover(scan_dir, injected_lenses(sky_dir)), folder / "recovery.csv", overwrite=True
    )
    console.print(f"recovery report: {recovery.table}, {recovery.plot}", markup=False)
    truth = pq.read_table(sky_dir / "truth.parquet").to_pandas()
    lens_ids = truth.loc[truth["is_lens"], "id"].to_numpy()
    exported_ids = pq.read_table(candidates, columns=["id"])["id"].to_numpy()
    return DemoReport(
        outcome=outcome,
        totals=funnel_totals(read_markers(scan_dir)),
        threshold=threshold,
        lenses=int(lens_ids.size),
        recovered=int(np.isin(lens_ids, exported_ids).sum()),
        reached=int(np.isin(lens_ids, _ids_reaching_ensemble(scan_dir)).sum()),
        cores=cores,
        simulate_seconds=simulated - started,
        total_seconds=scanned - started,
        candidates=candidates,
        exported=exported,
    )


def _ids_reaching_ensemble(scan_dir: Path) -> np.ndarray:
    files = [p for p in (scan_dir / "dataset").rglob("Npix=*.parquet")]
    if not files:
        return np.empty(0, np.int64)
    return np.concatenate([pq.read_table(f, columns=["id"])["id"].to_numpy() for f in files])
