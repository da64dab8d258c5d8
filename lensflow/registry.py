"""The models manifest (`models/manifest.toml`): which ONNX files a scan runs, pinned by sha256.

Layout:

    version = 1
    [photometry]                      # the catalog gate: an MLP on magnitudes
    name, file, sha256, threshold, features = ["mag_g", "mag_r", "mag_i", "mag_z"], survey
    [photometry.training] / [photometry.metrics]   free-form tables, copied into reports
    [ensemble]
    threshold = 0.5                   # on the ensemble score
    [[ensemble.members]]
    name, file, sha256, flops, bands, size, pixel_scale_arcsec, units, normalisation, survey
    [ensemble.members.training] / [ensemble.members.metrics]
    [ensemble.members.int8]           # optional: a quantized copy (`lensflow train quantize`)
    file, sha256, method, ops, calibration = {...}, agreement = {spearman, agreement, ...}
    [ensemble.combination]            # optional: the ensemble score; without it, the mean
    method = "logistic", weights = {member = w, ...}, bias = b
    [ensemble.combination.fitted_on]  # n_lenses, n_non_lenses, seed or store of the set
    [ensemble.calibration]            # optional: p_lens of each candidate
    method = "isotonic", scores = [...], probabilities = [...], lens_fraction = f
    [ensemble.calibration.fitted_on]
    [modelling]                       # optional: the lens-modelling networks (lensflow.modelling)

Photometry models take float32 (N, len(features)) magnitudes; CNN members take float32
(N, bands, size, size) in `units`; both return one probability per row, (N,) or (N, 1).
Normalisation (colours, asinh stretch) lives inside each ONNX graph and is described in text.
`survey` (optional) names the survey profile (`lensflow.surveys`) a model was trained for.
The combination and the calibration are applied by `lensflow.calibration`; a manifest without
them scores the mean of the members, as manifests always did. A manifest is read at a precision:
"float32" (always the default) runs each member's own file, "int8" its [int8] variant.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from lensflow.config import Precision, problems, read_toml
from lensflow.errors import ConfigError, ModelMismatchError
from lensflow.io import canonical_hash


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


class QuantizedVariant(_Frozen):
    """An INT8 copy of a member (ONNX Runtime static QDQ) and how closely it follows float32.

    agreement: measured on a labelled held-out set by `lensflow train quantize`: Spearman rank
    correlation with the float32 scores, the fraction of cutouts on the same side of the
    threshold, AUROC/TPR0/TPR10 of both, the set's size, the one-thread speed-up.
    """

    file: str
    sha256: str
    method: str = "static QDQ"
    ops: tuple[str, ...] = ("Conv", "Relu", "Clip")
    calibration: dict[str, Any] = {}
    agreement: dict[str, Any] = {}


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
    int8: QuantizedVariant | None = None


RESERVED_SCORER_NAMES = ("ensemble", "mean", "p_lens")
"""Names a member may not take: the scores reports and candidate tables hold beside members'."""


class EnsembleCombination(_Frozen):
    """A logistic regression on the members' logits; its score is lensflow.calibration's."""

    method: Literal["logistic"] = "logistic"
    weights: dict[str, float] = Field(min_length=1)
    bias: float
    fitted_on: dict[str, Any] = {}


class EnsembleCalibration(_Frozen):
    """Isotonic knots: ensemble score -> P(lens) at the fitting set's lens fraction."""

    method: Literal["isotonic"] = "isotonic"
    scores: tuple[float, ...] = Field(min_length=2)
    probabilities: tuple[float, ...] = Field(min_length=2)
    lens_fraction: float = Field(gt=0.0, lt=1.0)
    fitted_on: dict[str, Any] = {}

    @model_validator(mode="after")
    def _monotone(self) -> Self:
        scores, probabilities = self.scores, self.probabilities
        if len(scores) != len(probabilities):
            raise ValueError(f"{len(scores)} scores for {len(probabilities)} probabilities")
        if any(b <= a for a, b in itertools.pairwise(scores)):
            raise ValueError("calibration scores must increase strictly")
        if any(b < a for a, b in itertools.pairwise(probabilities)):
            raise ValueError("calibration probabilities must not decrease")
        if not all(0.0 <= p <= 1.0 for p in probabilities):
            raise ValueError("calibration probabilities must lie in [0, 1]")
        return self


class EnsembleModels(_Frozen):
    threshold: float = Field(ge=0.0, le=1.0)
    members: tuple[EnsembleMember, ...] = Field(min_length=1)
    metrics: dict[str, Any] = {}
    combination: EnsembleCombination | None = None  # None: the mean of the members
    calibration: EnsembleCalibration | None = None  # None: no p_lens

    @model_validator(mode="after")
    def _names(self) -> Self:
        names = [m.name for m in self.members]
        reserved = sorted(set(names) & set(RESERVED_SCORER_NAMES))
        if reserved:
            raise ValueError(f"member names {reserved} are reserved for the ensemble's scores")
        if len(set(names)) != len(names):
            raise ValueError(f"member names repeat: {names}")
        if self.combination is not None and set(self.combination.weights) != set(names):
            raise ValueError(
                f"combination weights name {sorted(self.combination.weights)}, members are "
                f"{sorted(names)}; refit it with `lensflow train calibrate`"
            )
        return self


@functools.lru_cache(maxsize=256)
def _inside(folder: Path, file: str) -> Path:
    """folder/file resolved (symbolic links followed), refused if it leaves the folder; cached,
    as the stages ask for each model's path once per partition."""
    path = (folder / file).resolve()
    if not path.is_relative_to(folder.resolve()):
        raise ModelMismatchError(f"{file!r}: model files must lie inside {folder}")
    return path


class ModelManifest(_Frozen):
    """A parsed models manifest; `folder` is where its files live."""

    version: int = 1
    folder: Path = Path()
    photometry: PhotometryModel
    ensemble: EnsembleModels
    modelling: dict[str, Any] = {}  # [modelling]: read and checked by lensflow.modelling

    def path_of(self, file: str) -> Path:
        """A model file's path, refused if it would leave the manifest's folder."""
        return _inside(self.folder, file)

    def at_precision(self, precision: Precision, *, source: Path | str = "") -> Self:
        """This manifest with each member's file and sha256 those of `precision`.

        "int8" needs every member's [int8] variant (a ConfigError naming the first without one);
        the variants' sha256 join the model versions, so the scan fingerprint follows them.
        """
        if precision == "float32":
            return self
        members = []
        for member in self.ensemble.members:
            if member.int8 is None:
                raise ConfigError(
                    f"{source or self.folder}: member {member.name!r} has no int8 variant; "
                    "make them with `lensflow train quantize` or set [ensemble] precision = "
                    '"float32"'
                )
            variant = member.int8
            members.append(
                member.model_copy(update={"file": variant.file, "sha256": variant.sha256})
            )
        ensemble = self.ensemble.model_copy(update={"members": tuple(members)})
        return self.model_copy(update={"ensemble": ensemble})

    def for_inference(self) -> Self:
        """This manifest without its records (training, metrics, int8 agreement): what scoring
        needs, small enough to ship to every worker."""
        bare: dict[str, Any] = {"training": {}, "metrics": {}}
        members = tuple(m.model_copy(update={**bare, "int8": None}) for m in self.ensemble.members)
        ensemble = self.ensemble.model_copy(update={"members": members, "metrics": {}})
        photometry = self.photometry.model_copy(update=bare)
        return self.model_copy(update={"ensemble": ensemble, "photometry": photometry})

    def versions(self) -> str:
        """One short string naming every model and its hash prefix, stored with candidates."""
        parts = [f"{self.photometry.name}@{self.photometry.sha256[:12]}"]
        parts += [f"{m.name}@{m.sha256[:12]}" for m in self.ensemble.members]
        for name, table in self.ensemble_tables().items():
            parts.append(f"{name}@{canonical_hash(table)[:12]}")
        return ",".join(parts)

    def ensemble_tables(self) -> dict[str, dict[str, Any]]:
        """The fitted combination and calibration present, as plain tables keyed by name.

        Their hashes join the model versions and the scan fingerprint: refitting either changes
        the scores a scan writes.
        """
        tables = {
            "combination": self.ensemble.combination,
            "calibration": self.ensemble.calibration,
        }
        return {k: v.model_dump(mode="json") for k, v in tables.items() if v is not None}


def default_manifest_path() -> Path:
    """The manifest shipped inside the installed package."""
    return Path(str(resources.files("lensflow.models").joinpath("manifest.toml")))


def load_manifest(
    path: Path | None = None, *, verify: bool = True, precision: Precision = "float32"
) -> ModelManifest:
    """Read and validate a models manifest at a precision; with verify, check every file's
    sha256 now (the chosen variants' for int8)."""
    path = default_manifest_path() if path is None else Path(path)
    raw = read_toml(path, what="models manifest")
    try:
        manifest = ModelManifest.model_validate({**raw, "folder": path.parent})
    except ValidationError as exc:
        raise ConfigError(f"{path}: invalid models manifest:\n{problems(exc)}") from None
    manifest = manifest.at_precision(precision, source=path)
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
    data = path.read_bytes()  # one read for the digest and the format check
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise ModelMismatchError(
            f"{path}: sha256 {actual} does not match the manifest's {expected}; "
            "re-export the model or update the manifest"
        )
    check_onnx_file(path, data)


_MODEL_FIELDS = {1: 0, 2: 2, 3: 2, 4: 2, 5: 0, 6: 2, 7: 2, 8: 2, 14: 2, 20: 2, 25: 2}
"""ModelProto's top-level fields (onnx.proto) and their protobuf wire types (0 varint, 2 bytes)."""


def check_onnx_file(path: Path, data: bytes | None = None) -> None:
    """Refuse a file that is not an ONNX model (ModelMismatchError naming it), before loading.

    Walks the top-level protobuf fields of ModelProto: each must be one of its fields with the
    right wire type and length, and ir_version and graph must be there. Payloads are skipped.
    `data`: the file's bytes, where the caller has read them.
    """
    data = Path(path).read_bytes() if data is None else data
    seen: set[int] = set()
    at = 0
    problem = None
    while at < len(data) and problem is None:
        key, at = _varint(data, at)
        field, wire = key >> 3, key & 7
        if key < 0 or _MODEL_FIELDS.get(field) != wire:
            problem = f"unexpected bytes at offset {at}"
            break
        value, at = _varint(data, at)
        if value < 0:
            problem = "truncated"
        elif wire == 2:
            at += value
            if at > len(data):
                problem = "truncated"
        seen.add(field)
    if problem is None and not {1, 7} <= seen:
        problem = "no ir_version or graph"
    if problem is not None:
        raise ModelMismatchError(
            f"{path}: not an ONNX model ({problem}); export the model to ONNX and point the "
            "manifest at that file"
        )


def _varint(data: bytes, at: int) -> tuple[int, int]:
    """A protobuf varint at `at`: (value, next offset); value -1 when it runs off the end."""
    value, shift = 0, 0
    while at < len(data) and shift < 64:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, at
        shift += 7
    return -1, at
