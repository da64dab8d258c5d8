"""`lensflow demo`: a mock sky scanned end to end on a local cluster, with the funnel and recovery.

An injected lens counts as recovered when it is among the exported candidates, i.e. its
ensemble score is at or above the ensemble threshold.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from rich.console import Console

from lensflow.config import ScanConfig
from lensflow.scan.cluster import connect, dashboard_link
from lensflow.scan.state import funnel_totals, read_markers


def run_demo(
    folder: Path, *, sources: int, lenses: int, seed: int, workers: int | None, console: Console
) -> int:
    """Simulate (unless present), scan, export, print the funnel; returns the exit status."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

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
        link = dashboard_link(client)
        if link:
            console.print(f"dashboard: {link}")
        cores = sum(w["nthreads"] for w in client.scheduler_info(n_workers=-1)["workers"].values())
        with Progress(
            TextColumn("[bold]scan"), BarColumn(), MofNCompleteColumn(), console=console
        ) as bar:
            task = bar.add_task("partitions", total=None)
            outcome = run_scan(
                config,
                client=client,
                progress=lambda done, total, _r: bar.update(task, completed=done, total=total),
            )
    exported, threshold = export_scan(
        scan_dir, folder / "candidates.parquet", fmt="parquet", min_score=None
    )
    scanned = time.perf_counter()

    totals = funnel_totals(read_markers(scan_dir))
    truth = pq.read_table(sky_dir / "truth.parquet").to_pandas()
    lens_ids = truth.loc[truth["is_lens"], "id"].to_numpy()
    candidates = pq.read_table(folder / "candidates.parquet", columns=["id"])["id"].to_numpy()
    reached = _ids_reaching_ensemble(scan_dir)
    recovered = np.isin(lens_ids, candidates).sum()
    console.print("\n[bold]funnel[/]")
    for label, key in (
        ("rows read", "rows_read"),
        ("after cuts", "rows_after_cuts"),
        ("after photometry", "rows_after_photometry"),
        (f"candidates (ensemble >= {threshold:g})", "candidates"),
    ):
        console.print(f"  {label:<32} {totals[key]:>10,}")
    if totals["rejected"]:
        console.print(
            "  set aside: " + ", ".join(f"{k} {v:,}" for k, v in sorted(totals["rejected"].items()))
        )
    console.print(
        f"[bold]lenses[/]: {recovered} of {lens_ids.size} injected recovered "
        f"({np.isin(lens_ids, reached).sum()} reached the ensemble)"
    )
    console.print(
        f"scan: {outcome.ran} partitions ({outcome.failed} failed) in {outcome.seconds:.1f} s on "
        f"{cores} cores = {totals['rows_read'] / outcome.seconds / max(cores, 1):,.0f} "
        f"sources/s/core end to end (cluster start excluded); simulation "
        f"{simulated - started:.1f} s; total {scanned - started:.1f} s"
    )
    console.print(f"candidates: {folder / 'candidates.parquet'} ({exported} rows)")
    return outcome.exit_status


def _ids_reaching_ensemble(scan_dir: Path) -> np.ndarray:
    files = [p for p in (scan_dir / "dataset").rglob("Npix=*.parquet")]
    if not files:
        return np.empty(0, np.int64)
    return np.concatenate([pq.read_table(f, columns=["id"])["id"].to_numpy() for f in files])
