"""The scan config: one validated TOML file, unknown sections and keys refused by name.

Paths in the file are relative to the file; the catalog and the image tiles may also be URLs
(`https://...`, `s3://...`), kept as written and read through fsspec with the section's
`storage_options` (fsspec's own keys; credentials come from the environment). The fingerprint covers what decides a scan's
results (catalog and its file set, column map, cuts, sky region, models and their hashes,
thresholds) and not how it runs (cluster options), so a resumed scan on another cluster is
still the same scan. Which magnitudes a scan needs is not fixed here: the models' manifest
names them, and the scan checks the column map against it before any task runs.
"""

from __future__ import annotations

import difflib
import json
import math
import re
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal, Self, TypeGuard, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from lensflow.cluster_config import ClusterConfig as ClusterConfig  # noqa: PLC0414 (re-export)
from lensflow.cluster_config import ClusterSection
from lensflow.errors import ConfigError, LensflowError, PixelError
from lensflow.locations import check_storage_options, check_url, is_url, location
from lensflow.sky import parse_pixel, pixel_key
from lensflow.units import unit_factor

BAND_KEYS = ("mag", "magerr", "psfmag", "size")
"""Per-band column-map keys: magnitude, its error, PSF magnitude, PSF-corrected size (arcsec)."""

BAND_KEY = re.compile(rf"^({'|'.join(BAND_KEYS)})_[A-Za-z0-9]+$")
"""Column-map keys of one band: mag_g, magerr_N921, psfmag_i, size_r, ..."""

REGIONS = ("cone", "polygon", "moc", "pixels")
"""The kinds of sky region a [sky] section may name, exactly one at a time."""


def read_toml(path: Path, *, what: str) -> dict[str, Any]:
    """Parse a TOML file, naming the file and what it should be in every error."""
    try:
        with Path(path).open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no {what} here") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc


def problems(exc: ValidationError, *, model: type[BaseModel] | None = None) -> str:
    """One indented line per invalid key: its dotted path and what is wrong."""
    return "\n".join(f"  {line}" for line in problem_lines(exc, model=model))


def problem_lines(exc: ValidationError, *, model: type[BaseModel] | None = None) -> list[str]:
    """One line per problem; with the model, unknown names get the closest known one."""
    return [_problem(dict(err), model) for err in exc.errors()]


def _problem(err: dict[str, Any], model: type[BaseModel] | None) -> str:
    loc = tuple(str(part) for part in err["loc"])
    if err["type"] == "unknown_key":
        key = str(err["ctx"]["key"])
        return _unknown((*loc, key), err["input"].get(key), model)
    if err["type"] == "extra_forbidden":
        return _unknown(loc, err["input"], model)
    if err["type"] == "missing" and loc[-1].isdigit():  # a list of fixed length, too short
        return f"{'.'.join(loc[:-1])}: too few values (no item {loc[-1]})"
    if err["type"] == "missing":
        if model is not None and _section_at(model, loc) is not None:
            return f"missing section [{'.'.join(loc)}]"
        return f"missing key {'.'.join(loc)}"
    message = str(err["msg"]).removeprefix("Value error, ")
    return f"{'.'.join(loc) or 'config'}: {message}"


def _unknown(loc: tuple[str, ...], value: object, model: type[BaseModel] | None) -> str:
    table = isinstance(value, dict)
    parent = None if model is None else _section_at(model, loc[:-1])
    choices = [] if parent is None else parent.key_choices(loc[-1])
    match = difflib.get_close_matches(loc[-1], choices, n=1)

    def shown(name: tuple[str, ...]) -> str:
        return f"[{'.'.join(name)}]" if table else ".".join(name)

    text = f"unknown {'section' if table else 'key'} {shown(loc)}"
    return f"{text}; did you mean {shown((*loc[:-1], match[0]))}?" if match else text


def _section_at(
    model: type[BaseModel], loc: tuple[str, ...]
) -> type[_Section | ClusterSection] | None:
    """The section model found by following `loc` through `model`'s fields, or None."""
    found: type[BaseModel] = model
    for part in loc:
        field = found.model_fields.get(part)
        if field is None:
            return None
        inner = [t for t in (field.annotation, *get_args(field.annotation)) if _is_section(t)]
        if not inner:
            return None
        found = inner[0]
    return found if _is_section(found) else None


def _is_section(kind: object) -> TypeGuard[type[_Section | ClusterSection]]:
    return isinstance(kind, type) and issubclass(kind, _Section | ClusterSection)


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    @classmethod
    def key_choices(cls, key: str) -> list[str]:
        """The names a misspelt `key` may have meant."""
        return list(cls.model_fields)


class ColumnMap(_Section):
    """lensflow's names -> the survey catalog's own column names.

    id, ra and dec are required; `mag_<band>`, `magerr_<band>`, `psfmag_<band>` (PSF
    magnitude) and `size_<band>` (PSF-corrected size, arcsec) may name any band (the models'
    manifest says which a scan needs); extendedness and flags are optional.
    """

    model_config = ConfigDict(frozen=True, extra="allow")
    __pydantic_extra__: dict[str, str] = Field(init=False)

    id: str
    ra: str
    dec: str
    extendedness: str | None = None
    flags: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _band_keys(cls, raw: Any) -> Any:
        for key in raw if isinstance(raw, dict) else ():
            if key not in cls.model_fields and not BAND_KEY.fullmatch(str(key)):
                raise PydanticCustomError("unknown_key", "unknown key {key}", {"key": str(key)})
        return raw

    @classmethod
    def key_choices(cls, key: str) -> list[str]:
        """The fixed names, `key` spelt as a band key (mag-g -> mag_g, psf_mag_i -> psfmag_i)
        and the band keys of its band (sizes_r -> size_r)."""
        head, _, band = re.sub(r"[^A-Za-z0-9]+", "_", key).rpartition("_")
        heads = (head.replace("_", "").lower(), *BAND_KEYS) if head else ()
        spelt = [f"{h}_{band}" for h in heads]
        return [*cls.model_fields, *dict.fromkeys(k for k in spelt if BAND_KEY.fullmatch(k))]

    def mapped(self) -> dict[str, str]:
        """lensflow name -> catalog column, for every mapped column."""
        return {k: v for k, v in self.model_dump().items() if v is not None}

    def require(self, names: Iterable[str], *, needed_by: str) -> None:
        """Refuse a map that lacks any of `names`, saying what needs them."""
        missing = [name for name in names if name not in self.mapped()]
        if missing:
            raise ConfigError(
                f"[catalog.columns] has no {', '.join(missing)}; {needed_by} needs "
                f"{'it' if len(missing) == 1 else 'them'}: map each to the catalog's column, "
                f'e.g. {missing[0]} = "..."'
            )


def _location(value: Any) -> Any:
    if isinstance(value, str | Path) and is_url(value):
        return check_url(str(value))
    return location(value) if isinstance(value, str) else value


Location = Annotated[Path | str, BeforeValidator(_location)]
"""A local path (relative to the config's folder) or a URL fsspec knows, kept as written."""

StorageOptions = Annotated[dict[str, Any], AfterValidator(check_storage_options)]
"""fsspec's options for a URL's filesystem (endpoint_url, anon, ...); never credentials."""


class CatalogConfig(_Section):
    path: Location
    columns: ColumnMap
    storage_options: StorageOptions = Field(default_factory=dict)


class CutsConfig(_Section):
    expression: str = "true"


class SkyConfig(_Section):
    """The part of the sky a scan or plan covers: exactly one of the four kinds of region.

    cone = [ra, dec, radius] in degrees; polygon = [[ra, dec], ...] in degrees, at least 3
    vertices, convex, edges along great circles; moc = a MOC FITS file (relative to the
    config's folder); pixels = HEALPix names "K/P", of any order.
    """

    cone: tuple[float, float, float] | None = None
    polygon: tuple[tuple[float, float], ...] | None = None
    moc: Path | None = None
    pixels: tuple[str, ...] | None = None

    @field_validator("cone")
    @classmethod
    def _cone(cls, cone: tuple[float, float, float] | None) -> tuple[float, float, float] | None:
        if cone is not None:
            ra, dec, radius = cone
            if not math.isfinite(ra):
                raise ValueError("cone ra must be a finite number of degrees")
            from hats.pixel_math.validators import validate_declination_values

            validate_declination_values(dec)
            if not 0.0 < radius <= 180.0:
                raise ValueError(f"cone radius must be in (0, 180] degrees, not {radius}")
        return cone

    @field_validator("polygon")
    @classmethod
    def _polygon(
        cls, vertices: tuple[tuple[float, float], ...] | None
    ) -> tuple[tuple[float, float], ...] | None:
        if vertices is not None:
            if len(vertices) < 3:
                raise ValueError(f"polygon must have at least 3 vertices, not {len(vertices)}")
            if not all(math.isfinite(v) for vertex in vertices for v in vertex):
                raise ValueError("polygon vertices must be finite numbers of degrees")
            from hats.pixel_math.validators import validate_polygon

            validate_polygon(list(vertices))
        return vertices

    @field_validator("pixels")
    @classmethod
    def _pixels(cls, names: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if names is not None:
            if not names:
                raise ValueError("pixels must name at least one pixel, e.g. 3/123")
            try:
                return tuple(dict.fromkeys(pixel_key(parse_pixel(name)) for name in names))
            except PixelError as exc:
                raise ValueError(str(exc)) from None
        return names

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        chosen = [kind for kind in REGIONS if getattr(self, kind) is not None]
        if len(chosen) != 1:
            raise ValueError(
                f"give exactly one of {', '.join(REGIONS)} (found {', '.join(chosen) or 'none'})"
            )
        return self

    @property
    def kind(self) -> str:
        """Which of the four kinds of region this is."""
        return next(kind for kind in REGIONS if getattr(self, kind) is not None)


BAND_FIELD = "{band}"


class ImagesConfig(_Section):
    """Coadd tiles (FITS with a WCS) to cut the cutout store from.

    `tiles` is a glob in which "{band}" stands for each band, e.g.
    "coadds/*/calexp-{band}-*.fits.fz"; relative globs are relative to the config file.
    """

    tiles: str  # a local glob or a URL glob (s3://bucket/coadds/*-{band}.fits.fz)
    storage_options: StorageOptions = Field(default_factory=dict)
    bands: list[str] = Field(min_length=1)
    hdu: int | str | None = None  # None: the first image HDU (index 1 in a .fits.fz)
    mask_hdu: int | str | None = None  # None: the HDU named MASK where a tile has one
    mask_bits: int | None = Field(default=None, gt=0)  # None: any nonzero bit masks a pixel
    unit: str = "nJy"  # "nJy", "nanomaggy" or "zero_point:ZP"
    size: int = Field(default=64, gt=0, le=4096)  # stamp side, pixels
    psf_fwhm_arcsec: dict[str, float] | None = None  # None: from the tiles' headers
    max_open_tiles: int = Field(default=8, gt=0)  # open HDUs kept per partition task

    @field_validator("tiles")
    @classmethod
    def _tiles_url(cls, tiles: str) -> str:
        return check_url(tiles) if is_url(tiles) else tiles

    @field_validator("unit")
    @classmethod
    def _known_unit(cls, unit: str) -> str:
        try:
            unit_factor(unit)
        except LensflowError as exc:
            raise ValueError(str(exc)) from None
        return unit

    @field_validator("bands")
    @classmethod
    def _unique_bands(cls, bands: list[str]) -> list[str]:
        if len(set(bands)) != len(bands):
            raise ValueError(f"bands {bands} name a band twice")
        if any(not band or not band.isprintable() or "/" in band for band in bands):
            raise ValueError(f"bands {bands}: each band is a short printable name without '/'")
        return bands

    @model_validator(mode="after")
    def _tiles_name_the_band(self) -> Self:
        if len(self.bands) > 1 and BAND_FIELD not in self.tiles:
            raise ValueError(
                f"tiles {self.tiles!r} must contain {BAND_FIELD} (replaced by each of the "
                f"bands {self.bands}), e.g. 'coadds/*/calexp-{{band}}-*.fits.fz'"
            )
        if self.psf_fwhm_arcsec is not None:
            bad = {b: v for b, v in self.psf_fwhm_arcsec.items() if not v > 0.0}
            unknown = sorted(set(self.psf_fwhm_arcsec) - set(self.bands))
            if bad or unknown:
                raise ValueError(
                    f"psf_fwhm_arcsec: values must be positive arcsec for the configured bands "
                    f"{self.bands} (not positive: {bad}, unknown bands: {unknown})"
                )
        return self

    def pattern(self, band: str) -> str:
        """The tile glob of one band."""
        return self.tiles.replace(BAND_FIELD, band)

    def resolved(self, base: Path) -> Self:
        """The same config with a relative tile glob made absolute against `base`."""
        if is_url(self.tiles) or Path(self.tiles).is_absolute():
            return self
        return self.model_copy(update={"tiles": str(Path(base).resolve() / self.tiles)})


class PhotometryConfig(_Section):
    threshold: float | None = Field(default=None, ge=0.0, le=1.0)  # None: the manifest's


class CutoutsConfig(_Section):
    path: Path


class ModelsConfig(_Section):
    manifest: Path | None = None  # None: the models shipped with lensflow


Precision = Literal["float32", "int8"]
"""Which file of each ensemble member runs: its own (float32) or its quantized variant (int8)."""


class EnsembleConfig(_Section):
    threshold: float | None = Field(default=None, ge=0.0, le=1.0)  # None: the manifest's
    prior_lens_rate: float = Field(default=1e-4, gt=0.0, lt=1.0)  # lenses per source, for p_lens
    batch_size: int = Field(default=32, gt=0, le=65_536)  # cutouts per run on a CPU
    gpu_batch_size: int = Field(default=1024, gt=0, le=65_536)  # per run where sessions use CUDA
    # float32: the members' own files (the default); int8: their quantized variants, where the
    # manifest has them (`lensflow train quantize` records how closely they follow float32)
    precision: Precision = "float32"


class ModellingConfig(_Section):
    """The lens-modelling networks of the models' manifest, run on the candidates above min_score.

    enabled None: on when the manifest has a [modelling] table whose bands, size, pixel scale
    and units are the cutout store's (else off, with a warning); true: required (a ConfigError
    when the manifest has none or it does not fit); false: off.
    """

    enabled: bool | None = None
    min_score: float | None = Field(default=None, ge=0.0, le=1.0)  # None: the ensemble threshold


class OutputConfig(_Section):
    path: Path = Path("scan")


class PlanConfig(_Section):
    """A scan config as `lensflow plan` reads it: every section known, [cutouts] optional.

    Plan uses [catalog] (path, columns id, ra, dec), [cuts], [sky] and [cluster] only.
    """

    catalog: CatalogConfig
    cuts: CutsConfig = CutsConfig()
    sky: SkyConfig | None = None  # None: the whole catalog
    photometry: PhotometryConfig = PhotometryConfig()
    cutouts: CutoutsConfig | None = None
    images: ImagesConfig | None = None  # coadd tiles to build [cutouts] from
    models: ModelsConfig = ModelsConfig()
    ensemble: EnsembleConfig = EnsembleConfig()
    modelling: ModellingConfig = ModellingConfig()
    output: OutputConfig = OutputConfig()
    cluster: ClusterConfig = ClusterConfig()

    @classmethod
    def from_toml(cls, path: Path) -> Self:
        """Read a config file; relative paths in it become relative to its folder."""
        path = Path(path)
        raw = read_toml(path, what="scan config")
        return cls.from_dict(raw, base=path.parent, source=str(path))

    @classmethod
    def from_dict(cls, raw: dict[str, Any], *, base: Path, source: str = "scan config") -> Self:
        """Validate a config mapping, resolving relative paths against base."""
        try:
            config = cls.model_validate(raw)
        except ValidationError as exc:
            lines = problem_lines(exc, model=cls)
            if len(lines) == 1:
                raise ConfigError(f"{source}: {lines[0]}") from None
            listed = "\n".join(f"  {line}" for line in lines)
            raise ConfigError(f"{source}: {len(lines)} problems:\n{listed}") from None
        return config.resolved(base)

    def resolved(self, base: Path) -> Self:
        """The same config with every relative path made absolute against base."""

        def absolute(p: Path | str) -> Path | str:
            if isinstance(p, str):  # a URL
                return p
            return p if p.is_absolute() else (base / p).resolve()

        def moved(section: BaseModel | None, key: str) -> Any:
            value = None if section is None else getattr(section, key)
            if section is None or value is None:
                return section
            return section.model_copy(update={key: absolute(value)})

        return self.model_copy(
            update={
                "catalog": moved(self.catalog, "path"),
                "cutouts": moved(self.cutouts, "path"),
                "models": moved(self.models, "manifest"),
                "output": moved(self.output, "path"),
                "sky": moved(self.sky, "moc"),
                "images": None if self.images is None else self.images.resolved(base),
                "cluster": self.cluster.resolved(base),
            }
        )

    def to_toml_dict(self) -> dict[str, Any]:
        """A TOML-ready mapping of this config (None values left out)."""
        return json.loads(self.model_dump_json(exclude_none=True))  # type: ignore[no-any-return]


class ScanConfig(PlanConfig):
    """A scan's config: as the plan's, with [cutouts] required."""

    cutouts: CutoutsConfig
