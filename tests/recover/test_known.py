"""Known lenses from any table lsdb or astropy reads, and a mock sky's injected lenses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from lensflow.config import ScanConfig
from lensflow.errors import ConfigError, MissingColumnError
from lensflow.recover import injected_lenses, read_known
from lensflow.recover.known import is_mock_sky
from lensflow.simulate.mock_sky import MockSky

KNOWN = pd.DataFrame(
    {
        "name": ["J1000+0200", "J1001+0210", "J0959+0150"],
        "RA": [150.0, 150.25, 149.75],
        "Dec": [2.0, 2.17, 1.83],
        "theta_E": [1.2, 0.9, 2.1],
    }
)


def same(frame: pd.DataFrame) -> None:
    frame = frame.sort_values("name").reset_index(drop=True)
    assert list(frame.columns[:2]) == ["ra", "dec"]
    assert frame["name"].astype(str).tolist() == sorted(KNOWN["name"])
    expected = KNOWN.sort_values("name").reset_index(drop=True)
    assert np.allclose(frame["ra"], expected["RA"]) and np.allclose(frame["dec"], expected["Dec"])
    assert np.allclose(frame["theta_E"], expected["theta_E"])


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".fits"])
def test_tables_are_read_whatever_the_coordinates_case(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"known{suffix}"
    if suffix == ".csv":
        KNOWN.to_csv(path, index=False)
    elif suffix == ".parquet":
        KNOWN.to_parquet(path)
    else:
        from astropy.table import Table

        Table.from_pandas(KNOWN).write(path)
    same(read_known(path))


def test_a_hats_catalog_is_read_with_lsdb(tmp_path: Path) -> None:
    import lsdb

    catalog = lsdb.from_dataframe(KNOWN, ra_column="RA", dec_column="Dec")
    catalog.to_hats(tmp_path / "known_hats")
    same(read_known(tmp_path / "known_hats"))


def test_bad_tables_are_refused_with_what_to_do(tmp_path: Path) -> None:
    KNOWN.drop(columns=["Dec"]).to_csv(tmp_path / "nodec.csv", index=False)
    with pytest.raises(MissingColumnError, match=r"no 'dec' column .*'RA'"):
        read_known(tmp_path / "nodec.csv")
    KNOWN.assign(RA=[150.0, np.nan, 1.0]).to_csv(tmp_path / "nan.csv", index=False)
    with pytest.raises(ConfigError, match="1 known lenses have no usable ra/dec"):
        read_known(tmp_path / "nan.csv")
    (tmp_path / "known.txt").write_text("ra dec\n")
    with pytest.raises(ConfigError, match=r"\.parquet, \.fits or \.csv"):
        read_known(tmp_path / "known.txt")
    with pytest.raises(ConfigError, match="no such catalog"):
        read_known(tmp_path / "absent.csv")
    KNOWN.iloc[:0].to_csv(tmp_path / "empty.csv", index=False)
    with pytest.raises(ConfigError, match="no known lens"):
        read_known(tmp_path / "empty.csv")


def test_a_mock_skys_injected_lenses_with_positions_from_its_catalog(mock_sky: MockSky) -> None:
    assert is_mock_sky(mock_sky.root) and is_mock_sky(mock_sky.truth)
    assert not is_mock_sky(mock_sky.catalog)
    known = read_known(mock_sky.root)
    assert known.equals(injected_lenses(mock_sky.root))
    assert sorted(known["name"].astype(int)) == sorted(mock_sky.lens_ids.tolist())  # exact ids
    truth = pq.read_table(mock_sky.truth).to_pandas().set_index("id")
    by_id = truth.loc[known["name"].astype(np.int64)]
    assert np.array_equal(known["theta_E"], by_id["lens_theta_e"])
    assert np.array_equal(known["arc_snr"], by_id["lens_arc_snr"])
    columns = ScanConfig.from_toml(mock_sky.config).catalog.columns
    catalog = pd.concat(pq.read_table(p).to_pandas() for p in mock_sky.catalog.rglob("Npix=*"))
    rows = catalog.set_index(columns.id).loc[known["name"].astype(np.int64)]
    assert np.array_equal(known["ra"], rows[columns.ra])
    assert np.array_equal(known["dec"], rows[columns.dec])
