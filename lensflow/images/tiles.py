"""Coadd tiles on disk: find them from the band glob, open them, read each one's header.

A tile is one image HDU of one FITS file (fpack-compressed or not) for one band, with an
optional mask HDU. Tiles may be remote (the glob a URL, `s3://bucket/coadds/*-{band}.fits.fz`):
the glob runs on the URL's filesystem, sizes and modification times come from its metadata, and
astropy reads headers and sections through fsspec, fetching only the byte ranges it needs. Problems with a tile are recorded as a reason code and a message, never
raised, so one bad file costs only the rows it holds.
"""

from __future__ import annotations

import glob
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

from astropy.io import fits

from lensflow.config import ImagesConfig
from lensflow.errors import ImageError
from lensflow.images.projection import celestial_wcs, wcs_to_text
from lensflow.locations import location, missing_bucket, remote, remote_problem

PSF_KEYWORDS = ("PSF_FWHM", "SEEING", "FWHM")
"""Header keywords read (in this order) as the PSF FWHM in arcsec when the config gives none."""

MASK_EXTNAME = "MASK"
FITS_BLOCK = 2880


@dataclass(frozen=True)
class TileFile:
    """A tile file found by the glob, with what tells a changed file apart: size and mtime."""

    band: str
    path: str
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class TileHeader:
    """What a tile's headers say; `reason` is "" for a usable tile, else a code and `error`."""

    file: TileFile
    hdu: int
    mask_hdu: int  # -1: no mask
    ny: int
    nx: int
    wcs_text: str  # "" where no WCS could be read
    psf_fwhm_arcsec: float  # NaN where no header keyword gives it
    reason: str = ""
    error: str = ""


def find_tiles(config: ImagesConfig) -> list[TileFile]:
    """Every tile file of every band, sorted by band order then path; none for a band refuses."""
    found: list[TileFile] = []
    for band in config.bands:
        pattern = config.pattern(band)
        files = _glob(band, pattern, config.storage_options)
        if not files:
            raise ImageError(
                f"no tiles for band {band!r}: nothing matches {pattern!r}; check images.tiles",
                reason="no_tiles",
            )
        found.extend(files)
    return found


def _glob(band: str, pattern: str, storage_options: Mapping[str, Any]) -> list[TileFile]:
    """The files matching one band's glob, sorted by path, with their size and mtime."""
    url = remote(location(pattern, storage_options))
    if url is None:
        # glob.glob takes one absolute pattern with wildcards in any folder of it
        matches = glob.glob(pattern, recursive=True)  # noqa: PTH207
        paths = sorted(p for p in matches if Path(p).is_file())
        stats = [(path, Path(path).stat()) for path in paths]
        return [TileFile(band, p, int(st.st_size), int(st.st_mtime_ns)) for p, st in stats]
    bucket = missing_bucket(url)
    if bucket is not None:
        raise ImageError(f"{pattern}: bucket {bucket!r} does not exist", reason="no_tiles")
    try:
        listed = url.fs.glob(url.path, detail=True)
    except Exception as exc:  # unreachable, denied: named once, with the glob
        raise ImageError(remote_problem(pattern, exc), reason="no_tiles") from exc
    return [
        TileFile(band, url.fs.unstrip_protocol(key), int(info["size"]), _mtime_ns(info))
        for key, info in sorted(listed.items())
        if info.get("type") == "file"
    ]


def _mtime_ns(info: Mapping[str, Any]) -> int:
    """A remote file's modification time (ns since the epoch) from its metadata; 0 if none."""
    for key in ("mtime", "LastModified", "last_modified", "Last-Modified", "updated"):
        value = info.get(key)
        try:
            if isinstance(value, str):
                value = (
                    parsedate_to_datetime(value) if "," in value else datetime.fromisoformat(value)
                )
            if isinstance(value, datetime):
                return int(value.timestamp() * 1e9)
            if isinstance(value, int | float):
                return int(value * 1e9)
        except ValueError:
            continue
    return 0


def open_fits(path: str, storage_options: Mapping[str, Any] | None = None) -> fits.HDUList:
    """Open a FITS file lazily: headers on demand, data by section; memory-mapped when local,
    through fsspec (byte ranges on demand) for a URL, with the filesystem options hats uses."""
    url = remote(location(path, storage_options))
    if url is None:
        return fits.open(path, memmap=True, lazy_load_hdus=True, mode="readonly")
    options = dict(url.storage_options)
    return fits.open(
        path, use_fsspec=True, fsspec_kwargs=options, lazy_load_hdus=True, mode="readonly"
    )


def _is_image(hdu: fits.hdu.base._BaseHDU) -> bool:
    is_image_type = isinstance(hdu, fits.PrimaryHDU | fits.ImageHDU | fits.CompImageHDU)
    return is_image_type and int(hdu.header.get("NAXIS", 0)) == 2


def hdu_index(hdul: fits.HDUList, hdu: int | str | None, *, path: str, what: str) -> int:
    """The index of the chosen HDU: a number, an EXTNAME, or None for the first 2-D image."""
    if hdu is None:
        for i, candidate in enumerate(hdul):
            if _is_image(candidate):
                return i
        raise ImageError(f"{path}: no 2-D image HDU", reason="missing_hdu")
    try:
        index = int(hdu) if isinstance(hdu, int) else int(hdul.index_of(hdu))
        chosen = hdul[index]
    except (KeyError, IndexError):
        names = [h.name for h in hdul]
        raise ImageError(
            f"{path}: no {what} HDU {hdu!r}; the file has {len(names)} HDUs {names}",
            reason="missing_hdu",
        ) from None
    if not _is_image(chosen):
        raise ImageError(f"{path}: HDU {hdu!r} is not a 2-D image", reason="missing_hdu")
    return index


def _mask_index(hdul: fits.HDUList, config: ImagesConfig, *, path: str) -> int:
    if config.mask_hdu is not None:
        return hdu_index(hdul, config.mask_hdu, path=path, what="mask")
    names = [h.name.upper() for h in hdul]
    return names.index(MASK_EXTNAME) if MASK_EXTNAME in names else -1


def _psf_fwhm(*headers: fits.Header) -> float:
    for header in headers:
        for key in PSF_KEYWORDS:
            value = header.get(key)
            if isinstance(value, int | float) and math.isfinite(value) and value > 0:
                return float(value)
    return math.nan


def read_tile_header(file: TileFile, *, config: ImagesConfig) -> TileHeader:
    """Read a tile's headers: chosen HDU, mask HDU, shape, WCS, PSF keyword; never raises."""
    hdu, mask, ny, nx, wcs_text = -1, -1, 0, 0, ""
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with open_fits(file.path, config.storage_options) as hdul:
                len(hdul)  # loads every header, so a truncated file warns here
                hdu = hdu_index(hdul, config.hdu, path=file.path, what="image")
                header = hdul[hdu].header
                ny, nx = int(header["NAXIS2"]), int(header["NAXIS1"])
                mask = _mask_index(hdul, config, path=file.path)
                if mask >= 0 and tuple(hdul[mask].shape) != (ny, nx):
                    raise ImageError(
                        f"{file.path}: mask HDU {mask} is {hdul[mask].shape}, image {(ny, nx)}",
                        reason="missing_hdu",
                    )
                wcs_text = wcs_to_text(celestial_wcs(header, where=file.path))
                psf = _psf_fwhm(header, hdul[0].header)
        _check_intact(file, [str(w.message) for w in caught])
    except Exception as exc:  # noqa: BLE001  astropy raises OSError, ValueError, TypeError
        reason, message = _failure(file, exc, config.storage_options)
        return TileHeader(file, hdu, mask, ny, nx, wcs_text, math.nan, reason, message)
    return TileHeader(file, hdu, mask, ny, nx, wcs_text, psf)


def _check_intact(file: TileFile, warned: list[str]) -> None:
    """Refuse a file astropy read only in part: cut short, or with an HDU it had to skip."""
    truncated = [w for w in warned if "truncated" in w]
    if file.size % FITS_BLOCK or truncated:
        raise ImageError(f"{file.path}: {' '.join(truncated[:1])}", reason="truncated")
    damaged = [w.split("\n")[0] for w in warned if "Error validating header" in w]
    if damaged:
        raise ImageError(f"{file.path}: {damaged[0]}", reason="unreadable")


def _starts_as_fits(path: str, storage_options: Mapping[str, Any]) -> bool:
    try:
        with location(path, storage_options).open("rb") as f:
            return bool(f.read(9) == b"SIMPLE  =")
    except OSError:
        return False


def _failure(file: TileFile, exc: Exception, storage_options: Mapping[str, Any]) -> tuple[str, str]:
    """The reason code and message of a tile that failed; a cut-short file says so."""
    if file.size % FITS_BLOCK and _starts_as_fits(file.path, storage_options):
        return "truncated", (
            f"{file.path}: {file.size} bytes is not a whole number of {FITS_BLOCK}-byte FITS "
            f"blocks, so the file was cut short ({exc})"
        )
    if isinstance(exc, ImageError):
        return exc.reason, str(exc)
    return "unreadable", f"{file.path}: not a readable FITS file ({type(exc).__name__}: {exc})"
