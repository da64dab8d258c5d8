"""Pixel names are untrusted input."""

from __future__ import annotations

import pytest
from hats.pixel_math.spatial_index import spatial_index_to_healpix
from hypothesis import given
from hypothesis import strategies as st

from lensflow.errors import PixelError
from lensflow.sky import HealpixPixel, parse_pixel, parse_pixels, pixel_key


def test_parse_and_name_round_trip() -> None:
    assert parse_pixels("3/123, 4/511,3/123") == [HealpixPixel(3, 123), HealpixPixel(4, 511)]
    assert pixel_key(parse_pixel("29/1")) == "29/1"


@pytest.mark.parametrize(
    "text",
    [
        "3/768",
        "30/0",
        "-1/0",
        "3/-1",
        "3/1.0",
        "3 /1/2",
        "３/1",
        "3/1;rm -rf /",
        "../3/1",
        "",
        "0x3/1",
    ],
)
def test_hostile_or_impossible_names_are_refused(text: str) -> None:
    with pytest.raises(PixelError):
        parse_pixels(text)


@given(st.text(max_size=40))
def test_any_text_parses_or_raises_pixel_error(text: str) -> None:
    try:
        pixels = parse_pixels(text)
    except PixelError:
        return
    for pixel in pixels:
        assert 0 <= pixel.order <= 29
        assert 0 <= pixel.pixel < 12 * 4**pixel.order


def test_spatial_index_to_pixel() -> None:
    import numpy as np
    from hats.pixel_math.healpix_shim import radec2pix
    from hats.pixel_math.spatial_index import compute_spatial_index

    ra, dec = np.array([10.0, 200.0, 359.9]), np.array([-45.0, 0.0, 89.0])
    index = compute_spatial_index(ra, dec)
    assert np.array_equal(spatial_index_to_healpix(index, target_order=5), radec2pix(5, ra, dec))
