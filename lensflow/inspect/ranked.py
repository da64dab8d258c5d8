"""A scan's candidates as inspection sees them: ranked, selected, each with its cutout.

The candidates of the scan's done partitions (their markers say done and their files are in
place) are ranked by ensemble_score (ties by id) and cut at `min_score` (default: the scan's
ensemble threshold, as `lensflow export`) and to the `top` best. Each candidate's cutout is
read from the scan's cutout store (the [cutouts] of the scan's config copy), in the group of
its partition, as the scan read it.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from lensflow.candidates import rank
from lensflow.cutouts import StoreInfo, open_store, partition_group, read_cutouts
from lensflow.errors import ConfigError, CutoutError, ScanStateError
from lensflow.layout import leaf_path
from lensflow.modelling import ERR_SUFFIX
from lensflow.scan.state import load_scan_config, not_a_scan_folder, read_fingerprint
from lensflow.scan.status import read_markers_strictly
from lensflow.sky import HealpixPixel
from lensflow.surveys import shipped_profiles, survey_profile

logger = logging.getLogger(__name__)

CACHED_CUTOUTS = 512
"""Cutouts kept in memory after a read (each band of a candidate is served from one read)."""

INTERNAL_COLUMNS = ("_healpix_29", "model_versions", "config_fingerprint", "_order", "_npix")
"""Candidate columns the inspection shows nowhere (the partition is known by them)."""


class ScanCandidates:
    """The selected candidates of a scan folder, best first, and a reader of their cutouts.

    table: the candidate columns plus `_order`, `_npix` (the partition of each row);
    lens_model: the lens-model parameters it holds (each with its NAME_err column), if any.
    """

    def __init__(self, scan_dir: Path, *, top: int | None = None, min_score: float | None = None):
        self.scan_dir = Path(scan_dir)
        record = read_fingerprint(self.scan_dir)
        if record is None:
            raise not_a_scan_folder(self.scan_dir, lacks="fingerprint")
        if top is not None and top < 1:
            raise ConfigError(f"--top {top}: give a positive number of candidates")
        if min_score is None:
            min_score = float(record["parts"]["ensemble_threshold"])
        self.min_score = float(min_score)
        config = load_scan_config(self.scan_dir)
        self.store: StoreInfo = open_store(config.cutouts.path)
        self.table = _select(read_done_candidates(self.scan_dir), min_score=self.min_score, top=top)
        self.members = tuple(
            name.removeprefix("score_")
            for name in self.table.column_names
            if name.startswith("score_")
        )
        self.lens_model = tuple(
            name
            for name in self.table.column_names
            if name + ERR_SUFFIX in self.table.column_names and not name.startswith("score_")
        )
        self.rgb = rgb_bands_of(self.store.bands)
        ids = self.table["id"].to_numpy()
        self._row_of = {int(i): n for n, i in enumerate(ids)}
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return int(self.table.num_rows)

    @property
    def ids(self) -> list[int]:
        return [int(i) for i in self.table["id"].to_numpy()]

    def __contains__(self, candidate_id: object) -> bool:
        return candidate_id in self._row_of

    def rows(self) -> list[dict[str, Any]]:
        """The candidates as dicts of their shown columns, best first (ids as int)."""
        shown = [c for c in self.table.column_names if c not in INTERNAL_COLUMNS]
        rows: list[dict[str, Any]] = self.table.select(shown).to_pylist()
        return rows

    def cutout(self, candidate_id: int) -> np.ndarray:
        """The cutout of a selected candidate: float32 (bands, H, W) in the store's units."""
        if candidate_id not in self._row_of:
            raise ConfigError(f"candidate {candidate_id} is not among the selected candidates")
        with self._lock:
            if candidate_id in self._cache:
                self._cache.move_to_end(candidate_id)
                cached: np.ndarray = self._cache[candidate_id]
                return cached
        row = self._row_of[candidate_id]
        order = int(self.table["_order"][row].as_py())
        npix = int(self.table["_npix"][row].as_py())
        group = partition_group(HealpixPixel(order, npix))
        found = read_cutouts(self.store.path, group, np.array([candidate_id], dtype=np.int64))
        if found.ids.size != 1:
            raise CutoutError(f"{self.store.path}/{group}: no cutout of candidate {candidate_id}")
        image: np.ndarray = found.images[0]
        with self._lock:
            self._cache[candidate_id] = image
            while len(self._cache) > CACHED_CUTOUTS:
                self._cache.popitem(last=False)
        return image


def read_done_candidates(scan_dir: Path) -> pa.Table:
    """Every candidate of the done partitions, with `_order` and `_npix` columns."""
    tables = []
    for marker in read_markers_strictly(scan_dir):
        pixel = marker.order_pixel
        path = leaf_path(scan_dir, pixel)
        if marker.status != "done" or not path.exists():
            continue
        table = pq.read_table(path)
        n = table.num_rows
        table = table.append_column("_order", pa.array(np.full(n, pixel.order, np.int32)))
        tables.append(table.append_column("_npix", pa.array(np.full(n, pixel.pixel, np.int64))))
    if not tables:
        raise ScanStateError(f"{scan_dir}: no partition is done yet; run `lensflow scan` first")
    return pa.concat_tables(tables, promote_options="permissive")


def _select(table: pa.Table, *, min_score: float, top: int | None) -> pa.Table:
    ranked = rank(table, min_score=min_score)
    if top is not None:
        ranked = ranked.slice(0, top)
    if ranked.num_rows and pc.any(pc.is_null(ranked["id"])).as_py():
        raise ScanStateError("a candidate file holds a null id; rerun its partition")
    return ranked


def rgb_bands_of(bands: tuple[str, ...]) -> tuple[str, str, str]:
    """The bands shown as red, green and blue: the three reddest of the shipped survey profile
    with these image bands (lsst: i, r, g); else the store's last three, reddest first."""
    if len(bands) < 3:
        raise CutoutError(f"an RGB composite needs three bands; the cutouts have {list(bands)}")
    for name in shipped_profiles():
        profile = survey_profile(name)
        if tuple(profile.bands) == tuple(bands):
            return profile.rgb_bands()
    red, green, blue = bands[-1], bands[-2], bands[-3]
    return red, green, blue
