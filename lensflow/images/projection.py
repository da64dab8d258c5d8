"""Celestial WCS helpers: checked reading, sky <-> pixel, shifted grids, shared projections.

Pixel coordinates are 0-based with pixel centres at integers (astropy's convention): pixel i
covers [i - 0.5, i + 0.5). Sky positions are ICRS ra, dec in degrees.
"""

from __future__ import annotations

import json

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS, Sip
from astropy.wcs.utils import proj_plane_pixel_scales

from lensflow.errors import ImageError
from lensflow.io import canonical_hash


def celestial_wcs(header: fits.Header, *, where: str) -> WCS:
    """The 2-axis equatorial WCS of an image header; ImageError(no_celestial_wcs) otherwise."""
    try:
        wcs = WCS(header).celestial
    except Exception as exc:  # astropy raises several types for a malformed WCS
        raise ImageError(f"{where}: unreadable WCS ({exc})", reason="no_celestial_wcs") from exc
    ctypes = [str(c).upper() for c in wcs.wcs.ctype]
    if wcs.naxis != 2 or not wcs.has_celestial:
        raise ImageError(
            f"{where}: no celestial WCS (CTYPE {ctypes}); tiles need RA---XXX/DEC--XXX axes",
            reason="no_celestial_wcs",
        )
    if not (ctypes[wcs.wcs.lng].startswith("RA") and ctypes[wcs.wcs.lat].startswith("DEC")):
        raise ImageError(
            f"{where}: the WCS is not equatorial (CTYPE {ctypes}); tiles need RA/DEC axes",
            reason="no_celestial_wcs",
        )
    if any(t is not None for t in (wcs.cpdis1, wcs.cpdis2, wcs.det2im1, wcs.det2im2)):
        raise ImageError(
            f"{where}: lookup-table distortions are not supported in coadd tiles",
            reason="no_celestial_wcs",
        )
    return wcs


def wcs_from_text(text: str) -> WCS:
    """A WCS from the header text `wcs_to_text` wrote."""
    return WCS(fits.Header.fromstring(text))


def wcs_to_text(wcs: WCS) -> str:
    """The WCS as header text (SIP included), enough to rebuild it exactly."""
    return str(wcs.to_header_string(relax=True))


def sky_to_pixel(wcs: WCS, ra: np.ndarray, dec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixel x, y (0-based, float64 (N,)) of positions ra, dec (deg)."""
    world = [ra, dec] if wcs.wcs.lng == 0 else [dec, ra]
    x, y = wcs.world_to_pixel_values(*world)
    return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)


def pixel_to_sky(wcs: WCS, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ra, dec (deg, float64 (N,)) of pixel positions x, y (0-based)."""
    a, b = wcs.pixel_to_world_values(x, y)
    ra, dec = (a, b) if wcs.wcs.lng == 0 else (b, a)
    return np.asarray(ra, dtype=np.float64) % 360.0, np.asarray(dec, dtype=np.float64)


def shifted(wcs: WCS, dx: int, dy: int) -> WCS:
    """The same projection with pixel (dx, dy) as the new origin (a window's own grid)."""
    new = wcs.deepcopy()
    offset = np.array([dx, dy], dtype=np.float64)
    new.wcs.crpix = wcs.wcs.crpix - offset
    if wcs.sip is not None:
        sip = wcs.sip
        new.sip = Sip(sip.a, sip.b, sip.ap, sip.bp, np.asarray(sip.crpix) - offset)
    return new


def projection_key(wcs: WCS) -> str:
    """Equal for tiles that differ only by an integer CRPIX offset (patches of one tract)."""

    def rounded(values: object) -> list[float]:
        return [float(f"{v:.12e}") for v in np.ravel(np.asarray(values, dtype=np.float64))]

    sip = wcs.sip
    parts = {
        "ctype": [str(c) for c in wcs.wcs.ctype],
        "crval": rounded(wcs.wcs.crval),
        "cd": rounded(wcs.pixel_scale_matrix),
        "poles": rounded([wcs.wcs.lonpole, wcs.wcs.latpole]),
        "pv": [[int(i), int(m), float(v)] for i, m, v in wcs.wcs.get_pv()],
        "radesys": str(wcs.wcs.radesys),
        "crpix_fraction": [round(float(c) % 1.0, 6) % 1.0 for c in wcs.wcs.crpix],
        "sip": None
        if sip is None
        else [
            rounded(m) for m in (sip.a, sip.b) + ((sip.ap, sip.bp) if sip.ap is not None else ())
        ],
    }
    return canonical_hash(json.loads(json.dumps(parts)))[:32]


def pixel_scale_arcsec(wcs: WCS) -> tuple[float, float]:
    """The pixel sides along x and y at the reference point, arcsec."""
    scales = proj_plane_pixel_scales(wcs) * 3600.0
    return float(scales[0]), float(scales[1])


def bounding_cap(vectors: np.ndarray) -> tuple[np.ndarray, float]:
    """A cap (centre unit vector (3,), radius in radians) holding every vector of (N, 3)."""
    mean = vectors.sum(axis=0)
    norm = float(np.linalg.norm(mean))
    if norm < 1e-12:
        return np.array([0.0, 0.0, 1.0]), float(np.pi)
    centre = mean / norm
    radius = float(np.arccos(np.clip(vectors @ centre, -1.0, 1.0)).max())
    return centre, radius
