"""The models manifest (`models/manifest.toml`): which ONNX files a scan runs, pinned by sha256.

Layout:

    version = 1
    [photometry]                      # the catalog gate: an MLP on magnitudes
    name, file, sha256, threshold, features = ["mag_g", "mag_r", "mag_i", "mag_z"], survey
    [photometry.training] / [photometry.metrics]   free-form tables, copied into reports
    [ensemble]
    threshold = 0.5                   # on the mean member score
    [[ensemble.members]]
    name, file, sha256, flops, bands, size, pixel_scale_arcsec, units, normalisation, survey
    [ensemble.members.training] / [ensemble.members.metrics]

Photometry models take float32 (N, len(features)) magnitudes; CNN members take float32
(N, bands, size, size) in `units`; both return one probability per row, (N,) or (N, 1).
Normalisation (colours, asinh stretch) lives inside each ONNX graph and is described in text.
`survey` (optional) names the survey profile (`lensflow.surveys`) a model was trained for.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lensflow.config import problems, read_toml
from lensflow.errors import ConfigError, ModelMismatchError
from lensflow.io import file_digest


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PhotometryModel(_Frozen):
    name: str
    file: str
    sha256: str
    threshold: float = Field(ge=0.0, le=1.0)
    features: tuple[str, ...]
    survey: str | None = None
    version: str = "0"
    training: dict[str, Any] = {}
    metrics: dict[str, Any] = {}


class EnsembleMember(_Frozen):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    file: str
    sha256: str
    bands: tuple[str, ...]
    size: int = Field(gt=0)
    pixel_scale_arcsec: float = Field(gt=0.0)
    units: str
    normalisation: str = ""
    survey: str | None = None
    flops: int | None = None
    version: str = "0"
    training: dict[str, Any] = {}
    metrics: dict[str, Any] = {}


class EnsembleModels(_Frozen):
    threshold: float = Field(ge=0.0, le=1.0)
    members: tuple[EnsembleMember, ...] = Field(min_length=1)
    metrics: dict[str, Any] = {}


class ModelManifest(_Frozen):
    """A parsed models manifest; `folder` is where its files live."""

    version: int = 1
    folder: Path = Path()
    photometry: PhotometryModel
    ensemble: EnsembleModels

    def path_of(self, file: str) -> Path:
        """A model file's path, refused if it would leave the manifest's folder."""
        path = (self.folder / file).resolve()
        if not path.is_relative_to(self.folder.resolve()):
            raise ModelMismatchError(f"{file!r}: model files must lie inside {self.folder}")
        return path

    def versions(self) -> str:
        """One short string naming every model and its hash prefix, stored with candidates."""
        parts = [f"{self.photometry.name}@{self.photometry.sha256[:12]}"]
        parts += [f"{m.name}@{m.sha256[:12]}" for m in self.ensemble.members]
        return ",".join(parts)


def default_manifest_path() -> Path:
    """The manifest shipped inside the installed package."""
    return Path(str(resources.files("lensflow.models").joinpath("manifest.toml")))


def load_manifest(path: Path | None = None, *, verify: bool = True) -> ModelManifest:
    """Read and validate a models manifest; with verify, check every file's sha256 now."""
    path = default_manifest_path() if path is None else Path(path)
    raw = read_toml(path, what="models manifest")
    try:
        manifest = ModelManifest.model_validate({**raw, "folder": path.parent})
    except ValidationError as exc:
        raise ConfigError(f"{path}: invalid models manifest:\n{problems(exc)}") from None
    if verify:
        verify_hash(manifest.path_of(manifest.photometry.file), manifest.photometry.sha256)
        for member in manifest.ensemble.members:
            verify_hash(manifest.path_of(member.file), member.sha256)
    return manifest


def verify_hash(path: Path, expected: str) -> None:
    """Refuse a model file that is absent, not ONNX by name, or whose sha256 differs."""
    if path.suffix != ".onnx":
        raise ModelMismatchError(f"{path}: only .onnx model files are loaded (never pickles)")
    if not path.is_file():
        raise ModelMismatchError(f"{path}: model file missing")
    actual = file_digest(path)
    if actual != expected:
        raise ModelMismatchError(
            f"{path}: sha256 {actual} does not match the manifest's {expected}; "
            "re-export the model or update the manifest"
        )
