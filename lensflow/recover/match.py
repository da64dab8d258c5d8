"""Which known lenses a scan recovered, which it missed, and where the funnel lost them.

The known lenses (see `known`: ra, dec in degrees first, any other columns) are cross-matched by position with the candidates of the
scan's done partitions, every row the ensemble scored, with lsdb (`Catalog.crossmatch`,
nearest within `radius_arcsec`). A matched lens has its candidate's id, scores and rank (1 the
best among all scored candidates; ties by id, as export ranks) and is recovered when its
ensemble score is at or above the scan's ensemble threshold. A lens the ensemble never scored
is matched with the scan's input catalog the same way, and the funnel says where it was lost:

    not in catalog       no catalog source within the radius
    outside region       its source lies outside the scan's [sky] region
    partition not done   its partition failed or was not scanned yet
    cut                  its source fails the scan's cut
    photometry gate      it passed the cut but not the photometry gate (or its photometry or
                         coordinates were unusable; the marker counts those)
    no cutout            it passed the gate but the cutout store has no image of it
    below threshold      scored by the ensemble below the threshold
    recovered            scored at or above the threshold

The cut and the gate are re-evaluated with the scan's config copy and its models (checked
against the hashes the scan's fingerprint recorded), only for partitions that hold such a lens.
A source within the radius of a partition's edge is matched only where lsdb sees both sides
(the input catalog's margin cache, where it has one).
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lensflow.candidates import rank
from lensflow.catalog import CatalogInputs, open_inputs, read_partition
from lensflow.config import ScanConfig
from lensflow.cutouts import partition_group, read_cutouts
from lensflow.errors import ConfigError, ModelMismatchError, ScanStateError
from lensflow.inspect.ranked import read_done_candidates
from lensflow.layout import healpix_29
from lensflow.registry import load_manifest
from lensflow.scan.stages import ScanContext, Survivors, select_partition
from lensflow.scan.state import load_scan_config, not_a_scan_folder, read_fingerprint
from lensflow.scan.status import read_markers_strictly, scan_partitions
from lensflow.sky import HealpixPixel, pixel_key

logger = logging.getLogger(__name__)

RECOVERED = "recovered"
BELOW_THRESHOLD = "below threshold"
NO_CUTOUT = "no cutout"
GATED = "photometry gate"
CUT = "cut"
NOT_DONE = "partition not done"
OUTSIDE_REGION = "outside region"
NOT_IN_CATALOG = "not in catalog"
STAGES = (
    RECOVERED,
    BELOW_THRESHOLD,
    NO_CUTOUT,
    GATED,
    CUT,
    NOT_DONE,
    OUTSIDE_REGION,
    NOT_IN_CATALOG,
)
"""Where a known lens ended, from the end of the funnel back to its start."""
DEFAULT_RADIUS_ARCSEC = 1.0
MATCH_COLUMNS = ("id", "sep_arcsec", "rank", "ensemble_score", "p_lens", "photometry_score")
"""Columns the report adds after the known lenses' own (then each member's score)."""


@dataclass(frozen=True)
class Recovery:
    """A recovery report: one row per known lens, the scan's threshold and the match radius.

    lenses: the known lenses' columns, then id (the matched source, <NA> where none), sep_arcsec,
    rank, ensemble_score, p_lens (where calibrated), photometry_score, score_<member>, stage and
    recovered. scored: the candidates the ensemble scored in the done partitions.
    """

    lenses: pd.DataFrame
    threshold: float
    radius_arcsec: float
    scored: int
    partitions_done: int
    partitions: int
    members: tuple[str, ...] = field(default=())

    @property
    def counts(self) -> dict[str, int]:
        """Known lenses per stage, every stage listed (funnel order, recovered first)."""
        found = self.lenses["stage"].value_counts()
        return {stage: int(found.get(stage, 0)) for stage in STAGES}

    @property
    def recovered(self) -> int:
        return int(self.lenses["recovered"].sum())

    @property
    def completeness(self) -> float:
        """Recovered over known (NaN with no known lens)."""
        return self.recovered / len(self.lenses) if len(self.lenses) else math.nan


def _crossmatch(known: pd.DataFrame, other: Any, radius_arcsec: float) -> pd.DataFrame:
    """For each known row (`_row`, ra, dec), the nearest row of the lsdb catalog `other` within
    the radius: `_row`, `_dist_arcsec` and other's columns (its ra, dec as `_ra`, `_dec`).

    Only other's partitions where known lenses lie are read."""
    import lsdb

    info = other.hc_structure.catalog_info
    coordinates = {info.ra_column: "_ra", info.dec_column: "_dec"}
    columns = [coordinates.get(c, c) for c in other.columns]
    empty = pd.DataFrame(columns=["_row", "_dist_arcsec", *columns])
    if known.empty:
        return empty
    left = lsdb.from_dataframe(
        known[["_row", "ra", "dec"]], ra_column="ra", dec_column="dec", margin_threshold=None
    )
    with warnings.catch_warnings():
        # a catalog without a margin cache: a lens within the radius of a partition's edge may
        # miss its source across it (said in the module's docstring, not on every run)
        warnings.filterwarnings("ignore", "Right catalog does not have a margin cache")
        try:
            matched = left.crossmatch(
                other,
                radius_arcsec=radius_arcsec,
                n_neighbors=1,
                how="inner",
                suffixes=("", "_m"),
                suffix_method="all_columns",
            )
        except RuntimeError as exc:  # lsdb: no partition of one lies where the other has any
            if "do not overlap" in str(exc):
                return empty
            raise
        frame = pd.DataFrame(matched.compute(progress_bar=False)).reset_index(drop=True)
    frame = frame.rename(columns={f"{c}_m": coordinates.get(c, c) for c in other.columns})
    return frame[["_row", "_dist_arcsec", *columns]]


def _candidate_catalog(ranked: pd.DataFrame, radius_arcsec: float) -> Any:
    """The scored candidates as an lsdb catalog, with a margin of at least twice the radius
    (so a lens beside a partition's edge finds its candidate across it)."""
    import lsdb

    return lsdb.from_dataframe(
        ranked, ra_column="ra", dec_column="dec", margin_threshold=max(5.0, 2 * radius_arcsec)
    )


def recover(
    scan_dir: Path, known: pd.DataFrame, *, radius_arcsec: float = DEFAULT_RADIUS_ARCSEC
) -> Recovery:
    """Cross-match known lenses (ra, dec first; see known_frame) with a scan's candidates and
    say for each whether it was recovered and, if not, where the funnel lost it."""
    scan_dir = Path(scan_dir)
    if not radius_arcsec > 0:
        raise ConfigError(f"--radius {radius_arcsec}: give a positive radius in arcsec")
    record = read_fingerprint(scan_dir)
    if record is None:
        raise not_a_scan_folder(scan_dir, lacks="fingerprint")
    threshold = float(record["parts"]["ensemble_threshold"])
    markers = read_markers_strictly(scan_dir)
    done = {m.pixel for m in markers if m.status == "done"}
    ranked = rank(read_done_candidates(scan_dir), min_score=-math.inf).to_pandas()
    ranked["rank"] = np.arange(1, len(ranked) + 1)
    members = tuple(c.removeprefix("score_") for c in ranked.columns if c.startswith("score_"))
    shown = [
        c
        for c in (*MATCH_COLUMNS, *(f"score_{m}" for m in members))
        if c in ranked or c == "sep_arcsec"
    ]
    known = known.reset_index(drop=True).assign(_row=np.arange(len(known)))

    scored = _empty_match(shown)
    if len(ranked):
        table = ranked[["ra", "dec", *[c for c in shown if c != "sep_arcsec"]]]
        scored = _crossmatch(known, _candidate_catalog(table, radius_arcsec), radius_arcsec)
    out = known.copy()
    for name in shown:
        out[name] = pd.Series(pd.NA, index=out.index, dtype=_dtype(name))
    rows = scored["_row"].to_numpy(np.int64)
    for name in shown:
        source = "_dist_arcsec" if name == "sep_arcsec" else name
        out.loc[rows, name] = scored[source].to_numpy()
    out["stage"] = pd.Series(NOT_IN_CATALOG, index=out.index, dtype=object)
    score = out["ensemble_score"].astype("Float64")
    matched = out.index.isin(rows)
    out.loc[matched, "stage"] = np.where(score[matched] >= threshold, RECOVERED, BELOW_THRESHOLD)

    lost = out.loc[~matched, ["_row", "ra", "dec"]]
    if not lost.empty:
        config = load_scan_config(scan_dir)
        stages, found = _lost_stages(scan_dir, config, record, lost, done, radius_arcsec)
        for row, (stage, source_id, sep) in stages.items():
            out.loc[row, "stage"] = stage
            if source_id is not None:
                out.loc[row, "id"] = source_id
                out.loc[row, "sep_arcsec"] = sep
        logger.info("%d known lenses not scored: %d in the catalog", len(lost), found)
    out["recovered"] = out["stage"] == RECOVERED
    return Recovery(
        lenses=out.drop(columns=["_row"]),
        threshold=threshold,
        radius_arcsec=float(radius_arcsec),
        scored=len(ranked),
        partitions_done=len(done),
        partitions=len(scan_partitions(scan_dir)),
        members=members,
    )


def _empty_match(shown: list[str]) -> pd.DataFrame:
    return pd.DataFrame(columns=["_row", "_dist_arcsec", *[c for c in shown if c != "sep_arcsec"]])


def _dtype(name: str) -> str:
    return "Int64" if name in ("id", "rank") else "Float64"


def _lost_stages(
    scan_dir: Path,
    config: ScanConfig,
    record: dict[str, Any],
    lost: pd.DataFrame,
    done: set[str],
    radius_arcsec: float,
) -> tuple[dict[int, tuple[str, int | None, float | None]], int]:
    """Where each known lens the ensemble never scored was lost: {row: (stage, id, sep)}."""
    import lsdb

    inputs = open_inputs(config)
    columns = config.catalog.columns
    catalog = lsdb.read_hats(  # lazily: only the partitions near lost lenses are read
        str(config.catalog.path), columns=[columns.id, columns.ra, columns.dec]
    )
    nearest = _crossmatch(lost, catalog, radius_arcsec).rename(columns={columns.id: "id"})
    stages: dict[int, tuple[str, int | None, float | None]] = {
        int(r): (NOT_IN_CATALOG, None, None) for r in lost["_row"]
    }
    by_pixel: dict[HealpixPixel, list[tuple[int, int, float]]] = {}
    kept = set(inputs.catalog.pixels)
    found = nearest[["_row", "id", "_dist_arcsec", "_ra", "_dec"]]
    for row, source_id, sep, ra, dec in found.itertuples(index=False):
        pixel = _pixel_of(float(ra), float(dec), kept)  # the source's partition
        entry = (int(row), int(source_id), float(sep))
        if pixel is None:
            stages[int(row)] = (OUTSIDE_REGION, int(source_id), float(sep))
        elif pixel_key(pixel) not in done:
            stages[int(row)] = (NOT_DONE, int(source_id), float(sep))
        else:
            by_pixel.setdefault(pixel, []).append(entry)
    if by_pixel:
        context = _context(scan_dir, config, record, inputs)
        for pixel, entries in by_pixel.items():
            lost_at = _funnel_stage(pixel, entries, context)
            for row, source_id, sep in entries:
                stages[row] = (lost_at[row], source_id, sep)
    return stages, len(nearest)


def _pixel_of(ra: float, dec: float, pixels: set[HealpixPixel]) -> HealpixPixel | None:
    """The partition among `pixels` that holds (ra, dec), or None."""
    from hats.pixel_math.spatial_index import spatial_index_to_healpix

    index = healpix_29(np.array([ra]), np.array([dec]))
    for order in sorted({p.order for p in pixels}):
        number = int(spatial_index_to_healpix(index, target_order=order)[0])
        if HealpixPixel(order, number) in pixels:
            return HealpixPixel(order, number)
    return None


def _context(
    scan_dir: Path, config: ScanConfig, record: dict[str, Any], inputs: CatalogInputs
) -> ScanContext:
    """The stage context the scan ran with, rebuilt read-only (no lock, nothing written)."""
    manifest = load_manifest(config.models.manifest, precision=config.ensemble.precision)
    recorded = record["parts"].get("models", {})
    name = manifest.photometry.name
    if recorded.get(name) != manifest.photometry.sha256:
        raise ModelMismatchError(
            f"{scan_dir}: photometry model {name!r} is not the one the scan ran with; point "
            "[models] manifest of its scan.toml at those models to say where lenses were lost"
        )
    return ScanContext(
        config=config,
        catalog=inputs.catalog,
        cut=inputs.cut,
        manifest=manifest,
        photometry_threshold=float(record["parts"]["photometry_threshold"]),
        ensemble_threshold=float(record["parts"]["ensemble_threshold"]),
        fingerprint=str(record.get("fingerprint", "")),
        output=scan_dir,
        region=inputs.region,
    )


def _funnel_stage(
    pixel: HealpixPixel, entries: list[tuple[int, int, float]], context: ScanContext
) -> dict[int, str]:
    """Re-run a partition's cut and gate: the stage each (row, source id, sep) was lost at."""
    columns = context.config.catalog.columns
    passed = read_partition(pixel, catalog=context.catalog, columns=[columns.id], cut=context.cut)
    after_cut = set(passed.table[columns.id].to_numpy(zero_copy_only=False).tolist())
    if context.region is not None:
        inside = read_partition(
            pixel, catalog=context.catalog, columns=[columns.id, columns.ra, columns.dec]
        ).table
        inside = context.region.filter(inside, ra=columns.ra, dec=columns.dec)
        in_region = set(inside[columns.id].to_numpy(zero_copy_only=False).tolist())
    else:
        in_region = None
    survivors = select_partition(pixel, context=context)
    if not isinstance(survivors, Survivors):
        raise ScanStateError(f"pixel {pixel_key(pixel)}: cannot be read again: {survivors.error}")
    gated = set(survivors.table["id"].to_numpy().tolist())
    ids = np.array([e[1] for e in entries], dtype=np.int64)
    store = context.config.cutouts.path
    missing = set(read_cutouts(store, partition_group(pixel), ids).missing.tolist())
    stages = {}
    for row, source_id, _ in entries:
        if in_region is not None and source_id not in in_region:
            stages[row] = OUTSIDE_REGION
        elif source_id not in after_cut:
            stages[row] = CUT
        elif source_id not in gated:
            stages[row] = GATED
        elif source_id in missing:
            stages[row] = NO_CUTOUT
        else:  # passed the gate with a cutout yet never scored: the candidate file disagrees
            stages[row] = NOT_DONE
    return stages
