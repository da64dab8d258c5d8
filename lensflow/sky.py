"""HEALPix pixels: parsing and validating the pixel names users and catalogs give.

Pixel names are untrusted input: "K/P" with ASCII digits only, order K in 0-29 and
0 <= P < 12 * 4**K. lensflow uses hats' HealpixPixel (NESTED scheme) as its pixel type.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from hats.pixel_math import HealpixPixel
from hats.pixel_math.spatial_index import SPATIAL_INDEX_ORDER

from lensflow.errors import PixelError

__all__ = ["HealpixPixel", "parse_pixel", "parse_pixels", "pixel_key"]

MAX_ORDER = SPATIAL_INDEX_ORDER
_PIXEL_NAME = re.compile(r"([0-9]{1,2})/([0-9]{1,19})")


def validate_pixel(order: int, pixel: int) -> HealpixPixel:
    """A HealpixPixel after checking 0 <= order <= 29 and 0 <= pixel < 12 * 4**order."""
    if not 0 <= order <= MAX_ORDER:
        raise PixelError(f"HEALPix order {order} is outside 0-{MAX_ORDER}")
    if not 0 <= pixel < 12 * 4**order:
        raise PixelError(
            f"pixel {pixel} does not exist at order {order} (0 to {12 * 4**order - 1})"
        )
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


def pixel_key(pixel: HealpixPixel) -> str:
    """The pixel's short name, "K/P", used in messages, markers and the CLI."""
    return f"{pixel.order}/{pixel.pixel}"
