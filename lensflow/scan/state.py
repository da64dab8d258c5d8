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
from lensflow.errors import LensflowError, MissingInputError, ScanStateError
from lensflow.io import canonical_hash, claim_folder, file_digest, write_text
from lensflow.locations import Location, remote
from lensflow.registry import ModelManifest
from lensflow.sky import PixelLike, PlainPixel, validate_pixel

if TYPE_CHECKING:
    from lensflow.catalog import Catalog
    from lensflow.modelling import ModellingModels
    from lensflow.regions import Region
    from lensflow.sky import HealpixPixel

logger = logging.getLogger(__name__)

CONFIG_FILE = "scan.toml"
FINGERPRINT_FILE = "fingerprint.json"
MANIFEST_FILE = "manifest.json"
MARKERS = "markers"
FINGERPRINT_VERSION = 2  # 2: files named and digested; 1 (no "version"): a hash of sizes


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
    files: Mapping[str, str] = field(default_factory=dict)  # catalog file read -> its digest

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
    modelling: ModellingModels | None = None,
    modelling_min_score: float | None = None,
) -> dict[str, Any]:
    """What decides a scan's results, as a mapping; its canonical hash is the fingerprint.

    The lens-modelling networks and their min_score count only where the scan runs them.

    The catalog's files are named (those of the partitions scanned; with a region, those it
    keeps); their contents are identified by digest in the fingerprint record's `files`
    (see `catalog_files` and `prepare_scan_dir`), so a file restored to its old bytes resumes.
    Storage options and credentials are no part of it.
    """
    parts: dict[str, Any] = {
        "catalog": str(catalog.path),
        "catalog_files": sorted(_file_name(catalog, pixel) for pixel in catalog.pixels),
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
    if modelling is not None:
        parts["modelling_models"] = {m.name: m.sha256 for m in modelling.members}
        parts["modelling_min_score"] = modelling_min_score
    return parts


def _file_name(catalog: Catalog, pixel: HealpixPixel) -> str:
    """A pixel's file (or folder) under the catalog's dataset/, as `catalog_files` names it."""
    text, base = str(catalog.file_of(pixel)), str(catalog.path).rstrip("/") + "/dataset/"
    return text.removeprefix(base)


def describe_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Lines naming each config key or catalog file that changed, with both values (no hashes)."""
    lines: list[str] = []
    for key in sorted(set(old) | set(new)):
        was, now = old.get(key), new.get(key)
        if was == now:
            continue
        if key == "catalog_files" and isinstance(was, list) and isinstance(now, list):
            lines += _set_changes("catalog file", was, now)
        elif key == "columns" and isinstance(was, dict) and isinstance(now, dict):
            for name in sorted(set(was) | set(now)):
                if was.get(name) != now.get(name):
                    lines.append(
                        f"  catalog.columns.{name}: was {was.get(name)!r}, now {now.get(name)!r}"
                    )
        elif key == "models" and isinstance(was, dict) and isinstance(now, dict):
            for name in sorted(set(was) | set(now)):
                if name not in was:
                    lines.append(f"  model {name!r} added")
                elif name not in now:
                    lines.append(f"  model {name!r} removed")
                elif was[name] != now[name]:
                    lines.append(f"  model {name!r} changed (its sha256)")
        elif key == "modelling_models":
            change = "changed" if was and now else "added" if now else "removed"
            lines.append(f"  the lens-modelling networks {change}")
        elif key.startswith("ensemble_") and key != "ensemble_threshold":
            lines.append(f"  the models' {key.removeprefix('ensemble_')} table changed")
        else:
            lines.append(f"  {_CONFIG_KEYS.get(key, key)}: was {was!r}, now {now!r}")
    return lines


difference = describe_changes

_CONFIG_KEYS = {
    "catalog": "catalog.path",
    "catalog_partitions": "catalog partitions",
    "cuts": "cuts.expression",
    "cutouts": "cutouts.path",
    "photometry_threshold": "photometry.threshold",
    "ensemble_threshold": "ensemble.threshold",
    "prior_lens_rate": "ensemble.prior_lens_rate",
    "modelling_min_score": "modelling.min_score",
}


def _set_changes(what: str, was: list[Any], now: list[Any], *, shown: int = 5) -> list[str]:
    added = sorted(set(map(str, now)) - set(map(str, was)))
    removed = sorted(set(map(str, was)) - set(map(str, now)))
    lines = [f"  {what} {name} added" for name in added[:shown]]
    lines += [f"  {what} {name} removed" for name in removed[:shown]]
    hidden = max(0, len(added) - shown) + max(0, len(removed) - shown)
    if hidden:
        lines.append(f"  ... and {hidden} more {what}s added or removed")
    return lines


def prepare_scan_dir(
    root: Path,
    config: ScanConfig,
    parts: Mapping[str, Any],
    *,
    files: Mapping[str, tuple[Location, str]] | None = None,
    forced: Iterable[str] = (),
) -> None:
    """Claim a scan folder: write the config and fingerprint, or refuse a changed fingerprint.

    `files` (name -> file, pixel key) are digested (sha256) where their size or mtime differ
    from the stored record. A changed file whose partition is not done (or is `forced`, pixel
    keys) is accepted, and the partition runs with it; one under a done partition is refused by
    name. A folder where no partition has run yet accepts a changed config. A folder that
    cannot be made or written is refused before any partition runs.
    """
    claim_folder(root, what="scan folder (--output)")
    existing = read_fingerprint(root)
    stored_files: Mapping[str, Any] = {}
    keep_config = False
    if existing is not None:
        ran = any((root / MARKERS).glob("Norder=*/Npix=*.json"))
        same = existing.get("fingerprint") == canonical_hash(parts)
        current = existing.get("version") == FINGERPRINT_VERSION
        if ran and not current:
            raise ScanStateError(
                f"{root} holds a scan by an earlier lensflow whose fingerprint does not identify "
                "the catalog's files by content, so it cannot be resumed; `lensflow status` and "
                "`lensflow export` still read it. Scan into a new --output folder."
            )
        if ran and not same:
            changes = "\n".join(describe_changes(existing.get("parts", {}), parts))
            raise ScanStateError(
                f"{root} holds a scan with a different config:\n{changes or '  (format changed)'}"
                "\nScan into a new --output folder, or restore the previous inputs."
            )
        if not same:
            logger.warning(
                "%s: no partition has run yet, so the changed config replaces the old one", root
            )
        keep_config = same
        stored_files = (existing.get("files") or {}) if current else {}
    records = _file_records(root, files or {}, stored_files, forced=set(forced))
    if keep_config and records == stored_files:
        return
    if not keep_config:
        write_text(root / CONFIG_FILE, tomli_w.dumps(config.to_toml_dict()))
    payload = {
        "version": FINGERPRINT_VERSION,
        "fingerprint": canonical_hash(parts),
        "parts": parts,
        "files": records,
    }
    write_text(root / FINGERPRINT_FILE, json.dumps(payload, indent=1, sort_keys=True))


def _file_records(
    root: Path,
    files: Mapping[str, tuple[Location, str]],
    stored: Mapping[str, Any],
    *,
    forced: set[str],
) -> dict[str, Any]:
    """Each file's size and mtime; a file whose size or mtime changed is digested and compared
    with the digest its partition's done marker recorded (or the stored record's).

    A new folder digests nothing here: each partition's task digests the files it reads and
    its marker records them (`file_fingerprint`), so the driver never reads the whole catalog
    before the first task, and a resume digests only the files whose size or mtime changed.
    """
    stats = {name: _stat(file) for name, (file, _key) in files.items()}
    if not stored:
        return {name: {"size": size, "mtime_ns": mtime} for name, (size, mtime) in stats.items()}
    fresh = [name for name in files if stats[name] != _stat_of(stored.get(name))]
    digests = dict(zip(fresh, _digests([files[name][0] for name in fresh]), strict=True))
    done = {m.pixel: m for m in read_markers(root) if m.status == "done"} if fresh else {}
    records: dict[str, Any] = {}
    changed: list[tuple[str, str]] = []
    for name, (_file, key) in files.items():
        if name not in digests:
            records[name] = stored[name]
            continue
        size, mtime = stats[name]
        records[name] = {"size": size, "mtime_ns": mtime, "sha256": digests[name]}
        marker = done.get(key)
        old = stored.get(name)
        before = (marker.files.get(name) if marker is not None else None) or (
            old.get("sha256") if isinstance(old, dict) else None
        )
        if before is not None and before != digests[name]:
            changed.append((name, key))
    if changed:
        kept = set(done) - forced  # done partitions a changed file would invalidate
        refused = [(name, key) for name, key in changed if key in kept]
        if refused:
            lines = [f"  catalog file {name} changed (content)" for name, _ in refused]
            pixels = ",".join(dict.fromkeys(key for _, key in refused))
            raise ScanStateError(
                f"{root}: catalog files of done partitions changed since they were scanned:\n"
                + "\n".join(lines)
                + f"\nRestore them, or scan those partitions again with `lensflow rerun {root} "
                f"--pixels {pixels}`."
            )
        for name, key in changed:
            logger.warning(
                "catalog file %s changed (content); partition %s runs with the new file", name, key
            )
    return records


def _stat(file: Location) -> tuple[int, int | str | None]:
    """(size, mtime in ns) of a local file; for a URL, (size, its ETag or mtime if any)."""
    url = remote(file)
    if url is None:
        stat = Path(str(file)).stat()
        return stat.st_size, stat.st_mtime_ns
    info = url.fs.info(url.path)
    tag = info.get("ETag") or info.get("etag") or info.get("mtime") or info.get("LastModified")
    return int(info.get("size") or -1), None if tag is None else str(tag)


def _stat_of(record: Any) -> tuple[Any, Any] | None:
    if not isinstance(record, dict):
        return None
    return record.get("size"), record.get("mtime_ns")


def file_fingerprint(file: Location) -> str:
    """A catalog file's identity by content: the sha256 of a local file; for a URL its ETag or
    mtime where the filesystem gives one, else its size (a URL is never downloaded to hash)."""
    if remote(file) is None:
        return file_digest(Path(str(file)))
    size, tag = _stat(file)
    return f"etag:{tag}" if tag is not None else f"size:{size}"


def _digests(files: list[Location]) -> list[str]:
    """file_fingerprint of each file, in threads (hashlib releases the GIL)."""
    from concurrent.futures import ThreadPoolExecutor

    if not files:
        return []
    with ThreadPoolExecutor(max_workers=min(8, len(files))) as pool:
        return list(pool.map(file_fingerprint, files))


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


def marker_path(root: Path, pixel: PixelLike) -> Path:
    return root / MARKERS / f"Norder={pixel.order}" / f"Npix={pixel.pixel}.json"


def write_marker(root: Path, marker: Marker) -> None:
    order, number = marker.pixel.split("/")  # a PlainPixel: workers write markers without hats
    path = marker_path(root, PlainPixel(int(order), int(number)))
    write_text(path, json.dumps(asdict(marker), indent=1))


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
        raise not_a_scan_folder(root, lacks=CONFIG_FILE)
    return ScanConfig.from_toml(path)


def not_a_scan_folder(path: Path, *, lacks: str) -> LensflowError:
    """The error for a path given as a scan folder that is not one: MissingInputError when
    nothing is there (exit 66), else ScanStateError naming the file it lacks."""
    if not Path(path).exists():
        return MissingInputError(
            f"{path}: no such folder; give the folder `lensflow scan` wrote (its [output] path)"
        )
    return ScanStateError(
        f"{path}: not a scan folder (no {lacks}); give the folder `lensflow scan` wrote"
    )
