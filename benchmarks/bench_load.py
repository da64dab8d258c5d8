"""Load: a scan of 3,000 small partitions with bounded tasks in flight; scheduler memory over it.

The small mock sky's 3,000 rows are re-partitioned one per order-12 pixel (every pixel a
partition of its own) with their cutouts, then scanned by a scheduler and two one-thread
workers run as separate processes, so the scheduler's resident memory (sampled every 0.5 s)
is its own. `max_in_flight` bounds the task chains the driver has submitted; the number of
tasks the scheduler holds is sampled too.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import pyarrow as pa
import pyarrow.parquet as pq
from distributed import Client
from hats.pixel_math.spatial_index import SPATIAL_INDEX_COLUMN, spatial_index_to_healpix

from benchmarks.common import machine, write_result
from lensflow.config import ScanConfig
from lensflow.cutouts import (
    create_store,
    list_groups,
    open_store,
    partition_group,
    read_group,
    write_group,
)
from lensflow.layout import leaf_path, write_catalog_metadata
from lensflow.scan import run_scan
from lensflow.scan.state import read_markers
from lensflow.sky import HealpixPixel
from lensflow.testing import make_small_sky, sky_config

PIXELS = 3_000
ORDER = 12
MAX_IN_FLIGHT = 32


def _many_pixel_sky(base: Path) -> tuple[ScanConfig, int]:
    """The small sky with each row in a partition of its own (order 12); returns the config."""
    sky = make_small_sky(base / "sky")
    table = pq.read_table(sky.catalog / "dataset")
    index = table[SPATIAL_INDEX_COLUMN].to_numpy()
    fine = spatial_index_to_healpix(index, target_order=ORDER)
    pixels = sorted(set(fine.tolist()))
    catalog = base / "many" / "catalog"
    for number in pixels:
        rows = table.filter(pa.array(fine == number)).sort_by(SPATIAL_INDEX_COLUMN)
        path = leaf_path(catalog, HealpixPixel(ORDER, number))
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(rows, path)
    write_catalog_metadata(
        catalog,
        name="many",
        pixels=[HealpixPixel(ORDER, n) for n in pixels],
        ra_column=sky_config(sky, base).catalog.columns.ra,
        dec_column=sky_config(sky, base).catalog.columns.dec,
        total_rows=table.num_rows,
    )
    info = open_store(sky.cutouts)
    groups = [read_group(sky.cutouts, g) for g in list_groups(sky.cutouts)]
    ids = np.concatenate([g[0] for g in groups])
    images = np.concatenate([g[1] for g in groups])
    store = base / "many" / "cutouts.zarr"
    create_store(
        store,
        bands=info.bands,
        pixel_scale_arcsec=info.pixel_scale_arcsec,
        psf_fwhm_arcsec=info.psf_fwhm_arcsec,
        cutout_size=info.cutout_size,
    )
    id_column = sky_config(sky, base).catalog.columns.id
    for number in pixels:
        pixel_ids = table.filter(pa.array(fine == number))[id_column].to_numpy()
        keep = np.isin(ids, pixel_ids)
        if keep.any():
            write_group(
                store,
                partition_group(HealpixPixel(ORDER, number)),
                ids=ids[keep],
                images=images[keep],
            )
    config = sky_config(
        sky,
        base / "many" / "scan",
        catalog={"path": catalog},
        cutouts={"path": store},
        cluster={"max_in_flight": MAX_IN_FLIGHT},
    )
    return config, len(pixels)


def _start(args: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_" + args[0], *args[1:]],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        config, pixels = _many_pixel_sky(Path(tmp))
        address_file = Path(tmp) / "scheduler.json"
        scheduler = _start(
            [
                "scheduler",
                "--host",
                "127.0.0.1",
                "--no-dashboard",
                "--scheduler-file",
                str(address_file),
            ]
        )
        while not address_file.exists():
            time.sleep(0.1)
        workers = [
            _start(
                [
                    "worker",
                    "--scheduler-file",
                    str(address_file),
                    "--nthreads",
                    "1",
                    "--host",
                    "127.0.0.1",
                    "--no-dashboard",
                ]
            )
            for _ in range(2)
        ]
        samples: list[tuple[float, float, int]] = []
        stop = threading.Event()
        try:
            with Client(scheduler_file=str(address_file)) as client:
                client.wait_for_workers(2)
                process = psutil.Process(scheduler.pid)

                def sample() -> None:
                    start = time.perf_counter()
                    while not stop.is_set():
                        tasks = client.run_on_scheduler(
                            lambda dask_scheduler: len(dask_scheduler.tasks)
                        )
                        rss = process.memory_info().rss / 2**20
                        samples.append((time.perf_counter() - start, rss, int(tasks)))
                        stop.wait(0.5)

                sampler = threading.Thread(target=sample)
                rss_before = process.memory_info().rss / 2**20
                sampler.start()
                start = time.perf_counter()
                outcome = run_scan(config, client=client)
                wall = time.perf_counter() - start
                stop.set()
                sampler.join()
                done = sum(m.status == "done" for m in read_markers(config.output.path))
        finally:
            stop.set()
            for process_ in [*workers, scheduler]:
                process_.terminate()
                process_.wait()
    rss = np.array([s[1] for s in samples])
    tasks = np.array([s[2] for s in samples])
    tenth = max(1, len(rss) // 10)
    first, last = rss[:tenth].mean(), rss[-tenth:].mean()
    write_result(
        "load",
        [
            f"# Load: {pixels:,} partitions, max_in_flight {MAX_IN_FLIGHT}, 2 one-thread workers",
            "",
            f"machine: {machine()}; shared with other jobs (wall time is indicative only)",
            "",
            "| measure | value |",
            "| --- | ---: |",
            f"| partitions done / failed | {done:,} / {outcome.failed:,} |",
            f"| scan wall time (s) | {wall:.1f} |",
            f"| partitions per second | {pixels / wall:.1f} |",
            f"| scheduler RSS before the scan (MiB) | {rss_before:.0f} |",
            f"| scheduler RSS, first / last tenth of the scan (MiB) | {first:.0f} / {last:.0f} |",
            f"| scheduler RSS, max (MiB) | {rss.max():.0f} |",
            f"| tasks held by the scheduler, max (2 per chain) | {tasks.max()} |",
            f"| samples | {len(samples)} |",
        ],
    )


if __name__ == "__main__":
    main()
