"""Survey profiles: what a survey's images and catalog look like, as data (TOML).

A profile names the image bands (the cutouts' bands, in order) and the catalog bands, the pixel
scale and cutout size, the units of the cutout store and of the survey's own coadds, the
saturation level, and per band the PSF FWHM, the per-pixel sky noise (or the 5-sigma
point-source depth it follows from), the dark-sky surface brightness and the effective
wavelength; then the per-cutout seeing prior and the catalog's own column names. `lsst` (the
mock survey), `hsc` and `legacy` ship here as TOML files; `survey_profile` reads one of them
by name or any file with the same keys.

Pixel values of a cutout store are fluxes in nJy (AB: m = 31.4 - 2.5 log10(f / nJy)). The sky
is subtracted; its Gaussian noise has the per-pixel sigma of the profile, and source Poisson
noise uses the gain that makes that sigma the Poisson noise of the dark sky (`Survey.gain`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any, Final, Literal, Self

from frozendict import frozendict
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from lensflow.config import problems, read_toml
from lensflow.errors import ConfigError, SimulationError

DEFAULT_SURVEY = "lsst"
"""The profile the simulator, training and the command line use unless told otherwise."""

NAME = re.compile(r"^[a-z][a-z0-9_-]*$")
"""How a shipped profile (and any profile's `name`) is spelt; anything else is a file path."""

STORE_UNITS: Final = "nJy"
STORE_ZERO_POINT_AB: Final = 31.4
"""What a cutout store holds: nJy, whatever the survey's coadds hold."""

BandTemplate = Literal["mag", "magerr", "psf_mag", "size"]
BAND_TEMPLATES: tuple[BandTemplate, ...] = ("mag", "magerr", "psf_mag", "size")
"""The per-band column templates of a catalog (`CatalogColumns`)."""


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


def point_source_pixels(fwhm_arcsec: float, pixel_scale_arcsec: float) -> float:
    """Effective number of pixels of a Gaussian PSF (4 pi sigma^2 / pixel area), PSF weighting."""
    sigma_psf = fwhm_arcsec / (2.0 * math.sqrt(2.0 * math.log(2.0)))
    return 4.0 * math.pi * sigma_psf**2 / pixel_scale_arcsec**2


def sky_sigma_for_depth(
    depth_ab: float, *, fwhm_arcsec: float, pixel_scale_arcsec: float, nsigma: float = 5.0
) -> float:
    """Per-pixel sky sigma (nJy) that puts the nsigma point-source depth at depth_ab.

    The inverse of `Survey.point_depth` (Gaussian PSF of fwhm_arcsec, PSF-weighted flux).
    """
    n_eff = point_source_pixels(fwhm_arcsec, pixel_scale_arcsec)
    return ab_to_njy(depth_ab) / (nsigma * math.sqrt(n_eff))


@dataclass(frozen=True, kw_only=True)
class Survey:
    """A survey profile: what its images and catalog look like (see the module docstring).

    psf_fwhm_arcsec, sky_sigma_njy (per-pixel Gaussian sky noise, nJy), sky_mag_arcsec2
    (dark-sky surface brightness, AB mag / arcsec^2, sets the gain) and wavelength_nm are given
    per catalog band. Each cutout's seeing is the nominal FWHM times a common factor drawn in
    seeing_range, times (1 + N(0, seeing_scatter)) per band, clipped to seeing_range.
    """

    name: str
    bands: tuple[str, ...]
    catalog_bands: tuple[str, ...]
    pixel_scale_arcsec: float
    cutout_size: int
    psf_fwhm_arcsec: Mapping[str, float]
    sky_sigma_njy: Mapping[str, float]
    sky_mag_arcsec2: Mapping[str, float]
    wavelength_nm: Mapping[str, float]
    saturation_njy: float
    seeing_range: tuple[float, float]
    seeing_scatter: float
    columns: CatalogColumns
    description: str = ""
    units: str = STORE_UNITS
    zero_point_ab: float = STORE_ZERO_POINT_AB
    coadd_units: str = STORE_UNITS
    coadd_zero_point_ab: float = STORE_ZERO_POINT_AB

    def __post_init__(self) -> None:
        per_band = ("psf_fwhm_arcsec", "sky_sigma_njy", "sky_mag_arcsec2", "wavelength_nm")
        for name in per_band:
            object.__setattr__(self, name, frozen(getattr(self, name)))
        missing = [
            (name, band)
            for name in per_band
            for band in self.catalog_bands
            if band not in getattr(self, name)
        ]
        if missing:
            raise SimulationError(f"survey lacks values for (field, band) {missing}")
        if not self.bands or not set(self.bands) <= set(self.catalog_bands):
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

        depth_mag > 0 is deeper, < 0 shallower: sky sigma x 10**(-0.4 depth_mag), so that the
        5-sigma point depth moves by exactly depth_mag (a flux limit scales with the noise).
        """
        if seeing_factor <= 0.0:
            raise SimulationError(f"seeing_factor must be > 0, got {seeing_factor}")
        scale = 10.0 ** (-0.4 * depth_mag)
        return replace(
            self,
            psf_fwhm_arcsec=frozen({b: v * seeing_factor for b, v in self.psf_fwhm_arcsec.items()}),
            sky_sigma_njy=frozen({b: v * scale for b, v in self.sky_sigma_njy.items()}),
        )

    def rgb_bands(self) -> tuple[str, str, str]:
        """The three reddest image bands by effective wavelength, red first (lsst: i r g): the
        bands a colour composite shows as red, green and blue."""
        if len(self.bands) < 3:
            raise SimulationError(
                f"an RGB composite needs three image bands; {self.name!r} has {list(self.bands)}"
            )
        red, green, blue = sorted(self.bands, key=lambda b: -self.wavelength_nm[b])[:3]
        return red, green, blue

    def sky_level_njy(self, band: str) -> float:
        """Dark-sky flux per pixel in nJy (subtracted from the images, its noise kept)."""
        return ab_to_njy(self.sky_mag_arcsec2[band]) * self.pixel_scale_arcsec**2

    def gain(self, band: str) -> float:
        """Effective gain (counts per nJy) that makes sky_sigma the dark sky's Poisson noise."""
        return self.sky_level_njy(band) / self.sky_sigma_njy[band] ** 2

    def store_attributes(self) -> dict[str, Any]:
        """What a cutout store of this survey's images records (`lensflow.cutouts.create_store`
        keywords): image bands, pixel scale (arcsec), PSF FWHM per band, cutout size, units and
        zero point.
        """
        return {
            "bands": self.bands,
            "pixel_scale_arcsec": self.pixel_scale_arcsec,
            "psf_fwhm_arcsec": {b: self.psf_fwhm_arcsec[b] for b in self.bands},
            "cutout_size": self.cutout_size,
            "zero_point_ab": self.zero_point_ab,
            "units": self.units,
        }

    def point_depth(self, band: str, *, nsigma: float = 5.0) -> float:
        """AB magnitude of a point source detected at nsigma (Gaussian PSF, PSF-weighted flux)."""
        n_eff = point_source_pixels(self.psf_fwhm_arcsec[band], self.pixel_scale_arcsec)
        return njy_to_ab(nsigma * self.sky_sigma_njy[band] * math.sqrt(n_eff))


# --- the TOML file ----------------------------------------------------------------------------


class _Table(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class BandTable(_Table):
    """[bands.<band>]: one band's numbers; sky_sigma_njy or point_depth_5sigma, not both."""

    psf_fwhm_arcsec: float = Field(gt=0.0)
    sky_sigma_njy: float | None = Field(default=None, gt=0.0)
    point_depth_5sigma: float | None = None
    sky_mag_arcsec2: float
    wavelength_nm: float = Field(gt=0.0)

    @model_validator(mode="after")
    def _one_noise(self) -> Self:
        if (self.sky_sigma_njy is None) == (self.point_depth_5sigma is None):
            raise ValueError("give exactly one of sky_sigma_njy and point_depth_5sigma")
        return self


class SeeingTable(_Table):
    """[seeing]: the per-cutout seeing prior (factors on the nominal FWHM)."""

    factor_range: tuple[float, float]
    band_scatter: float = Field(ge=0.0)

    @field_validator("factor_range")
    @classmethod
    def _ordered(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not 0.0 < value[0] <= value[1]:
            raise ValueError(f"need 0 < low <= high, got {list(value)}")
        return value


class CoaddTable(_Table):
    """[coadds]: what the survey's own coadd images hold (a count of zero point zero_point_ab)."""

    units: str
    zero_point_ab: float


class CatalogColumns(_Table):
    """[columns]: the survey catalog's own column names; mag, magerr, psf_mag and size (the
    PSF-corrected size, arcsec) are per-band templates containing "{band}" ("{band}KronMag")."""

    id: str
    ra: str
    dec: str
    mag: str
    magerr: str
    psf_mag: str
    size: str = "size_{band}"
    extendedness: str
    flags: str

    @field_validator("mag", "magerr", "psf_mag", "size")
    @classmethod
    def _template(cls, value: str) -> str:
        if "{band}" not in value:
            raise ValueError(f'{value!r} must contain "{{band}}" (e.g. "{{band}}KronMag")')
        try:
            value.format(band="r")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"{value!r} is not a template with only {{band}}: {exc}") from None
        return value

    def band(self, template: BandTemplate, band: str) -> str:
        """A band's column from one of the templates: band("mag", "r") -> "rKronMag"."""
        text: str = getattr(self, template)
        return text.format(band=band)


class ProfileFile(_Table):
    """A survey profile as written in TOML (see lensflow/surveys/lsst.toml)."""

    name: str = Field(pattern=NAME.pattern)
    description: str = ""
    image_bands: tuple[str, ...] = Field(min_length=1)
    catalog_bands: tuple[str, ...] = Field(min_length=1)
    pixel_scale_arcsec: float = Field(gt=0.0)
    cutout_size: int = Field(ge=8)
    units: Literal["nJy"] = STORE_UNITS
    zero_point_ab: float = STORE_ZERO_POINT_AB
    saturation_njy: float = Field(gt=0.0)
    coadds: CoaddTable
    seeing: SeeingTable
    columns: CatalogColumns
    bands: dict[str, BandTable]

    @field_validator("zero_point_ab")
    @classmethod
    def _store_zero_point(cls, value: float) -> float:
        if value != STORE_ZERO_POINT_AB:
            raise ValueError(f"cutout stores hold nJy, zero point {STORE_ZERO_POINT_AB}")
        return value

    @model_validator(mode="after")
    def _bands_agree(self) -> Self:
        for listed, what in (
            (self.image_bands, "image_bands"),
            (self.catalog_bands, "catalog_bands"),
        ):
            if len(set(listed)) != len(listed):
                raise ValueError(f"{what} repeat a band: {list(listed)}")
        if not set(self.image_bands) <= set(self.catalog_bands):
            raise ValueError(
                f"image_bands {list(self.image_bands)} must be among catalog_bands "
                f"{list(self.catalog_bands)}"
            )
        absent = [b for b in self.catalog_bands if b not in self.bands]
        if absent:
            raise ValueError(f"catalog bands {absent} have no [bands.<band>] table")
        return self

    def survey(self) -> Survey:
        """The Survey this file describes (depths turned into per-pixel sky sigmas)."""
        bands = {b: self.bands[b] for b in self.catalog_bands}
        sigma = {
            b: t.sky_sigma_njy
            if t.sky_sigma_njy is not None
            else sky_sigma_for_depth(
                float(t.point_depth_5sigma),  # type: ignore[arg-type]
                fwhm_arcsec=t.psf_fwhm_arcsec,
                pixel_scale_arcsec=self.pixel_scale_arcsec,
            )
            for b, t in bands.items()
        }
        return Survey(
            name=self.name,
            description=self.description,
            bands=self.image_bands,
            catalog_bands=self.catalog_bands,
            pixel_scale_arcsec=self.pixel_scale_arcsec,
            cutout_size=self.cutout_size,
            psf_fwhm_arcsec={b: t.psf_fwhm_arcsec for b, t in bands.items()},
            sky_sigma_njy=sigma,
            sky_mag_arcsec2={b: t.sky_mag_arcsec2 for b, t in bands.items()},
            wavelength_nm={b: t.wavelength_nm for b, t in bands.items()},
            saturation_njy=self.saturation_njy,
            seeing_range=self.seeing.factor_range,
            seeing_scatter=self.seeing.band_scatter,
            columns=self.columns,
            units=self.units,
            zero_point_ab=float(self.zero_point_ab),
            coadd_units=self.coadds.units,
            coadd_zero_point_ab=self.coadds.zero_point_ab,
        )


def shipped_profiles() -> tuple[str, ...]:
    """Names of the profiles that ship with lensflow, sorted."""
    folder = resources.files(__name__)
    return tuple(sorted(p.name.removesuffix(".toml") for p in folder.iterdir() if _is_toml(p)))


def _is_toml(path: Any) -> bool:
    return bool(path.is_file() and str(path.name).endswith(".toml"))


def profile_path(name_or_path: str | Path) -> Path | None:
    """The file a profile reference names, or None when it names a shipped profile."""
    text = str(name_or_path)
    if isinstance(name_or_path, Path) or not NAME.fullmatch(text):
        return Path(text)
    return None


def survey_profile(name_or_path: str | Path = DEFAULT_SURVEY) -> Survey:
    """A survey profile: a shipped one by name ("lsst", "hsc", "legacy") or a TOML file."""
    path = profile_path(name_or_path)
    if path is None:
        return _shipped(str(name_or_path))
    return _read(path)


_SHIPPED: dict[str, Survey] = {}


def _shipped(name: str) -> Survey:
    if name not in _SHIPPED:
        if name not in shipped_profiles():
            raise ConfigError(
                f"unknown survey {name!r}; shipped profiles: {', '.join(shipped_profiles())} "
                "(or give a profile's TOML file)"
            )
        _SHIPPED[name] = _read(Path(str(resources.files(__name__).joinpath(f"{name}.toml"))))
    return _SHIPPED[name]


def _read(path: Path) -> Survey:
    raw = read_toml(path, what="survey profile")
    try:
        parsed = ProfileFile.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{path}: invalid survey profile:\n{problems(exc)}") from None
    try:
        return parsed.survey()
    except SimulationError as exc:
        raise ConfigError(f"{path}: invalid survey profile: {exc}") from None
