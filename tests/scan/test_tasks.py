"""Small partitions share a task chain; each keeps its own outcome, marker and candidate file."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from distributed import Client, get_task_stream

from lensflow.catalog import open_catalog, partition_files
from lensflow.scan import run_scan
from lensflow.scan import tasks as scan_tasks
from lensflow.scan.state import read_markers
from lensflow.scan.tasks import largest_first, partition_rows, task_groups
from lensflow.simulate.mock_sky import MockSky
from lensflow.sky import HealpixPixel
from lensflow.testing import sky_config


def test_small_partitions_are_grouped_up_to_the_row_and_pixel_limits() -> None:
    pixels = [HealpixPixel(5, n) for n in range(8)]
    rows = {(5, 0): 400, (5, 1): 500, (5, 2): 300, (5, 3): 5_000, (5, 4): 100, (5, 6): 200}
    rows |= {(5, 7): 250}
    groups = task_groups(pixels, rows=rows, rows_per_task=1_000, max_pixels=2)
    # 0+1 hold 900 rows, so 2 starts a group; 3 (large) and 5 (size unknown) go alone as they
    # come; 4 joins 2, which then has max_pixels; 6 and 7 share the last.
    assert [[p.pixel for p in g] for g in groups] == [[0, 1], [3], [5], [2, 4], [6, 7]]
    assert sorted(p for g in groups for p in g) == pixels
    assert task_groups(pixels, rows=rows, rows_per_task=0, max_pixels=8) == [[p] for p in pixels]


def test_a_row_limit_never_packs_past_itself() -> None:
    pixels = [HealpixPixel(6, n) for n in range(50)]
    rows = {(6, n): 10 + 7 * n for n in range(50)}
    for limit in (100, 333, 1_000):
        for group in task_groups(pixels, rows=rows, rows_per_task=limit, max_pixels=50):
            total = sum(rows[(p.order, p.pixel)] for p in group)
            assert total <= limit or len(group) == 1


def test_row_counts_come_from_the_catalogs_metadata(mock_sky: MockSky, tmp_path: Path) -> None:
    catalog = open_catalog(mock_sky.catalog)
    rows = partition_rows(catalog)
    footers = {
        (p.order, p.pixel): sum(pq.read_metadata(f).num_rows for f in partition_files(catalog, p))
        for p in catalog.pixels
    }
    assert rows == footers and sum(rows.values()) == 3_000

    copy = Path(shutil.copytree(mock_sky.catalog, tmp_path / "catalog"))
    (copy / "dataset" / "_metadata").unlink()
    assert partition_rows(open_catalog(copy)) == {}, "no _metadata: sizes unknown"


def test_an_oversized_metadata_file_is_not_read(
    mock_sky: MockSky, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog = open_catalog(mock_sky.catalog)
    size = (mock_sky.catalog / "dataset" / "_metadata").stat().st_size
    monkeypatch.setattr(scan_tasks, "METADATA_LIMIT", size - 1)
    assert partition_rows(catalog) == {}


def test_a_grouped_scan_writes_what_one_task_per_partition_writes(
    mock_sky: MockSky, dask_client: Client, tmp_path: Path
) -> None:
    outcomes, keys = {}, {}
    for rows_per_task in (0, 20_000):
        output = tmp_path / f"scan-{rows_per_task}"
        config = sky_config(mock_sky, output, cluster={"rows_per_task": rows_per_task})
        with get_task_stream(dask_client) as stream:
            outcome = run_scan(config, client=dask_client)
        assert outcome.failed == 0 and outcome.ran == len(mock_sky.pixels)
        keys[rows_per_task] = [t["key"] for t in stream.data if str(t["key"]).startswith("scan-")]
        outcomes[rows_per_task] = {
            m.pixel: (m.status, m.rows_read, m.rows_after_photometry, m.sha256)
            for m in read_markers(output)
        }
    assert outcomes[0] == outcomes[20_000], "same markers and candidate files, pixel by pixel"
    assert len(outcomes[0]) == len(mock_sky.pixels)
    assert len(keys[0]) == len(mock_sky.pixels)
    assert len(keys[20_000]) < len(mock_sky.pixels), "small partitions shared tasks"
    assert any("+" in str(key) for key in keys[20_000])
    streamed = [str(t["key"]) for t in stream.data]
    assert not any(key.startswith(("select-", "classify-")) for key in streamed), (
        "without GPU workers a partition's two stages are one task"
    )


def test_the_largest_tasks_go_first_and_unknown_sizes_last() -> None:
    small, big, unknown, middle = (HealpixPixel(5, k) for k in range(4))
    rows = {(5, 0): 10, (5, 1): 5_000, (5, 3): 700}
    groups = [[small], [big], [unknown], [middle, small]]
    assert largest_first(groups, rows=rows) == [[big], [middle, small], [small], [unknown]]
