"""Pixel units of coadd tiles and their factor to nJy, the unit of every cutout store.

AB magnitudes: m = 31.4 - 2.5 log10(f / nJy), so a count with AB zero point ZP is
10^(-0.4 (ZP - 31.4)) nJy and one nanomaggy (ZP 22.5) is 3,631 nJy.
"""

from __future__ import annotations

import math

from lensflow.errors import ImageError

NJY_ZERO_POINT_AB = 31.4
"""The AB zero point of a flux in nJy."""

NJY_PER_NANOMAGGY = 3631.0

_ZERO_POINT_PREFIX = "zero_point:"
UNIT_FORMS = ('"nJy"', '"nanomaggy"', '"zero_point:ZP" (e.g. "zero_point:27.0")')


def zero_point_factor(zero_point_ab: float) -> float:
    """nJy per count of an image whose AB zero point is `zero_point_ab` (mag)."""
    return float(10.0 ** (-0.4 * (zero_point_ab - NJY_ZERO_POINT_AB)))


def unit_factor(unit: str) -> float:
    """nJy per pixel unit: "nJy" -> 1, "nanomaggy" -> 3631, "zero_point:ZP" -> 10^(-0.4 (ZP-31.4))."""
    text = unit.strip()
    if text == "nJy":
        return 1.0
    if text == "nanomaggy":
        return NJY_PER_NANOMAGGY
    if text.startswith(_ZERO_POINT_PREFIX):
        number = text[len(_ZERO_POINT_PREFIX) :].strip()
        try:
            zero_point = float(number)
        except ValueError:
            zero_point = math.nan
        if math.isfinite(zero_point) and 0.0 < zero_point < 100.0:
            return zero_point_factor(zero_point)
        raise ImageError(
            f"image unit {unit!r}: the zero point must be an AB magnitude between 0 and 100, "
            f"e.g. zero_point:27.0"
        )
    raise ImageError(f"image unit {unit!r} is not one of {', '.join(UNIT_FORMS)}")
