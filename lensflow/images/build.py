"""One partition's cutouts from coadd tiles: cut the stamps, write the group, report, mark done.

`build_partition` is pure work on arrays (rows in, group and report out); reading the rows from a
catalog and running partitions on a cluster is the driver's (driver.py).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lensflow.config import ImagesConfig
from lensflow.cutouts import partition_group, write_group
from lensflow.errors import CutoutError
from lensflow.images.index import TileIndex
from lensflow.images.stamps import REASONS, cut_stamps
from lensflow.io import write_text
from lensflow.sky import HealpixPixel, parse_pixel, pixel_key


@dataclass(frozen=True)
class Rows:
    """A partition's rows to cut: ids int64 (N,), ra and dec float64 (N,) in degrees."""

    ids: np.ndarray
    ra: np.ndarray
    dec: np.ndarray


@dataclass(frozen=True)
class PartitionReport:
    """How a partition's build ended: counts and ids per rejection reason, tiles that failed."""

    pixel: HealpixPixel
    status: str  # "done" or "failed"
    rows: int = 0
    written: int = 0
    rejected: dict[str, int] = field(default_factory=dict)  # reason -> rows
    rejected_ids: dict[str, list[int]] = field(default_factory=dict)  # reason -> ids
    tile_errors: dict[str, str] = field(default_factory=dict)  # tile path -> "reason: message"
    seconds: float = 0.0
    error: str = ""
    fingerprint: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "done"

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready mapping (ids stay exact ints)."""
        return {
            "pixel": pixel_key(self.pixel),
            "status": self.status,
            "rows": self.rows,
            "written": self.written,
            "rejected": dict(self.rejected),
            "rejected_ids": {k: list(v) for k, v in self.rejected_ids.items()},
            "tile_errors": dict(self.tile_errors),
            "seconds": self.seconds,
            "error": self.error,
            "fingerprint": self.fingerprint,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> PartitionReport:
        """Read back what `to_json` wrote."""
        return cls(
            pixel=parse_pixel(str(raw["pixel"])),
            status=str(raw["status"]),
            rows=int(raw["rows"]),
            written=int(raw["written"]),
            rejected={str(k): int(v) for k, v in raw["rejected"].items()},
            rejected_ids={str(k): [int(i) for i in v] for k, v in raw["rejected_ids"].items()},
            tile_errors={str(k): str(v) for k, v in raw["tile_errors"].items()},
            seconds=float(raw["seconds"]),
            error=str(raw.get("error", "")),
            fingerprint=str(raw.get("fingerprint", "")),
        )


def build_partition(
    pixel: HealpixPixel,
    *,
    rows: Rows,
    store: Path,
    index: TileIndex,
    config: ImagesConfig,
    fingerprint: str = "",
) -> PartitionReport:
    """Cut every row's stamps and write the partition's group ("Norder=K/Npix=P") of `store`.

    The store must exist with the config's bands and size (driver.prepare_store). A partition
    whose rows all fail still gets its group, empty; the report lists every rejected id.
    """
    start = time.perf_counter()
    stamps = cut_stamps(rows.ids, rows.ra, rows.dec, index=index, config=config)
    write_group(store, partition_group(pixel), ids=stamps.ids, images=stamps.images)
    return PartitionReport(
        pixel=pixel,
        status="done",
        rows=int(np.asarray(rows.ids).shape[0]),
        written=int(stamps.ids.shape[0]),
        rejected={r: int(stamps.rejected[r].shape[0]) for r in REASONS},
        rejected_ids={r: stamps.rejected[r].tolist() for r in REASONS},
        tile_errors=dict(stamps.tile_errors),
        seconds=time.perf_counter() - start,
        fingerprint=fingerprint,
    )


def marker_path(folder: Path, pixel: HealpixPixel) -> Path:
    """Where a partition's done marker lives in the build's marker folder."""
    return Path(folder) / f"Norder={pixel.order}-Npix={pixel.pixel}.json"


def write_marker(folder: Path, report: PartitionReport) -> Path:
    """Record a finished partition (atomically), after its group is in place."""
    path = marker_path(folder, report.pixel)
    write_text(path, json.dumps(report.to_json(), indent=1) + "\n")
    return path


def read_marker(folder: Path, pixel: HealpixPixel) -> PartitionReport | None:
    """A partition's marker, or None when it has none; a corrupt marker is an error."""
    path = marker_path(folder, pixel)
    if not path.is_file():
        return None
    try:
        return PartitionReport.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CutoutError(
            f"{path}: corrupt build marker ({exc}); delete it to rebuild pixel {pixel_key(pixel)}"
        ) from exc
