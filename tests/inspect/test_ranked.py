"""The candidates inspection shows: the scan's done partitions, ranked, cut, with their cutouts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lensflow.cutouts import list_groups, read_group
from lensflow.errors import ConfigError, ScanStateError
from lensflow.inspect.ranked import ScanCandidates, rgb_bands_of
from lensflow.scan.state import read_fingerprint


def every_candidate(scan: Path) -> pa.Table:
    files = sorted((scan / "dataset").rglob("*.parquet"))
    return pa.concat_tables([pq.read_table(f) for f in files])


def test_every_candidate_is_ranked_by_ensemble_score(
    scanned: Path, candidates: ScanCandidates
) -> None:
    table = every_candidate(scanned)
    assert len(candidates) == table.num_rows > 3
    scores = candidates.table["ensemble_score"].to_numpy()
    assert np.all(np.diff(scores) <= 0)
    assert sorted(candidates.ids) == sorted(table["id"].to_pylist())


def test_the_default_cut_is_the_scans_threshold(scanned: Path, candidates: ScanCandidates) -> None:
    record = read_fingerprint(scanned)
    assert record is not None
    threshold = float(record["parts"]["ensemble_threshold"])
    default = ScanCandidates(scanned)
    expected = int((candidates.table["ensemble_score"].to_numpy() >= threshold).sum())
    assert default.min_score == threshold
    assert len(default) == expected
    assert default.ids == candidates.ids[:expected]


def test_top_keeps_the_best(scanned: Path, candidates: ScanCandidates) -> None:
    assert ScanCandidates(scanned, top=3, min_score=0.0).ids == candidates.ids[:3]
    with pytest.raises(ConfigError, match="positive"):
        ScanCandidates(scanned, top=0)


def test_a_cutout_is_the_one_the_scan_scored(candidates: ScanCandidates) -> None:
    store = candidates.store.path
    stored = {}
    for group in list_groups(store):
        ids, images = read_group(store, group)
        stored.update({int(i): images[n] for n, i in enumerate(ids)})
    for candidate_id in candidates.ids:
        np.testing.assert_array_equal(candidates.cutout(candidate_id), stored[candidate_id])
    with pytest.raises(ConfigError, match="not among"):
        candidates.cutout(12345)


def test_rows_hold_the_member_scores(candidates: ScanCandidates) -> None:
    row = candidates.rows()[0]
    assert {f"score_{m}" for m in candidates.members} <= set(row)
    assert "_order" not in row and "config_fingerprint" not in row
    assert candidates.members  # the shipped ensemble has members


def test_a_folder_that_is_no_scan_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ScanStateError, match="not a scan folder"):
        ScanCandidates(tmp_path)


def test_rgb_bands_follow_the_shipped_profiles() -> None:
    assert rgb_bands_of(("g", "r", "i")) == ("i", "r", "g")
    assert rgb_bands_of(("g", "r", "i", "z", "y")) == ("y", "z", "i")  # hsc's three reddest
    assert rgb_bands_of(("u", "b", "v")) == ("v", "b", "u")  # unknown: the last three
