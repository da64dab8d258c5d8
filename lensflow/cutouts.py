"""Multi-band cutouts in a Zarr v3 store: one group per partition (or per chunk of a training set).

Each group holds `images` float32 (N, bands, H, W) and `ids` int64 (N,), sorted ascending with the
images in the same order, chunked CHUNK_CUTOUTS cutouts per chunk. The root attributes describe the
survey (bands, pixel scale, units, zero point, PSF FWHM per band, cutout size) and are checked
against the models' input spec before a scan starts.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from lensflow.errors import CutoutError
from lensflow.io import fsync_directory
from lensflow.sky import PixelLike

logger = logging.getLogger(__name__)

CHUNK_CUTOUTS = 64
"""Cutouts per Zarr chunk: a partition's survivors are read as whole slabs of this many."""


def partition_group(pixel: PixelLike) -> str:
    """The name of a partition's group in a scan's cutout store: "Norder=K/Npix=P"."""
    return f"Norder={pixel.order}/Npix={pixel.pixel}"


@dataclass(frozen=True)
class StoreInfo:
    """The root attributes of a cutout store."""

    path: Path
    bands: tuple[str, ...]
    pixel_scale_arcsec: float
    units: str
    zero_point_ab: float
    psf_fwhm_arcsec: Mapping[str, float]
    cutout_size: int

    def misfit(
        self, *, bands: Sequence[str], size: int, pixel_scale_arcsec: float, units: str
    ) -> str | None:
        """None when a network's input spec is this store's; else "expects ...; cutout store
        ... has ..." to complete an error message (its subject first)."""
        fits = (
            tuple(bands) == tuple(self.bands)
            and size == self.cutout_size
            and bool(np.isclose(pixel_scale_arcsec, self.pixel_scale_arcsec))
            and units == self.units
        )
        if fits:
            return None
        return (
            f'bands {list(bands)}, {size}x{size} px at {pixel_scale_arcsec}"/px in {units}; '
            f"cutout store {self.path} has bands {list(self.bands)}, "
            f'{self.cutout_size}x{self.cutout_size} px at {self.pixel_scale_arcsec}"/px in '
            f"{self.units}"
        )


@dataclass(frozen=True)
class Cutouts:
    """Cutouts read for a set of ids: the ids found (ascending), their images, and the ids absent."""

    ids: np.ndarray  # int64 (N,)
    images: np.ndarray  # float32 (N, bands, H, W), nJy per pixel
    missing: np.ndarray  # int64 (M,) requested ids the group does not hold


def create_store(
    path: Path,
    *,
    bands: Sequence[str],
    pixel_scale_arcsec: float,
    psf_fwhm_arcsec: Mapping[str, float],
    cutout_size: int,
    zero_point_ab: float = 31.4,
    units: str = "nJy",
    overwrite: bool = False,
) -> None:
    """Create an empty cutout store with its root attributes (zarr format 3)."""
    root = zarr.open_group(str(path), mode="w" if overwrite else "w-", zarr_format=3)
    root.attrs.update(
        {
            "bands": list(bands),
            "pixel_scale_arcsec": float(pixel_scale_arcsec),
            "units": units,
            "zero_point_ab": float(zero_point_ab),
            "psf_fwhm_arcsec": {band: float(psf_fwhm_arcsec[band]) for band in bands},
            "cutout_size": int(cutout_size),
        }
    )


def open_store(path: Path) -> StoreInfo:
    """Read and validate a cutout store's root attributes."""
    if not Path(path).exists():
        raise CutoutError(f"{path}: no cutout store here; make one with `lensflow simulate`")
    try:
        root = zarr.open_group(str(path), mode="r")
    except Exception as exc:  # zarr raises several unrelated types for a bad store
        raise CutoutError(f"{path}: not a Zarr v3 cutout store ({exc})") from exc
    attrs: dict[str, Any] = dict(root.attrs)
    required = ("bands", "pixel_scale_arcsec", "units", "cutout_size")
    absent = [key for key in required if key not in attrs]
    if absent:
        raise CutoutError(
            f"{path}: cutout store lacks root attributes {absent}; has {sorted(attrs)}"
        )
    return StoreInfo(
        path=Path(path),
        bands=tuple(str(b) for b in attrs["bands"]),
        pixel_scale_arcsec=float(attrs["pixel_scale_arcsec"]),
        units=str(attrs["units"]),
        zero_point_ab=float(attrs.get("zero_point_ab", 31.4)),
        psf_fwhm_arcsec={
            str(k): float(v) for k, v in dict(attrs.get("psf_fwhm_arcsec", {})).items()
        },
        cutout_size=int(attrs["cutout_size"]),
    )


def write_group(path: Path, group: str, *, ids: np.ndarray, images: np.ndarray) -> None:
    """Write one group of cutouts, sorted by id; the store must exist (see create_store).

    ids int64 (N,) unique; images float32 (N, bands, H, W) matching the store's bands and size.
    The arrays are written under a temporary name and then moved into place, so a reader sees
    the whole group or none of it.
    """
    ids = np.asarray(ids)
    if ids.dtype.kind not in "iu":
        raise CutoutError(f"{path}/{group}: ids must be integers, got {ids.dtype}")
    ids = ids.astype(np.int64, copy=False)
    images = np.asarray(images, dtype=np.float32)
    info = open_store(path)
    expected = (len(info.bands), info.cutout_size, info.cutout_size)
    if images.ndim != 4 or images.shape[1:] != expected or images.shape[0] != ids.shape[0]:
        raise CutoutError(
            f"{path}/{group}: images of shape {images.shape} do not fit ids {ids.shape} and the "
            f"store's (N, {expected[0]}, {expected[1]}, {expected[2]})"
        )
    order = np.argsort(ids, kind="stable")
    ids, images = ids[order], images[order]
    if ids.size and np.any(ids[1:] == ids[:-1]):
        raise CutoutError(f"{path}/{group}: duplicate ids, e.g. {ids[1:][ids[1:] == ids[:-1]][0]}")
    root = zarr.open_group(str(path), mode="r+")
    staging = f"{group.rstrip('/')}.tmp"
    if staging in root:
        del root[staging]
    tmp = root.create_group(staging)
    chunk = max(1, min(CHUNK_CUTOUTS, len(ids)))
    # Noisy float images shrink ~7 % under zstd but decode ~4x slower than raw chunks, and the
    # ensemble reads a chunk for every few survivors: stored uncompressed.
    tmp.create_array("images", data=images, chunks=(chunk, *expected), compressors=None)
    tmp.create_array("ids", data=ids, chunks=(max(1, len(ids)),))
    if group in root:
        del root[group]
    _move_group(Path(path), staging, group)


def _move_group(path: Path, source: str, target: str) -> None:
    """Rename a group's folder inside a local store: one atomic rename on a POSIX file system."""
    destination = path / target
    destination.parent.mkdir(parents=True, exist_ok=True)
    (path / source).replace(destination)
    fsync_directory(destination.parent)


def list_groups(path: Path) -> list[str]:
    """Names of the groups that hold cutouts (an `ids` array), nested names included, sorted."""
    root = zarr.open_group(str(path), mode="r")
    names: list[str] = []
    for name, member in root.members(max_depth=None):
        if isinstance(member, zarr.Group) and "ids" in member and not name.endswith(".tmp"):
            names.append(name)
    return sorted(names)


def limit_io_threads(threads: int) -> None:
    """Zarr's reads in this process on `threads` threads: a worker's, as many as its tasks.

    Without a limit Zarr reads through asyncio's default pool, min(32, cores + 4) threads,
    more than a one-thread worker has cores: the demo scan's work done with the bare libraries
    in two one-thread processes took 0.655 s with that pool and 0.586 s with one read thread
    each. Takes effect at the next read, where Zarr has not made its own pool yet.
    """
    zarr.config.set({"threading.max_workers": max(1, int(threads))})


@functools.lru_cache(maxsize=8)
def open_root(path: str) -> Any:
    """A store's root group, opened once per process (a worker reads many groups of one store).

    Consolidated metadata is not used, so each group is looked up as the store holds it now.
    """
    return zarr.open_group(path, mode="r", use_consolidated=False)


def _open_arrays(path: Path, group: str) -> tuple[Any, Any]:
    root = open_root(str(path))
    try:
        ids, images = root[f"{group}/ids"], root[f"{group}/images"]
    except KeyError:
        ids = images = None
    if isinstance(ids, zarr.Array) and isinstance(images, zarr.Array):
        return ids, images
    if group not in root:
        raise CutoutError(f"{path}: no cutout group {group!r}")
    raise CutoutError(f"{path}/{group}: a cutout group needs arrays 'ids' and 'images'")


def group_length(path: Path, group: str) -> int:
    """How many cutouts a group holds, from its ids array's shape (no data read)."""
    ids, _ = _open_arrays(path, group)
    return int(ids.shape[0])


def read_group_ids(path: Path, group: str) -> np.ndarray:
    """A group's ids int64 (N,), sorted (no image read)."""
    ids, _ = _open_arrays(path, group)
    return np.asarray(ids[:], dtype=np.int64)


def read_group(path: Path, group: str) -> tuple[np.ndarray, np.ndarray]:
    """Every cutout of a group: ids int64 (N,), images float32 (N, bands, H, W)."""
    ids, images = _open_arrays(path, group)
    return np.asarray(ids[:], dtype=np.int64), np.asarray(images[:], dtype=np.float32)


def read_cutouts(path: Path, group: str, ids: np.ndarray) -> Cutouts:
    """The cutouts of the given ids, reading only the chunks that hold them, each chunk once.

    The wanted ids are located in the group's sorted id array; each run of chunks that holds
    some of them is read as one slab, so a partition's survivors cost a few whole-chunk reads.
    """
    (cutouts,) = read_cutout_blocks(path, group, ids, block=max(1, np.asarray(ids).size))
    return cutouts


def read_cutout_blocks(path: Path, group: str, ids: np.ndarray, *, block: int) -> Iterator[Cutouts]:
    """The cutouts of the given ids as Cutouts of at most `block` wanted ids each, ascending.

    The group's id array is read once; each block reads only the chunks holding its ids (a
    chunk shared by two blocks is read by both). Blocks bound the memory a large partition's
    survivors take: two blocks at most, the one being scored and the one read ahead.
    """
    id_array, image_array = _open_arrays(path, group)
    stored = np.asarray(id_array[:], dtype=np.int64)
    wanted_all = np.unique(np.asarray(ids, dtype=np.int64))
    bands, height, width = image_array.shape[1:]
    chunk = image_array.chunks[0]
    for first in range(0, max(wanted_all.size, 1), block):
        wanted = wanted_all[first : first + block]
        where = np.searchsorted(stored, wanted)
        inside = where < stored.size
        found = np.zeros(wanted.shape, dtype=bool)
        found[inside] = stored[where[inside]] == wanted[inside]
        rows = where[found]
        images = np.empty((rows.size, bands, height, width), dtype=np.float32)
        chunk_of_row = rows // chunk
        for chunk_index in np.unique(chunk_of_row):
            start = int(chunk_index) * chunk
            slab = np.asarray(image_array[start : start + chunk])
            take = chunk_of_row == chunk_index
            images[take] = slab[rows[take] - start]
        yield Cutouts(ids=wanted[found], images=images, missing=wanted[~found])
