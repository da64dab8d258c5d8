"""Known lenses cross-matched with a scan: recovered with scores and ranks, missed with the
stage that lost them, checked against the candidate files and the catalog read directly."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from lensflow.config import ScanConfig
from lensflow.cuts import parse_cuts
from lensflow.errors import ConfigError, ScanStateError
from lensflow.layout import leaf_path
from lensflow.recover import STAGES, injected_lenses, recover
from lensflow.recover.match import (
    BELOW_THRESHOLD,
    CUT,
    GATED,
    NO_CUTOUT,
    NOT_DONE,
    NOT_IN_CATALOG,
    RECOVERED,
)
from lensflow.scan.state import marker_path, read_markers
from lensflow.simulate.mock_sky import MockSky


def scored_candidates(scan: Path) -> pd.DataFrame:
    """Every row the ensemble scored, read from the candidate files, best first (ties by id)."""
    frames = [pq.read_table(p).to_pandas() for p in (scan / "dataset").rglob("Npix=*.parquet")]
    table = pd.concat(frames, ignore_index=True)
    return table.sort_values(["ensemble_score", "id"], ascending=[False, True]).reset_index(
        drop=True
    )


def catalog_rows(sky: MockSky) -> pd.DataFrame:
    return pd.concat(
        (pq.read_table(p).to_pandas() for p in sky.catalog.rglob("Npix=*.parquet")),
        ignore_index=True,
    )


def test_injected_lenses_recovered_ranked_or_lost_at_their_stage(
    scanned: Path, mock_sky: MockSky
) -> None:
    known = injected_lenses(mock_sky.root)
    report = recover(scanned, known)
    lenses = report.lenses
    assert len(lenses) == mock_sky.lens_ids.size and report.threshold == 0.5
    assert sum(report.counts.values()) == len(lenses) and list(report.counts) == list(STAGES)
    candidates = scored_candidates(scanned)
    assert report.scored == len(candidates)
    rank_of = {int(i): n + 1 for n, i in enumerate(candidates["id"])}
    score_of = dict(zip(candidates["id"].astype(int), candidates["ensemble_score"], strict=True))
    config = ScanConfig.from_toml(mock_sky.config)
    columns = config.catalog.columns
    catalog = catalog_rows(mock_sky).set_index(columns.id)
    cut = parse_cuts(config.cuts.expression).to_arrow()
    for row in lenses.itertuples():
        source = int(row.name)
        assert int(row.id) == source and row.sep_arcsec == pytest.approx(0.0, abs=1e-6)
        if source in rank_of:
            assert int(row.rank) == rank_of[source]
            assert float(row.ensemble_score) == pytest.approx(float(score_of[source]))
            above = score_of[source] >= report.threshold
            assert row.stage == (RECOVERED if above else BELOW_THRESHOLD)
        else:
            assert pd.isna(row.rank) and pd.isna(row.ensemble_score)
            import pyarrow as pa

            one = pa.Table.from_pandas(catalog.loc[[source]], preserve_index=False)
            passes = one.filter(cut).num_rows == 1
            assert row.stage == (GATED if passes else CUT), (source, row.stage)
        assert row.recovered == (row.stage == RECOVERED)
    assert report.recovered == sum(score_of.get(int(i), 0) >= 0.5 for i in lenses["name"])
    assert report.counts[NO_CUTOUT] == 0  # every mock lens has its cutout


def test_positions_match_within_the_radius_only(scanned: Path, mock_sky: MockSky) -> None:
    report = recover(scanned, injected_lenses(mock_sky.root))
    found = report.lenses[report.lenses["stage"] == RECOVERED].iloc[0]
    offset = 0.6 / 3600.0  # deg, in dec
    known = pd.DataFrame(
        {
            "ra": [found["ra"], 10.0],
            "dec": [found["dec"] + offset, -40.0],
            "name": ["shifted", "far from the field"],
        }
    )
    wide = recover(scanned, known, radius_arcsec=1.0).lenses.set_index("name")
    assert wide.loc["shifted", "stage"] == RECOVERED
    assert int(wide.loc["shifted", "id"]) == int(found["id"])
    assert wide.loc["shifted", "sep_arcsec"] == pytest.approx(0.6, abs=0.01)
    assert wide.loc["far from the field", "stage"] == NOT_IN_CATALOG
    assert pd.isna(wide.loc["far from the field", "id"])
    narrow = recover(scanned, known, radius_arcsec=0.3).lenses.set_index("name")
    sources = catalog_rows(mock_sky)
    columns = ScanConfig.from_toml(mock_sky.config).catalog.columns
    separation = 3600 * np.hypot(
        (sources[columns.ra] - found["ra"]) * np.cos(np.radians(found["dec"])),
        sources[columns.dec] - found["dec"] - offset,
    )
    assert separation.min() > 0.3  # no catalog source that near: nothing to match
    assert narrow.loc["shifted", "stage"] == NOT_IN_CATALOG
    with pytest.raises(ConfigError, match="positive radius"):
        recover(scanned, known, radius_arcsec=0.0)


def test_a_partition_not_done_is_named(scanned: Path, mock_sky: MockSky, tmp_path: Path) -> None:
    scan = tmp_path / "scan"
    shutil.copytree(scanned, scan)
    report = recover(scan, injected_lenses(mock_sky.root))
    found = report.lenses[report.lenses["stage"] == RECOVERED].iloc[0]
    holding = next(
        m.order_pixel
        for m in read_markers(scan)
        if int(found["id"]) in pq.read_table(leaf_path(scan, m.order_pixel))["id"].to_pylist()
    )
    marker_path(scan, holding).unlink()  # as if the scan stopped before this partition
    again = recover(scan, injected_lenses(mock_sky.root)).lenses.set_index("name")
    assert again.loc[found["name"], "stage"] == NOT_DONE
    assert int(again.loc[found["name"], "id"]) == int(found["id"])  # the catalog source


def test_a_folder_that_is_no_scan_is_refused(tmp_path: Path, mock_sky: MockSky) -> None:
    with pytest.raises(ScanStateError, match=r"not a scan folder .*`lensflow scan` wrote"):
        recover(tmp_path, injected_lenses(mock_sky.root))
