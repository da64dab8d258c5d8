"""Model lenses with the modelling networks: SIE + shear parameters with uncertainties (ONNX).

The manifest's `[modelling]` table names K networks (`[[modelling.members]]`, file + sha256),
the parameters they predict (name, unit, the labels column of their truth, their role) and the
input spec (bands, size, pixel scale, units; the asinh normalisation lives in each graph). A
network takes cutouts float32 (N, bands, size, size) in `units` and gives float32 (N, 2 P): the
mean of each parameter, then the log-variance of its Gaussian (the aleatoric uncertainty),
trained with the Gaussian negative log-likelihood. Here the K Gaussians are combined as an
equal-weight mixture: mean = mean_k mu_k, variance = mean_k var_k (aleatoric) + var_k mu_k
(epistemic, the networks' spread), and each parameter's sigma is multiplied by the manifest's
`sigma_scale` for it (fitted on a validation split; 1 where absent). onnxruntime only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Self

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from lensflow.config import problems, read_toml
from lensflow.cutouts import StoreInfo
from lensflow.errors import ConfigError, ModelMismatchError
from lensflow.registry import default_manifest_path, verify_hash
from lensflow.sessions import load_session

logger = logging.getLogger(__name__)

DEFAULT_BATCH = 256
"""Cutouts per ONNX Runtime run."""

ERR_SUFFIX = "_err"
"""A parameter's uncertainty column is its name plus this suffix (theta_E -> theta_E_err)."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ModellingParameter(_Frozen):
    """A predicted parameter: its column name, unit, truth column in labels, and role."""

    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$")
    unit: str = ""
    truth: str
    role: Literal["scalar", "x", "y", "spin2_1", "spin2_2"] = "scalar"


class ModellingMember(_Frozen):
    """One modelling network: its ONNX file (relative to the manifest) pinned by sha256."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    file: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    seed: int | None = None
    flops: int | None = None
    training: dict[str, Any] = {}


class ModellingModels(_Frozen):
    """The `[modelling]` table of a models manifest; `folder` is where its files live."""

    folder: Path = Path()
    version: str = "0"
    survey: str | None = None
    bands: tuple[str, ...] = Field(min_length=1)
    size: int = Field(gt=0)
    pixel_scale_arcsec: float = Field(gt=0.0)
    units: str
    normalisation: str = ""
    outputs: str = ""
    parameters: tuple[ModellingParameter, ...] = Field(min_length=1)
    sigma_scale: dict[str, float] = {}
    members: tuple[ModellingMember, ...] = Field(min_length=1)
    training: dict[str, Any] = {}
    metrics: dict[str, Any] = {}

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        names = [p.name for p in self.parameters]
        if len(set(names)) != len(names):
            raise ValueError(f"parameter names repeat: {names}")
        unknown = sorted(set(self.sigma_scale) - set(names))
        if unknown:
            raise ValueError(f"sigma_scale names parameters {unknown} not in {names}")
        if any(not (s > 0.0 and np.isfinite(s)) for s in self.sigma_scale.values()):
            raise ValueError(f"sigma_scale values must be positive: {self.sigma_scale}")
        members = [m.name for m in self.members]
        if len(set(members)) != len(members):
            raise ValueError(f"member names repeat: {members}")
        return self

    @property
    def names(self) -> tuple[str, ...]:
        """The parameter names, in the networks' output order."""
        return tuple(p.name for p in self.parameters)

    def path_of(self, file: str) -> Path:
        """A network file's path, refused if it would leave the manifest's folder."""
        path = (self.folder / file).resolve()
        if not path.is_relative_to(self.folder.resolve()):
            raise ModelMismatchError(f"{file!r}: model files must lie inside {self.folder}")
        return path

    def for_inference(self) -> ModellingModels:
        """The same networks without their training records and metrics (small to ship)."""
        members = tuple(m.model_copy(update={"training": {}}) for m in self.members)
        return self.model_copy(update={"members": members, "training": {}, "metrics": {}})

    def scales(self) -> np.ndarray:
        """The sigma scale of each parameter, float64 (P,) (1 where the manifest has none)."""
        return np.array([self.sigma_scale.get(n, 1.0) for n in self.names], dtype=np.float64)


def load_modelling(path: Path | None = None, *, verify: bool = True) -> ModellingModels:
    """The `[modelling]` table of a models manifest (default: the shipped one), validated;
    with verify, every network file's sha256 checked now."""
    path = default_manifest_path() if path is None else Path(path)
    raw = read_toml(path, what="models manifest")
    table = raw.get("modelling")
    if not isinstance(table, dict):
        raise ConfigError(
            f"{path}: no [modelling] table; train the networks with `lensflow train modelling "
            "--config configs/train/modelling.toml` or name a manifest that has one"
        )
    try:
        modelling = ModellingModels.model_validate({**table, "folder": path.parent})
    except ValidationError as exc:
        raise ConfigError(f"{path}: invalid [modelling] table:\n{problems(exc)}") from None
    if verify:
        for member in modelling.members:
            verify_hash(modelling.path_of(member.file), member.sha256)
    return modelling


def check_modelling_inputs(modelling: ModellingModels, store: StoreInfo) -> None:
    """Refuse a cutout store whose bands, size, pixel scale or units are not the networks'."""
    misfit = store.misfit(
        bands=modelling.bands,
        size=modelling.size,
        pixel_scale_arcsec=modelling.pixel_scale_arcsec,
        units=modelling.units,
    )
    if misfit is not None:
        raise ModelMismatchError(
            f"the modelling networks expect {misfit}; use networks trained for this survey"
        )


def scan_modelling(
    manifest: Path | None, *, enabled: bool | None, store: StoreInfo
) -> ModellingModels | None:
    """The modelling networks a scan runs on its candidates, or None (see [modelling] enabled).

    enabled None: the manifest's [modelling] networks where it has them and they fit the
    cutout store, else None; True: those networks or a ConfigError saying why not; False: None.
    """
    if enabled is False:
        return None
    source = default_manifest_path() if manifest is None else Path(manifest)
    if enabled is None and not isinstance(
        read_toml(source, what="models manifest").get("modelling"), dict
    ):
        return None
    modelling = load_modelling(source)
    try:
        check_modelling_inputs(modelling, store)
    except ModelMismatchError as exc:
        if enabled is None:
            logger.warning("%s; the scan runs without them", exc)
            return None
        raise ConfigError(
            f"[modelling] enabled = true, but {exc}; or set [modelling] enabled = false"
        ) from None
    return modelling


def modelling_columns(modelling: ModellingModels) -> tuple[str, ...]:
    """The candidate columns the networks fill: each parameter, then its sigma (theta_E_err)."""
    return tuple(name for n in modelling.names for name in (n, n + ERR_SUFFIX))


@dataclass(frozen=True)
class LensPredictions:
    """Per lens and parameter (N, P), float64: the mixture mean, its aleatoric and epistemic
    variances (before the sigma scale) and the total sigma (after it), in the parameters' units."""

    names: tuple[str, ...]
    mean: np.ndarray
    aleatoric: np.ndarray
    epistemic: np.ndarray
    sigma: np.ndarray

    def column(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(mean, sigma) of one parameter, (N,) each."""
        k = self.names.index(name)
        return self.mean[:, k], self.sigma[:, k]


def _check_images(images: np.ndarray, modelling: ModellingModels) -> np.ndarray:
    images = np.asarray(images)
    want = (len(modelling.bands), modelling.size, modelling.size)
    if images.ndim != 4 or tuple(images.shape[1:]) != want:
        raise ModelMismatchError(
            f"cutouts of shape {images.shape} given to the modelling networks, which take "
            f"(N, {want[0]}, {want[1]}, {want[2]}): bands {list(modelling.bands)}, "
            f"{modelling.size}x{modelling.size} px in {modelling.units}"
        )
    return np.ascontiguousarray(images, dtype=np.float32)


def network_outputs(
    images: np.ndarray, *, modelling: ModellingModels, batch: int = DEFAULT_BATCH, threads: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Each network's means and variances, float64 (K, N, P) each, for cutouts (N, b, H, W).

    threads: ONNX Runtime intra-op threads (0: as many as the worker or machine has).
    """
    x = _check_images(images, modelling)
    n, p = x.shape[0], len(modelling.parameters)
    means = np.empty((len(modelling.members), n, p))
    variances = np.empty_like(means)
    for k, member in enumerate(modelling.members):
        session = load_session(modelling.path_of(member.file), member.sha256, threads)
        name = session.get_inputs()[0].name
        for start in range(0, n, batch):
            (out,) = session.run(None, {name: x[start : start + batch]})
            out = np.asarray(out, dtype=np.float64)
            if out.ndim != 2 or out.shape[1] != 2 * p:
                raise ModelMismatchError(
                    f"{member.file}: gives outputs of shape {out.shape}; the manifest names {p} "
                    f"parameters, so (N, {2 * p}) is expected (means, then log-variances)"
                )
            means[k, start : start + batch] = out[:, :p]
            variances[k, start : start + batch] = np.exp(out[:, p:])
    return means, variances


def combine(
    means: np.ndarray, variances: np.ndarray, *, names: tuple[str, ...], scales: np.ndarray
) -> LensPredictions:
    """The equal-weight mixture of K Gaussians per lens and parameter, (K, N, P) -> (N, P).

    sigma = scales x sqrt(aleatoric + epistemic); scales float64 (P,).
    """
    mean = means.mean(axis=0)
    aleatoric = variances.mean(axis=0)
    epistemic = means.var(axis=0)
    sigma = np.sqrt(aleatoric + epistemic) * np.asarray(scales, dtype=np.float64)
    return LensPredictions(names, mean, aleatoric, epistemic, sigma)


def predict_lenses(
    images: np.ndarray, *, modelling: ModellingModels, batch: int = DEFAULT_BATCH, threads: int = 0
) -> LensPredictions:
    """Lens parameters with uncertainties for cutouts float32 (N, bands, size, size).

    A cutout with a non-finite pixel gets NaN for every parameter and sigma.
    """
    x = _check_images(images, modelling)
    means, variances = network_outputs(x, modelling=modelling, batch=batch, threads=threads)
    result = combine(means, variances, names=modelling.names, scales=modelling.scales())
    bad = ~np.isfinite(x).all(axis=(1, 2, 3))
    if bad.any():
        logger.warning("%d of %d cutouts have non-finite pixels: not modelled", bad.sum(), bad.size)
        for values in (result.mean, result.aleatoric, result.epistemic, result.sigma):
            values[bad] = np.nan
    return result


def modelling_schema(modelling: ModellingModels) -> pa.Schema:
    """Columns of model_lenses: each parameter then its sigma (name + "_err"), float64."""
    fields = []
    for p in modelling.parameters:
        meta = {"unit": p.unit, "truth": p.truth}
        fields.append(pa.field(p.name, pa.float64(), metadata=meta))
        fields.append(pa.field(p.name + ERR_SUFFIX, pa.float64(), metadata=meta))
    return pa.schema(fields)


def model_lenses(
    cutouts: np.ndarray, *, modelling: ModellingModels, batch: int = DEFAULT_BATCH
) -> pa.Table:
    """One row per cutout (N, bands, size, size), in order: for every parameter its mixture
    mean and its total 1-sigma uncertainty (aleatoric + epistemic, sigma-scaled), e.g.
    theta_E, theta_E_err, e1, e1_err, ... (see modelling_schema), in the parameters' units."""
    result = predict_lenses(cutouts, modelling=modelling, batch=batch)
    columns: dict[str, Any] = {}
    for k, name in enumerate(result.names):
        columns[name] = result.mean[:, k]
        columns[name + ERR_SUFFIX] = result.sigma[:, k]
    return pa.table(columns, schema=modelling_schema(modelling))
