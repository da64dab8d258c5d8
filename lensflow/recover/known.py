"""Known lenses for `lensflow recover`: a HATS catalog or a table, or a mock sky's injected ones.

Any table with ra and dec in degrees (found whatever their case; in a HATS catalog, the
columns its properties name) and any other columns (name, theta_E, grade, ...) is a catalog of
known lenses; the columns travel into the report. A mock sky folder (truth.parquet beside
scan.toml and its catalog) gives its injected lenses, with positions from its catalog and the
simulator's theta_E and arc signal-to-noise.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from lensflow.config import ScanConfig
from lensflow.errors import ConfigError, MissingColumnError

KNOWN_SUFFIXES = {".parquet": "parquet", ".pq": "parquet", ".fits": "fits", ".fit": "fits"}
TRUTH = "truth.parquet"
SKY_CONFIG = "scan.toml"


def is_mock_sky(path: Path) -> bool:
    """Whether `path` is a mock sky folder (or its truth table) rather than a known catalog."""
    folder = path if path.is_dir() else path.parent
    named = path.is_dir() or path.name == TRUTH
    return named and (folder / TRUTH).is_file() and (folder / SKY_CONFIG).is_file()


def read_known(path: Path) -> pd.DataFrame:
    """Known lenses from a HATS catalog folder, a .parquet/.fits/.csv table, or a mock sky (see
    injected_lenses): ra, dec (deg) first under those names, then the table's other columns."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: no such catalog of known lenses")
    if is_mock_sky(path):
        return injected_lenses(path if path.is_dir() else path.parent)
    ra_name, dec_name = "ra", "dec"
    kind = KNOWN_SUFFIXES.get(path.suffix.lower())
    if path.is_dir():
        import lsdb

        catalog = lsdb.read_hats(path)
        info = catalog.hc_structure.catalog_info
        ra_name, dec_name = info.ra_column or "ra", info.dec_column or "dec"
        frame = pd.DataFrame(catalog.compute(progress_bar=False)).reset_index(drop=True)
    elif path.suffix.lower() == ".csv":
        frame = pd.read_csv(path)
    elif kind == "parquet":
        frame = pq.read_table(path).to_pandas()
    elif kind == "fits":
        from astropy.table import Table

        frame = Table.read(path).to_pandas()
    else:
        raise ConfigError(
            f"{path}: give known lenses as a HATS catalog folder or a .parquet, .fits or .csv "
            "table with ra and dec columns (degrees), or a mock sky folder"
        )
    return known_frame(frame, where=str(path), ra=ra_name, dec=dec_name)


def known_frame(
    frame: pd.DataFrame, *, where: str, ra: str = "ra", dec: str = "dec"
) -> pd.DataFrame:
    """A table of known lenses checked and ordered: ra, dec float64 first, then the rest."""
    by_lower = {str(c).lower(): str(c) for c in frame.columns}
    names = {}
    for want, given in (("ra", ra), ("dec", dec)):
        found = given if given in frame.columns else by_lower.get(want)
        if found is None:
            raise MissingColumnError(
                f"{where}: no {want!r} column (degrees) among {sorted(map(str, frame.columns))}; "
                "name the coordinates ra and dec"
            )
        names[found] = want
    frame = frame.rename(columns=names)
    frame = frame[["ra", "dec", *[c for c in frame.columns if c not in ("ra", "dec")]]]
    if frame.empty:
        raise ConfigError(f"{where}: no known lens in the table")
    frame = frame.astype({"ra": np.float64, "dec": np.float64})
    bad = ~(np.isfinite(frame["ra"]) & np.isfinite(frame["dec"]) & (frame["dec"].abs() <= 90))
    if bad.any():
        raise ConfigError(
            f"{where}: {int(bad.sum())} known lenses have no usable ra/dec (degrees); fix them"
        )
    return frame.reset_index(drop=True)


def injected_lenses(sky: Path) -> pd.DataFrame:
    """The lenses of a mock sky as known lenses: name (the source id), ra, dec from its catalog,
    theta_E (arcsec), arc_snr (the simulator's arc signal-to-noise, best band: the lensed light
    over the pixels where it exceeds the local noise, sky and Poisson), z_lens, z_source,
    magnification."""
    import lsdb

    sky = Path(sky)
    truth = pq.read_table(sky / TRUTH).to_pandas()
    lenses = truth.loc[truth["is_lens"].astype(bool)]
    columns = ScanConfig.from_toml(sky / SKY_CONFIG).catalog.columns
    catalog = lsdb.read_hats(sky / "catalog", columns=[columns.id, columns.ra, columns.dec])
    positions = pd.DataFrame(catalog.compute(progress_bar=False)).reset_index(drop=True)
    positions = positions.rename(columns={columns.id: "id", columns.ra: "ra", columns.dec: "dec"})
    merged = lenses.merge(positions.astype({"id": np.int64}), on="id", how="left")
    known = pd.DataFrame(
        {
            "name": merged["id"].astype(str),
            "ra": merged["ra"],
            "dec": merged["dec"],
            "theta_E": merged["lens_theta_e"],
            "arc_snr": merged["lens_arc_snr"],
            "z_lens": merged["lens_z_lens"],
            "z_source": merged["lens_z_source"],
            "magnification": merged["lens_magnification"],
        }
    )
    return known_frame(known, where=str(sky / TRUTH))
