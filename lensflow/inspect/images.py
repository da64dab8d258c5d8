"""Cutouts as PNG: the asinh RGB composite of the gallery, and each band alone.

The composite is `lensflow.simulate.gallery.asinh_rgb` (Lupton et al. asinh stretch of the
three reddest bands, per-band weights as in the gallery), +y up. A band alone is the same
stretch of that band (stretch and softening in nJy per pixel), grey, scaled to its own 99.5th
percentile (its peak where that is empty sky) so a faint band still shows. PNGs are written
with Pillow (matplotlib's image writer), enlarged by whole pixels (`scale`) so a browser or a
Zooniverse page shows them sharp.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from PIL import Image

from lensflow.errors import CutoutError

STRETCH = 30.0
"""nJy per pixel where the stretch turns from linear to logarithmic (the gallery's)."""
SOFTENING = 6.0
"""The asinh softening q of the composite and the bands alone (the gallery's)."""


def rgb_image(
    cutout: npt.NDArray[np.floating], *, bands: Sequence[str], rgb: Sequence[str]
) -> npt.NDArray[np.uint8]:
    """The asinh RGB composite (H, W, 3) uint8 of a cutout (bands, H, W) in nJy, +y up."""
    from lensflow.simulate.gallery import asinh_rgb

    pixels = asinh_rgb(
        np.nan_to_num(cutout, nan=0.0), bands=bands, rgb=rgb, stretch=STRETCH, q=SOFTENING
    )
    return np.asarray(np.round(pixels * 255.0), dtype=np.uint8)


def band_image(
    cutout: npt.NDArray[np.floating], *, bands: Sequence[str], band: str
) -> npt.NDArray[np.uint8]:
    """One band (H, W) uint8 of a cutout (bands, H, W) in nJy: asinh stretch, own scale, +y up."""
    if band not in bands:
        raise CutoutError(f"no band {band!r} in the cutouts; they hold {list(bands)}")
    values = np.nan_to_num(np.asarray(cutout[list(bands).index(band)], dtype=np.float64))
    stretched = np.arcsinh(SOFTENING * np.clip(values, 0.0, None) / STRETCH)
    top = float(np.percentile(stretched, 99.5)) if stretched.size else 0.0
    if top <= 0 and stretched.size:  # a few bright pixels on an empty sky
        top = float(stretched.max())
    scaled = np.clip(stretched / top, 0.0, 1.0) if top > 0 else np.zeros_like(stretched)
    return np.asarray(np.round(scaled[::-1] * 255.0), dtype=np.uint8)


def png_bytes(pixels: npt.NDArray[np.uint8], *, scale: int = 1) -> bytes:
    """PNG of an (H, W) grey or (H, W, 3) RGB uint8 image, each pixel `scale` x `scale`."""
    if scale < 1:
        raise ValueError(f"scale {scale} must be a positive integer")
    if scale > 1:
        pixels = np.repeat(np.repeat(pixels, scale, axis=0), scale, axis=1)
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def data_uri(png: bytes) -> str:
    """A PNG as a data: URI, for a page that must carry its images."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
