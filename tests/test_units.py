"""Pixel units of coadd tiles to nJy."""

from __future__ import annotations

import pytest

from lensflow.errors import CutoutError
from lensflow.units import unit_factor


def test_unit_factors() -> None:
    assert unit_factor("nJy") == 1.0
    assert unit_factor("nanomaggy") == 3631.0
    assert unit_factor("zero_point:31.4") == pytest.approx(1.0)
    assert unit_factor("zero_point:27.0") == pytest.approx(10 ** (-0.4 * (27.0 - 31.4)))
    # a nanomaggy is a count with zero point 22.5
    assert unit_factor("zero_point:22.5") == pytest.approx(3630.78, rel=1e-5)


@pytest.mark.parametrize("text", ["jansky", "zero_point:", "zero_point:abc", "zero_point:nan", ""])
def test_bad_unit_is_refused(text: str) -> None:
    with pytest.raises(CutoutError, match="unit"):
        unit_factor(text)
