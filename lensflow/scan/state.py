"""Scan state on disk: the config copy, the fingerprint, a marker per partition, the manifest.

Resume depends on these files alone, never on Dask. Markers are small JSON files written
atomically after the partition's candidate file; the manifest gathers them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import tomli_w

from lensflow.config import ScanConfig
from lensflow.cutouts import StoreInfo
from lensflow.errors import ScanStateError
from lensflow.io import canonical_hash, claim_folder, write_text
from lensflow.locations import file_size
from lensflow.registry import ModelManifest
from lensflow.sky import HealpixPixel, pixel_key, validate_pixel

if TYPE_CHECKING:
    from lensflow.catalog import Catalog
    from lensflow.regions import Region

logger = logging.getLogger(__name__)

CONFIG_FILE = "scan.toml"
FINGERPRINT_FILE = "fingerprint.json"
MANIFEST_FILE = "manifest.json"
MARKERS = "markers"


@dataclass(frozen=True)
class Marker:
    """What one partition's scan did: the funnel counts, rejections, timing, outcome.

    rows_read counts the rows of the partition's files; rows_after_cuts those that pass the cut;
    with a [sky] region, rows_in_region those of them inside it (the rest are outside the scan,
    not rejected; None without a region), which go on to the photometry gate.
    """

    pixel: str
    status: str  # "done" or "failed"
    rows_read: int = 0
    rows_after_cuts: int = 0
    rows_after_photometry: int = 0
    candidates: int = 0
    rejected: Mapping[str, int] = field(default_factory=dict)
    seconds: Mapping[str, float] = field(default_factory=dict)
    attempts: int = 1
    error: str | None = None
    error_kind: str | None = None
    output: str | None = None
    sha256: str | None = None
    fingerprint: str = ""
    worker: str | None = None  # the Dask worker that ran the ensemble step
    rows_in_region: int | None = None

    @property
    def order_pixel(self) -> HealpixPixel:
        order, number = self.pixel.split("/")
        return validate_pixel(int(order), int(number))


def fingerprint_parts(
    config: ScanConfig,
    *,
    catalog: Catalog,
    manifest: ModelManifest,
    store: StoreInfo,
    photometry_threshold: float,
    ensemble_threshold: float,
    region: Region | None = None,
) -> dict[str, Any]:
    """What decides a scan's results, as a mapping; its canonical hash is the fingerprint.

    The catalog's files are those of the partitions scanned (with a region, those it keeps),
    each with its size (for a URL, from the filesystem's metadata; the storage options and
    credentials are no part of it); a scan of the whole catalog has no "sky" part, so its
    fingerprint is what it always was.
    """
    files = [[pixel_key(pixel), file_size(catalog.file_of(pixel))] for pixel in catalog.pixels]
    parts: dict[str, Any] = {
        "catalog": str(catalog.path),
        "catalog_files": canonical_hash(files),
        "catalog_partitions": len(catalog.pixels),
        "columns": config.catalog.columns.mapped(),
        "cuts": config.cuts.expression,
        "cutouts": str(store.path),
        "models": {
            manifest.photometry.name: manifest.photometry.sha256,
            **{m.name: m.sha256 for m in manifest.ensemble.members},
        },
        "photometry_threshold": photometry_threshold,
        "ensemble_threshold": ensemble_threshold,
    }
    if region is not None:
        parts["sky"] = region.identity
    for name, table in manifest.ensemble_tables().items():  # absent tables: as it always was
        parts[f"ensemble_{name}"] = canonical_hash(table)
    if manifest.ensemble.calibration is not None:
        parts["prior_lens_rate"] = config.ensemble.prior_lens_rate
    return parts


def difference(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Lines naming each fingerprint part that changed, with both values."""
    lines = []
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            lines.append(f"  {key}: was {old.get(key)!r}, now {new.get(key)!r}")
    return lines


def prepare_scan_dir(root: Path, config: ScanConfig, parts: Mapping[str, Any]) -> None:
    """Claim a scan folder: write the config and fingerprint, or refuse a changed fingerprint.

    A folder that cannot be made or written is refused before any partition runs.
    """
    claim_folder(root, what="scan folder (--output)")
    existing = read_fingerprint(root)
    if existing is not None:
        old_parts = existing.get("parts", {})
        if existing.get("fingerprint") != canonical_hash(parts):
            changes = "\n".join(difference(old_parts, parts)) or "  (format changed)"
            raise ScanStateError(
                f"{root} holds a scan with a different config fingerprint:\n{changes}\n"
                "Scan into a new --output folder, or restore the previous inputs."
            )
        return
    write_text(root / CONFIG_FILE, tomli_w.dumps(config.to_toml_dict()))
    payload = {"fingerprint": canonical_hash(parts), "parts": parts}
    write_text(root / FINGERPRINT_FILE, json.dumps(payload, indent=2, sort_keys=True))


def read_fingerprint(root: Path) -> dict[str, Any] | None:
    """The stored fingerprint record of a scan folder, or None for a new folder."""
    path = root / FINGERPRINT_FILE
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ScanStateError(f"{path}: corrupt fingerprint file ({exc}); rescan elsewhere") from exc
    if not isinstance(data, dict) or "fingerprint" not in data:
        raise ScanStateError(f"{path}: not a fingerprint record")
    return data


def marker_path(root: Path, pixel: HealpixPixel) -> Path:
    return root / MARKERS / f"Norder={pixel.order}" / f"Npix={pixel.pixel}.json"


def write_marker(root: Path, marker: Marker) -> None:
    write_text(marker_path(root, marker.order_pixel), json.dumps(asdict(marker), indent=1))


def read_marker(root: Path, pixel: HealpixPixel) -> Marker | None:
    """A partition's marker; a corrupt one counts as absent (the partition runs again)."""
    path = marker_path(root, pixel)
    if not path.exists():
        return None
    try:
        return Marker(**json.loads(path.read_text()))
    except (json.JSONDecodeError, TypeError, UnicodeDecodeError) as exc:
        logger.warning("%s: corrupt marker (%s); the partition will run again", path, exc)
        return None


def read_markers(root: Path) -> list[Marker]:
    """Every readable marker of a scan folder, sorted by pixel."""
    markers = []
    for path in sorted((root / MARKERS).glob("Norder=*/Npix=*.json")):
        try:
            markers.append(Marker(**json.loads(path.read_text())))
        except (json.JSONDecodeError, TypeError, UnicodeDecodeError) as exc:
            logger.warning("%s: corrupt marker skipped (%s)", path, exc)
    return sorted(markers, key=lambda m: (m.order_pixel.order, m.order_pixel.pixel))


def funnel_totals(markers: Iterable[Marker]) -> dict[str, Any]:
    """Sum the funnel counts and rejections over markers (rows_in_region where counted)."""
    totals: dict[str, Any] = {
        "partitions": 0,
        "done": 0,
        "failed": 0,
        "rows_read": 0,
        "rows_after_cuts": 0,
        "rows_after_photometry": 0,
        "candidates": 0,
        "rejected": {},
    }
    for m in markers:
        totals["partitions"] += 1
        totals[m.status] = totals.get(m.status, 0) + 1
        for key in ("rows_read", "rows_after_cuts", "rows_after_photometry", "candidates"):
            totals[key] += getattr(m, key)
        if m.rows_in_region is not None:
            totals["rows_in_region"] = totals.get("rows_in_region", 0) + m.rows_in_region
        for reason, count in m.rejected.items():
            totals["rejected"][reason] = totals["rejected"].get(reason, 0) + count
    return totals


def write_manifest(root: Path, markers: list[Marker]) -> dict[str, Any]:
    """Gather markers into manifest.json (totals first, then one entry per partition)."""
    manifest = {"totals": funnel_totals(markers), "partitions": [asdict(m) for m in markers]}
    write_text(root / MANIFEST_FILE, json.dumps(manifest, indent=1))
    return manifest


def load_scan_config(root: Path) -> ScanConfig:
    """The config a scan folder ran with."""
    path = root / CONFIG_FILE
    if not path.exists():
        raise ScanStateError(f"{root}: not a scan folder (no {CONFIG_FILE}); run `lensflow scan`")
    return ScanConfig.from_toml(path)
