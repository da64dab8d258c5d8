"""The scan config: one validated TOML file, unknown keys refused by name.

Paths in the file are relative to the file. The fingerprint covers what decides a scan's
results (catalog and its file set, column map, cuts, models and their hashes, thresholds) and
not how it runs (cluster options), so a resumed scan on another cluster is still the same scan.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lensflow.errors import ConfigError

BANDS = ("g", "r", "i", "z")


def read_toml(path: Path, *, what: str) -> dict[str, Any]:
    """Parse a TOML file, naming the file and what it should be in every error."""
    try:
        with Path(path).open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no {what} here") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc


def problems(exc: ValidationError) -> str:
    """One line per invalid key: its dotted path and what is wrong."""
    return "\n".join(
        f"  {'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
    )


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ColumnMap(_Section):
    """lensflow's names -> the survey catalog's own column names."""

    id: str
    ra: str
    dec: str
    mag_g: str
    mag_r: str
    mag_i: str
    mag_z: str
    magerr_g: str | None = None
    magerr_r: str | None = None
    magerr_i: str | None = None
    magerr_z: str | None = None
    extendedness: str | None = None
    flags: str | None = None

    def mapped(self) -> dict[str, str]:
        """lensflow name -> catalog column, for every mapped column."""
        return {k: v for k, v in self.model_dump().items() if v is not None}


class CatalogConfig(_Section):
    path: Path
    columns: ColumnMap


class CutsConfig(_Section):
    expression: str = "true"


class PhotometryConfig(_Section):
    threshold: float | None = Field(default=None, ge=0.0, le=1.0)  # None: the manifest's


class CutoutsConfig(_Section):
    path: Path


class ModelsConfig(_Section):
    manifest: Path | None = None  # None: the models shipped with lensflow


class EnsembleConfig(_Section):
    threshold: float | None = Field(default=None, ge=0.0, le=1.0)  # None: the manifest's
    batch_size: int = Field(default=256, gt=0, le=65_536)


class OutputConfig(_Section):
    path: Path = Path("scan")


class ClusterConfig(_Section):
    """How the scan runs; not part of the fingerprint."""

    scheduler: str | None = None  # None: start a LocalCluster on 127.0.0.1
    n_workers: int | None = Field(default=None, gt=0)
    threads_per_worker: int = Field(default=1, gt=0)
    memory_limit: str = "auto"
    allowed_failures: int = Field(default=2, ge=0)
    io_retries: int = Field(default=2, ge=0)
    max_in_flight: int = Field(default=256, gt=0)
    dashboard: bool = True


class ScanConfig(_Section):
    catalog: CatalogConfig
    cuts: CutsConfig = CutsConfig()
    photometry: PhotometryConfig = PhotometryConfig()
    cutouts: CutoutsConfig
    models: ModelsConfig = ModelsConfig()
    ensemble: EnsembleConfig = EnsembleConfig()
    output: OutputConfig = OutputConfig()
    cluster: ClusterConfig = ClusterConfig()

    @classmethod
    def from_toml(cls, path: Path) -> Self:
        """Read a config file; relative paths in it become relative to its folder."""
        path = Path(path)
        return cls.from_dict(read_toml(path, what="scan config"), base=path.parent)

    @classmethod
    def from_dict(cls, raw: dict[str, Any], *, base: Path) -> Self:
        """Validate a config mapping, resolving relative paths against base."""
        try:
            config = cls.model_validate(raw)
        except ValidationError as exc:
            raise ConfigError(f"invalid scan config:\n{problems(exc)}") from None
        return config.resolved(base)

    def resolved(self, base: Path) -> Self:
        """The same config with every relative path made absolute against base."""

        def absolute(p: Path) -> Path:
            return p if p.is_absolute() else (base / p).resolve()

        manifest = self.models.manifest
        return self.model_copy(
            update={
                "catalog": self.catalog.model_copy(update={"path": absolute(self.catalog.path)}),
                "cutouts": self.cutouts.model_copy(update={"path": absolute(self.cutouts.path)}),
                "models": self.models.model_copy(
                    update={"manifest": None if manifest is None else absolute(manifest)}
                ),
                "output": self.output.model_copy(update={"path": absolute(self.output.path)}),
            }
        )

    def to_toml_dict(self) -> dict[str, Any]:
        """A TOML-ready mapping of this config (None values left out)."""
        return json.loads(self.model_dump_json(exclude_none=True))  # type: ignore[no-any-return]


class PlanConfig(_Section):
    """The part of a scan config `lensflow plan` needs: catalog and cuts only."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    catalog: CatalogConfig
    cuts: CutsConfig = CutsConfig()
    cluster: ClusterConfig = ClusterConfig()

    @classmethod
    def from_toml(cls, path: Path) -> Self:
        path = Path(path)
        try:
            config = cls.model_validate(read_toml(path, what="scan config"))
        except ValidationError as exc:
            raise ConfigError(f"{path}: invalid config:\n{problems(exc)}") from None
        catalog_path = config.catalog.path
        if not catalog_path.is_absolute():
            catalog_path = (path.parent / catalog_path).resolve()
        return config.model_copy(
            update={"catalog": config.catalog.model_copy(update={"path": catalog_path})}
        )
