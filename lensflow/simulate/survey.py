"""The mock survey: bands, pixel scale, PSF sizes, depths and saturation of the simulated images.

Pixel values are fluxes in nJy (AB: m = 31.4 - 2.5 log10(f / nJy)). The sky is subtracted; its
Gaussian noise has the per-pixel sigma given here, and the source Poisson noise uses the gain that
makes that sigma the Poisson noise of the dark sky (`Survey.gain`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from frozendict import frozendict

from lensflow.errors import SimulationError


def frozen(
    mapping: Mapping[str, float] | None = None, /, **kwargs: float
) -> frozendict[str, float]:
    """An immutable, hashable str -> float mapping (for the fields of frozen dataclasses)."""
    if isinstance(mapping, frozendict) and not kwargs:
        return mapping
    merged = dict(mapping or {}, **kwargs)
    return frozendict({str(k): float(v) for k, v in merged.items()})


def ab_to_njy(mag: float) -> float:
    """Flux in nJy of an AB magnitude (inf -> 0)."""
    return 0.0 if math.isinf(mag) and mag > 0 else 10.0 ** (-0.4 * (mag - 31.4))


def njy_to_ab(flux: float) -> float:
    """AB magnitude of a flux in nJy (0 -> inf; negative -> nan)."""
    if flux > 0.0:
        return 31.4 - 2.5 * math.log10(flux)
    return math.inf if flux == 0.0 else math.nan


def _default(values: dict[str, float]) -> Any:
    return field(default_factory=lambda: frozen(values))


@dataclass(frozen=True)
class Survey:
    """A survey profile: what the simulated images and catalogs look like.

    psf_fwhm_arcsec and sky_sigma_njy (per-pixel Gaussian sky noise, nJy) are given per catalog
    band; sky_mag_arcsec2 (dark-sky surface brightness, AB mag / arcsec^2) sets the gain.
    """

    bands: tuple[str, ...] = ("g", "r", "i")
    catalog_bands: tuple[str, ...] = ("g", "r", "i", "z")
    pixel_scale_arcsec: float = 0.2
    cutout_size: int = 64
    zero_point_ab: float = 31.4
    psf_fwhm_arcsec: Mapping[str, float] = _default({"g": 0.85, "r": 0.75, "i": 0.70, "z": 0.70})
    sky_sigma_njy: Mapping[str, float] = _default({"g": 2.85, "r": 3.88, "i": 6.60, "z": 10.5})
    sky_mag_arcsec2: Mapping[str, float] = _default(
        {"g": 22.26, "r": 21.20, "i": 20.48, "z": 19.60}
    )
    saturation_njy: float = 1.0e5

    def __post_init__(self) -> None:
        for name in ("psf_fwhm_arcsec", "sky_sigma_njy", "sky_mag_arcsec2"):
            object.__setattr__(self, name, frozen(getattr(self, name)))
        missing = [
            (name, band)
            for name in ("psf_fwhm_arcsec", "sky_sigma_njy", "sky_mag_arcsec2")
            for band in self.catalog_bands
            if band not in getattr(self, name)
        ]
        if missing:
            raise SimulationError(f"survey lacks values for (field, band) {missing}")
        if not set(self.bands) <= set(self.catalog_bands):
            raise SimulationError(
                f"image bands {self.bands} must be among the catalog bands {self.catalog_bands}"
            )
        if self.cutout_size < 8 or self.pixel_scale_arcsec <= 0.0:
            raise SimulationError(
                f"cutout_size {self.cutout_size} (>= 8) and pixel_scale_arcsec "
                f"{self.pixel_scale_arcsec} (> 0) are out of range"
            )

    def shifted(self, *, seeing_factor: float = 1.0, depth_mag: float = 0.0) -> Survey:
        """The same survey with FWHM x seeing_factor and depth changed by depth_mag.

        depth_mag > 0 is deeper, < 0 shallower: sky sigma x 10**(-0.2 depth_mag).
        """
        if seeing_factor <= 0.0:
            raise SimulationError(f"seeing_factor must be > 0, got {seeing_factor}")
        scale = 10.0 ** (-0.2 * depth_mag)
        return replace(
            self,
            psf_fwhm_arcsec=frozen({b: v * seeing_factor for b, v in self.psf_fwhm_arcsec.items()}),
            sky_sigma_njy=frozen({b: v * scale for b, v in self.sky_sigma_njy.items()}),
        )

    def sky_level_njy(self, band: str) -> float:
        """Dark-sky flux per pixel in nJy (subtracted from the images, its noise kept)."""
        return ab_to_njy(self.sky_mag_arcsec2[band]) * self.pixel_scale_arcsec**2

    def gain(self, band: str) -> float:
        """Effective gain (counts per nJy) that makes sky_sigma the dark sky's Poisson noise."""
        return self.sky_level_njy(band) / self.sky_sigma_njy[band] ** 2

    def store_attributes(self) -> dict[str, Any]:
        """What a cutout store of this survey's images records (`lensflow.cutouts.create_store`
        keywords): image bands, pixel scale (arcsec), PSF FWHM per band, cutout size, zero point.
        """
        return {
            "bands": self.bands,
            "pixel_scale_arcsec": self.pixel_scale_arcsec,
            "psf_fwhm_arcsec": {b: self.psf_fwhm_arcsec[b] for b in self.bands},
            "cutout_size": self.cutout_size,
            "zero_point_ab": self.zero_point_ab,
        }

    def point_depth(self, band: str, *, nsigma: float = 5.0) -> float:
        """AB magnitude of a point source detected at nsigma (Gaussian PSF, PSF-weighted flux)."""
        sigma_psf = self.psf_fwhm_arcsec[band] / (2.0 * math.sqrt(2.0 * math.log(2.0)))
        n_eff = 4.0 * math.pi * sigma_psf**2 / self.pixel_scale_arcsec**2
        return njy_to_ab(nsigma * self.sky_sigma_njy[band] * math.sqrt(n_eff))


LSST_LIKE = Survey()
"""The default profile: an LSST-like ten-year coadd (g 26.5, r 26.3, i 25.8 point depths)."""
