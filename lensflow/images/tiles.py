"""Coadd tiles on disk: find them from the band glob, open them, read each one's header.

A tile is one image HDU of one FITS file (fpack-compressed or not) for one band, with an
optional mask HDU. Problems with a tile are recorded as a reason code and a message, never
raised, so one bad file costs only the rows it holds.
"""

from __future__ import annotations

import glob
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

from astropy.io import fits

from lensflow.config import ImagesConfig
from lensflow.errors import ImageError
from lensflow.images.projection import celestial_wcs, wcs_to_text

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
        # glob.glob takes one absolute pattern with wildcards in any folder of it
        matches = glob.glob(pattern, recursive=True)  # noqa: PTH207
        paths = sorted(p for p in matches if Path(p).is_file())
        if not paths:
            raise ImageError(
                f"no tiles for band {band!r}: nothing matches {pattern!r}; check images.tiles",
                reason="no_tiles",
            )
        for path in paths:
            stat = Path(path).stat()
            found.append(TileFile(band, str(path), int(stat.st_size), int(stat.st_mtime_ns)))
    return found


def open_fits(path: str) -> fits.HDUList:
    """Open a FITS file lazily and memory-mapped: headers on demand, data by section."""
    return fits.open(path, memmap=True, lazy_load_hdus=True, mode="readonly")


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
            with open_fits(file.path) as hdul:
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
        reason, message = _failure(file, exc)
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


def _starts_as_fits(path: str) -> bool:
    try:
        with Path(path).open("rb") as f:
            return f.read(9) == b"SIMPLE  ="
    except OSError:
        return False


def _failure(file: TileFile, exc: Exception) -> tuple[str, str]:
    """The reason code and message of a tile that failed; a cut-short file says so."""
    if file.size % FITS_BLOCK and _starts_as_fits(file.path):
        return "truncated", (
            f"{file.path}: {file.size} bytes is not a whole number of {FITS_BLOCK}-byte FITS "
            f"blocks, so the file was cut short ({exc})"
        )
    if isinstance(exc, ImageError):
        return exc.reason, str(exc)
    return "unreadable", f"{file.path}: not a readable FITS file ({type(exc).__name__}: {exc})"
