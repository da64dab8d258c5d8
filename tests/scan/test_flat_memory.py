"""Load: a worker's peak memory is flat in the partition's size (2,000,000 rows vs 250,000).

Each partition is scanned alone by a fresh one-thread worker (1 GiB limit), with the sky of
tests/scan/test_large_pixel.py (cut survivors have cutouts); the peak is the worker process's
own high-water mark (VmHWM), imports, warm-up and ONNX sessions included.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from lensflow.cluster import connect
from lensflow.config import ScanConfig
from lensflow.cutouts import create_store, partition_group, write_group
from lensflow.layout import leaf_path, write_catalog_metadata
from lensflow.scan import run_scan
from lensflow.scan.state import Marker, read_markers
from lensflow.surveys import survey_profile
from tests.scan.test_large_pixel import CUT, PIXEL, _catalog_table, _reference_cut

pytestmark = [
    pytest.mark.load,
    pytest.mark.skipif(sys.platform != "linux", reason="VmHWM is Linux's"),
]


def _high_water_mark(status: str) -> int:
    """VmHWM of a /proc/PID/status text, in bytes."""
    [line] = [line for line in status.splitlines() if line.startswith("VmHWM:")]
    return int(line.split()[1]) * 1024


def _scan_one_partition(base: Path, rows: int) -> tuple[Marker, int, int]:
    """Scan a `rows`-row partition; its marker, the rows after the reference cut, the peak."""
    table = _catalog_table(np.random.default_rng(29), rows=rows)
    catalog = base / "catalog"
    leaf = leaf_path(catalog, PIXEL)
    leaf.parent.mkdir(parents=True)
    pq.write_table(table, leaf, row_group_size=250_000)
    write_catalog_metadata(
        catalog,
        name="flat",
        pixels=[PIXEL],
        ra_column="raStack",
        dec_column="decStack",
        total_rows=rows,
    )
    bright = np.sort(_reference_cut(table)["objID"].to_numpy())
    del table
    survey = survey_profile("lsst")
    store = base / "cutouts.zarr"
    create_store(store, **survey.store_attributes())
    shape = (bright.size, len(survey.bands), survey.cutout_size, survey.cutout_size)
    images = np.random.default_rng(1).normal(0.0, 5.0, shape).astype(np.float32)
    write_group(store, partition_group(PIXEL), ids=bright, images=images)

    columns = {"id": "objID", "ra": "raStack", "dec": "decStack"}
    for kind, template in [("mag", "KronMag"), ("magerr", "KronMagErr"), ("psfmag", "PSFMag")]:
        columns |= {f"{kind}_{b}": f"{b}{template}" for b in survey.catalog_bands}
    columns |= {f"size_{b}": f"{b}MomentRadius" for b in survey.catalog_bands}
    columns |= {"extendedness": "extendedness", "flags": "qualityFlag"}
    config = ScanConfig.model_validate(
        {
            "catalog": {"path": catalog, "columns": columns},
            "cuts": {"expression": CUT},
            "cutouts": {"path": store},
            "output": {"path": base / "scan"},
            "cluster": {
                "n_workers": 1,
                "threads_per_worker": 1,
                "memory_limit": "1GiB",
                "dashboard": False,
                "allowed_failures": 0,
            },
        }
    )
    with connect(config.cluster) as client:
        assert run_scan(config, client=client).failed == 0
        [status] = client.run(Path.read_text, Path("/proc/self/status")).values()
    [marker] = read_markers(config.output.path)
    return marker, int(bright.size), _high_water_mark(status)


def test_peak_worker_memory_is_flat_in_the_partitions_size(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    peaks = {}
    for rows in (250_000, 2_000_000):
        marker, after_cuts, peak = _scan_one_partition(tmp_path_factory.mktemp(f"r{rows}"), rows)
        assert marker.status == "done", marker.error
        assert (marker.rows_read, marker.rows_after_cuts) == (rows, after_cuts)
        assert marker.rows_after_photometry > 0 and "missing_cutout" not in marker.rejected
        peaks[rows] = peak
    assert peaks[2_000_000] <= 1.2 * peaks[250_000], {k: v >> 20 for k, v in peaks.items()}
    assert peaks[2_000_000] < 0.95 * 2**30
