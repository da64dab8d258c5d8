"""The recovery report on disk: its table (Parquet or CSV), figure, and completeness in bins."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from PIL import Image

from lensflow.errors import ConfigError, OutputError
from lensflow.recover import completeness_bins, injected_lenses, recover, write_recovery
from lensflow.simulate.mock_sky import MockSky


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_the_report_table_figure_and_completeness_are_written(
    scanned: Path, mock_sky: MockSky, tmp_path: Path, suffix: str
) -> None:
    report = recover(scanned, injected_lenses(mock_sky.root))
    files = write_recovery(report, tmp_path / f"recovery{suffix}")
    read = pd.read_csv if suffix == ".csv" else (lambda p: pq.read_table(p).to_pandas())
    table = read(files.table)
    assert table["stage"].tolist() == report.lenses["stage"].tolist()
    assert table["name"].astype(str).tolist() == report.lenses["name"].tolist()  # ids exact
    assert files.completeness is not None
    bins = read(files.completeness)
    assert set(bins["property"]) == {"theta_E", "arc_snr"}
    for _, group in bins.groupby("property"):
        assert group["lenses"].sum() == len(report.lenses)  # every lens in one bin
        assert group["recovered"].sum() == report.recovered
    assert Image.open(files.plot).format == "PNG"
    with pytest.raises(OutputError, match="--overwrite"):
        write_recovery(report, tmp_path / f"recovery{suffix}")
    write_recovery(report, tmp_path / f"recovery{suffix}", overwrite=True)


def test_completeness_needs_a_property_and_a_table_suffix(
    scanned: Path, mock_sky: MockSky, tmp_path: Path
) -> None:
    known = injected_lenses(mock_sky.root)[["ra", "dec", "name"]]
    report = recover(scanned, known)
    assert completeness_bins(report) == {}
    files = write_recovery(report, tmp_path / "plain.parquet")
    assert files.completeness is None and not (tmp_path / "plain_completeness.parquet").exists()
    with pytest.raises(ConfigError, match=r"NAME\.parquet or NAME\.csv"):
        write_recovery(report, tmp_path / "report.fits")


def test_completeness_bins_follow_the_lenses(scanned: Path, mock_sky: MockSky) -> None:
    report = recover(scanned, injected_lenses(mock_sky.root))
    binned = completeness_bins(report, bins=3)
    theta = report.lenses["theta_E"].to_numpy()
    for b in binned["theta_E"]:
        inside = (theta >= b.low) & (theta < b.high)
        assert b.lenses == int(inside.sum())
        assert b.recovered == int(report.lenses["recovered"].to_numpy()[inside].sum())
    snr = binned["arc_snr"]
    assert np.allclose(np.diff(np.log([b.low for b in snr])), np.log(snr[1].low / snr[0].low))
