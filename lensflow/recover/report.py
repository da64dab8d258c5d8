"""The recovery report on disk: the table of known lenses, its figure, completeness in bins.

The table is Parquet or CSV by the name given; its figure (same name, .png) shows the known
lenses per funnel stage and the scored ones' score against rank and, where the known lenses
have theta_E or arc_snr (a mock sky's injected lenses do), completeness in bins of each, whose
table is written beside it as NAME_completeness.(parquet|csv).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from lensflow.errors import ConfigError, OutputError
from lensflow.evaluate.recovery import (
    CompletenessBin,
    bin_edges,
    completeness,
    completeness_table,
    write_recovery_plot,
)
from lensflow.io import write_parquet, write_text
from lensflow.recover.match import Recovery

COMPLETENESS_BY = ("theta_E", "arc_snr")
"""Properties of the known lenses completeness is binned by, where the table has them."""
TABLE_SUFFIXES = (".parquet", ".csv")


@dataclass(frozen=True)
class RecoveryFiles:
    """What write_recovery wrote: the table, its figure, and the completeness table."""

    table: Path
    plot: Path
    completeness: Path | None = None


def completeness_bins(recovery: Recovery, *, bins: int = 6) -> dict[str, list[CompletenessBin]]:
    """Completeness per bin of theta_E (linear) and arc_snr (log), where the lenses have them."""
    out = {}
    for name in COMPLETENESS_BY:
        if name not in recovery.lenses:
            continue
        values = pd.to_numeric(recovery.lenses[name], errors="coerce").to_numpy(np.float64)
        if not np.isfinite(values).any():
            continue
        edges = bin_edges(values, bins=bins, log=name == "arc_snr")
        out[name] = completeness(values, recovery.lenses["recovered"].to_numpy(), edges=edges)
    return out


def write_recovery(
    recovery: Recovery, out: Path, *, title: str = "", overwrite: bool = False
) -> RecoveryFiles:
    """Write the report's table (.parquet or .csv by suffix) and its figure (same name, .png);
    with theta_E or arc_snr columns, also NAME_completeness.(parquet|csv)."""
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise ConfigError(f"{out}: name the report NAME.parquet or NAME.csv")
    plot = out.with_suffix(".png")
    binned = completeness_bins(recovery)
    extra = out.with_name(f"{out.stem}_completeness{suffix}") if binned else None
    written = [p for p in (out, plot, extra) if p is not None]
    if not overwrite and (existing := [str(p) for p in written if p.exists()]):
        raise OutputError(f"{', '.join(existing)} exist; remove them or pass --overwrite")
    _write_table(recovery.lenses, out)
    if extra is not None:
        _write_table(completeness_table(binned), extra)
    scored = recovery.lenses.dropna(subset=["rank"])
    heading = title or (
        f"{recovery.recovered} of {len(recovery.lenses)} known lenses recovered "
        f'(ensemble >= {recovery.threshold:g}, match {recovery.radius_arcsec:g}")'
    )
    write_recovery_plot(
        recovery.counts,
        ranks=scored["rank"].to_numpy(np.float64),
        scores=scored["ensemble_score"].to_numpy(np.float64),
        threshold=recovery.threshold,
        scored=recovery.scored,
        path=plot,
        title=heading,
        binned=binned,
    )
    return RecoveryFiles(out, plot, extra)


def _write_table(frame: pd.DataFrame, out: Path) -> None:
    if out.suffix.lower() == ".csv":
        write_text(out, frame.to_csv(index=False))
    else:
        write_parquet(out, pa.Table.from_pandas(frame, preserve_index=False))
