"""Cutouts as PNG: the gallery's asinh composite, bands alone, +y up, exact sizes."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from lensflow.errors import CutoutError
from lensflow.inspect.images import band_image, data_uri, png_bytes, rgb_image
from lensflow.inspect.ranked import ScanCandidates
from lensflow.simulate.gallery import asinh_rgb

BANDS = ("g", "r", "i")


def cutout() -> np.ndarray:
    image = np.zeros((3, 16, 16), dtype=np.float32)
    image[2, 12, 3] = 500.0  # an i-band (red) source near the top of the array's rows
    image[0, 2, 10] = 80.0  # a faint g-band (blue) source
    return image


def test_the_composite_is_the_gallerys_stretch() -> None:
    pixels = rgb_image(cutout(), bands=BANDS, rgb=("i", "r", "g"))
    expected = asinh_rgb(cutout(), bands=BANDS, rgb=("i", "r", "g"), stretch=30.0, q=6.0)
    assert pixels.shape == (16, 16, 3) and pixels.dtype == np.uint8
    np.testing.assert_array_equal(pixels, np.round(expected * 255).astype(np.uint8))
    red_row, red_col = np.unravel_index(np.argmax(pixels[..., 0]), (16, 16))
    assert (red_row, red_col) == (15 - 12, 3)  # flipped: +y up


def test_a_band_alone_reaches_full_scale_even_when_faint() -> None:
    g = band_image(cutout(), bands=BANDS, band="g")
    assert g.max() == 255 and g[15 - 2, 10] == 255
    assert band_image(np.zeros((3, 8, 8)), bands=BANDS, band="r").max() == 0
    with pytest.raises(CutoutError, match="no band 'z'"):
        band_image(cutout(), bands=BANDS, band="z")


def test_pngs_decode_to_the_pixels_enlarged() -> None:
    pixels = rgb_image(cutout(), bands=BANDS, rgb=("i", "r", "g"))
    decoded = np.asarray(Image.open(io.BytesIO(png_bytes(pixels, scale=3))))
    assert decoded.shape == (48, 48, 3)
    np.testing.assert_array_equal(decoded[::3, ::3], pixels)
    assert data_uri(b"\x89PNG").startswith("data:image/png;base64,")


def test_a_scan_cutout_makes_an_image(candidates: ScanCandidates) -> None:
    image = candidates.cutout(candidates.ids[0])
    pixels = rgb_image(image, bands=candidates.store.bands, rgb=candidates.rgb)
    size = candidates.store.cutout_size
    assert pixels.shape == (size, size, 3)
    assert pixels.max() > 100  # the best candidate is bright enough to see
