"""HEALPix pixels: parsing and validating the pixel names users and catalogs give; pixel math.

Pixel names are untrusted input: "K/P" with ASCII digits only, order K in 0-29 and
0 <= P < 12 * 4**K. lensflow uses hats' HealpixPixel (NESTED scheme) as its pixel type; it is
imported from hats on first use, so that a scan's workers, which receive `PlainPixel`s, never
import hats (and, through it, mocpy, matplotlib and pandas).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt

from lensflow.errors import PixelError

if TYPE_CHECKING:
    from hats.pixel_math import HealpixPixel

__all__ = [
    "SPATIAL_INDEX_COLUMN",
    "HealpixPixel",
    "PixelLike",
    "PlainPixel",
    "coarsen",
    "inside_pixel",
    "leaf_name",
    "parse_pixel",
    "parse_pixels",
    "pixel_key",
    "spatial_index",
    "usable_coordinates",
]

MAX_ORDER = 29
"""The order of the spatial index (hats' SPATIAL_INDEX_ORDER)."""

SPATIAL_INDEX_COLUMN = "_healpix_29"
"""The column of the order-29 NESTED index in every HATS leaf (hats' SPATIAL_INDEX_COLUMN)."""


def __getattr__(name: str) -> Any:
    if name == "HealpixPixel":  # hats' own class, imported only where it is used
        from hats.pixel_math import HealpixPixel

        return HealpixPixel
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class PixelLike(Protocol):
    """What pixel math needs of a pixel: hats' HealpixPixel and PlainPixel both fit."""

    @property
    def order(self) -> int: ...

    @property
    def pixel(self) -> int: ...


@dataclass(frozen=True, order=True)
class PlainPixel:
    """A pixel as a scan's tasks carry it to the workers: order and NESTED index, no hats."""

    order: int
    pixel: int


_PIXEL_NAME = re.compile(r"([0-9]{1,2})/([0-9]{1,19})")


def validate_pixel(order: int, pixel: int) -> HealpixPixel:
    """A HealpixPixel after checking 0 <= order <= 29 and 0 <= pixel < 12 * 4**order."""
    if not 0 <= order <= MAX_ORDER:
        raise PixelError(f"HEALPix order {order} is outside 0-{MAX_ORDER}")
    if not 0 <= pixel < 12 * 4**order:
        raise PixelError(
            f"pixel {pixel} does not exist at order {order} (0 to {12 * 4**order - 1})"
        )
    from hats.pixel_math import HealpixPixel

    return HealpixPixel(order, pixel)


def parse_pixel(text: str) -> HealpixPixel:
    """Parse "K/P" (e.g. "3/123") into a validated pixel."""
    match = _PIXEL_NAME.fullmatch(text.strip())
    if match is None or not text.strip().isascii():
        raise PixelError(f"pixel {text!r} is not ORDER/PIXEL in ASCII digits, e.g. 3/123")
    return validate_pixel(int(match.group(1)), int(match.group(2)))


def parse_pixels(text: str | Iterable[str]) -> list[HealpixPixel]:
    """Parse "3/123,4/511" (or a list of such names) into unique pixels, in the given order."""
    names = text.split(",") if isinstance(text, str) else list(text)
    pixels = [parse_pixel(name) for name in names if name.strip()]
    if not pixels:
        raise PixelError("no pixels given; name them as ORDER/PIXEL, e.g. 3/123,4/511")
    return list(dict.fromkeys(pixels))


def pixel_key(pixel: PixelLike) -> str:
    """The pixel's short name, "K/P", used in messages, markers and the CLI."""
    return f"{pixel.order}/{pixel.pixel}"


def leaf_name(pixel: PixelLike, *, suffix: str = ".parquet") -> str:
    """A pixel's leaf under a HATS catalog's dataset/: "Norder=K/Dir=D/Npix=P" + suffix.

    D = (P // 10000) * 10000, as hats.io.paths names it; suffix "" names a folder of files.
    """
    directory = pixel.pixel // 10_000 * 10_000
    return f"Norder={pixel.order}/Dir={directory}/Npix={pixel.pixel}{suffix}"


def usable_coordinates(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    """Rows whose coordinates a scan can use: finite, |dec| <= 90, ra in [-360, 720] deg."""
    usable = np.isfinite(ra) & np.isfinite(dec) & (np.abs(dec) <= 90.0)
    return usable & (ra >= -360.0) & (ra <= 720.0)  # type: ignore[no-any-return]


def coarsen(index: npt.NDArray[np.int64], *, order: int) -> npt.NDArray[np.int64]:
    """The order-`order` pixel of each order-29 NESTED index (hats' spatial_index_to_healpix)."""
    coarse: npt.NDArray[np.int64] = np.asarray(index, dtype=np.int64) >> (2 * (MAX_ORDER - order))
    return coarse


def spatial_index(
    ra: npt.NDArray[np.float64], dec: npt.NDArray[np.float64]
) -> npt.NDArray[np.int64]:
    """The order-29 NESTED index of positions in degrees (N,), computed as hats computes it.

    The same call as hats.pixel_math.spatial_index.compute_spatial_index (cdshealpix on astropy
    angles), without importing hats, on the calling thread: a task's thread is its core, and
    cdshealpix's thread pool cost more than it saved on a partition's rows (0.39 against 0.26 ms
    for 420). Coordinates must be finite, |dec| <= 90.
    """
    import astropy.units as u
    from astropy.coordinates import Latitude, Longitude
    from cdshealpix.nested import lonlat_to_healpix

    lon = Longitude(np.asarray(ra, dtype=np.float64), u.deg)
    lat = Latitude(np.asarray(dec, dtype=np.float64), u.deg)
    index: npt.NDArray[np.int64] = np.asarray(
        lonlat_to_healpix(lon, lat, MAX_ORDER, num_threads=1), np.int64
    )
    return index


def inside_pixel(
    ra: npt.NDArray[np.float64], dec: npt.NDArray[np.float64], pixel: PixelLike
) -> npt.NDArray[np.bool_]:
    """True where (ra, dec), degrees (N,), lie in `pixel`, by the coordinates themselves.

    The order-29 index is computed from ra/dec as hats partitions rows and then coarsened to
    the pixel's order, so a row on a pixel boundary falls where hats-import put it; the stored
    `_healpix_29` is not consulted. Coordinates must be finite and in range.
    """
    if ra.size == 0:
        return np.zeros(0, dtype=bool)
    inside: npt.NDArray[np.bool_] = (
        coarsen(spatial_index(ra, dec), order=pixel.order) == pixel.pixel
    )
    return inside
