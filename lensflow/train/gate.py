"""The photometry gate's inputs and network: catalog columns in, derived features in the graph.

A gate is described by a list of features, each a group expanded over the survey's catalog
bands or one feature by name:

    mag               mag_<band>                       AB magnitudes
    colour            colour_<a>_<b> = mag_a - mag_b   adjacent bands
    psf_minus_model   psf_minus_model_<band> = psfmag_<band> - mag_<band>
    size              size_<band>                      PSF-corrected size, arcsec
    extendedness      extendedness                     1 extended, 0 point-like

and any column-map name by itself (mag_<band>, magerr_<band>, psfmag_<band>, size_<band>,
extendedness). The ONNX graph takes the catalog columns the features need (`inputs`, the
manifest's `features`, float32 (N, inputs)) and makes every feature as a fixed linear map of
them (`derive`, (inputs, features)), then standardises and runs the MLP.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from lensflow.errors import ConfigError
from lensflow.surveys import Survey
from lensflow.train.models import ProbabilityModel

GROUPS: tuple[str, ...] = ("mag", "colour", "psf_minus_model", "size", "extendedness")
"""Feature groups a gate's features may name."""

COLUMN = re.compile(r"^(mag|magerr|psfmag|size)_([A-Za-z0-9]+)$")
COLOUR = re.compile(r"^colour_([A-Za-z0-9]+)_([A-Za-z0-9]+)$")
PSF_MINUS_MODEL = re.compile(r"^psf_minus_model_([A-Za-z0-9]+)$")

WORDS = {
    "mag": "AB magnitudes",
    "magerr": "magnitude errors",
    "psfmag": "PSF magnitudes",
    "psf_minus_model": "PSF minus model magnitudes",
    "size": "PSF-corrected sizes (arcsec)",
}


@dataclass(frozen=True)
class GateFeatures:
    """A gate's catalog columns (`inputs`, column-map names, the ONNX input's order), its
    features (`derived`) and the map between them: derive[i, j] = weight of input i in feature j."""

    inputs: tuple[str, ...]
    derived: tuple[str, ...]
    derive: tuple[tuple[float, ...], ...]
    text: str

    @property
    def matrix(self) -> np.ndarray:
        """derive as float32 (inputs, features)."""
        return np.asarray(self.derive, dtype=np.float32).reshape(len(self.inputs), -1)

    @property
    def morphology(self) -> bool:
        """Whether any input is a morphology column (PSF magnitude, size, extendedness)."""
        return any(not name.startswith(("mag_", "magerr_")) for name in self.inputs)


def _expanded(spec: Sequence[str], bands: Sequence[str]) -> list[str]:
    """Feature names, the groups expanded over the bands, first appearance kept."""
    names: list[str] = []
    for item in spec:
        if item == "mag":
            names += [f"mag_{b}" for b in bands]
        elif item == "colour":
            names += [f"colour_{a}_{b}" for a, b in itertools.pairwise(bands)]
        elif item == "psf_minus_model":
            names += [f"psf_minus_model_{b}" for b in bands]
        elif item == "size":
            names += [f"size_{b}" for b in bands]
        else:
            names.append(item)
    return list(dict.fromkeys(names))


def _terms(name: str, bands: Sequence[str]) -> dict[str, float]:
    """The inputs of one feature with their weights; ConfigError for an unknown one."""
    known = set(bands)
    if (m := COLOUR.fullmatch(name)) and {m[1], m[2]} <= known:
        return {f"mag_{m[1]}": 1.0, f"mag_{m[2]}": -1.0}
    if (m := PSF_MINUS_MODEL.fullmatch(name)) and m[1] in known:
        return {f"psfmag_{m[1]}": 1.0, f"mag_{m[1]}": -1.0}
    if ((m := COLUMN.fullmatch(name)) and m[2] in known) or name == "extendedness":
        return {name: 1.0}
    raise ConfigError(
        f"photometry feature {name!r} is unknown for bands {list(bands)}: name a group "
        f"({', '.join(GROUPS)}) or a feature such as mag_r, psfmag_r, size_g, colour_g_r, "
        "psf_minus_model_g, extendedness"
    )


def _words(derived: Sequence[str], bands: Sequence[str]) -> str:
    """The manifest's words for the features ("AB magnitudes g, r; colours g-r and ...")."""
    parts: list[str] = []
    by_kind: dict[str, list[str]] = {}
    for name in derived:
        if m := COLOUR.fullmatch(name):
            by_kind.setdefault("colours", []).append(f"{m[1]}-{m[2]}")
        elif m := PSF_MINUS_MODEL.fullmatch(name):
            by_kind.setdefault(WORDS["psf_minus_model"], []).append(m[1])
        elif m := COLUMN.fullmatch(name):
            by_kind.setdefault(WORDS[m[1]], []).append(m[2])
        else:
            by_kind.setdefault("extendedness flag", [])
    for kind, items in by_kind.items():
        parts.append(f"{kind} {', '.join(items)}" if items else kind)
    return "; ".join(parts) + " and standardisation in graph"


def gate_features(spec: Sequence[str], survey: Survey) -> GateFeatures:
    """Resolve a gate's feature list for a survey's catalog bands (see the module docstring)."""
    bands = survey.catalog_bands
    derived = _expanded(spec, bands)
    if not derived:
        raise ConfigError("the photometry gate needs at least one feature, e.g. ['mag', 'colour']")
    terms = [_terms(name, bands) for name in derived]
    inputs = tuple(dict.fromkeys(name for t in terms for name in t))
    derive = tuple(tuple(t.get(name, 0.0) for t in terms) for name in inputs)
    return GateFeatures(inputs, tuple(derived), derive, _words(derived, bands))


class GateMLP(ProbabilityModel):
    """Lens probability from catalog columns float32 (N, inputs): features x @ derive,
    standardised with buffers fitted on the training set (`fit_normalisation`), then hidden
    layers, ReLU, one logit."""

    derive: Tensor
    mean: Tensor
    std: Tensor

    def __init__(self, derive: np.ndarray, hidden: Sequence[int] = (64, 64)) -> None:
        super().__init__()
        n_features = int(derive.shape[1])
        self.register_buffer("derive", torch.as_tensor(derive, dtype=torch.float32))
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("std", torch.ones(n_features))
        layers: list[nn.Module] = []
        width = n_features
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU()]
            width = size
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    def features(self, x: Tensor) -> Tensor:
        """The derived features (N, features) of inputs (N, inputs)."""
        return x @ self.derive

    @torch.no_grad()
    def fit_normalisation(self, x: Tensor) -> None:
        """Set the standardisation buffers from training inputs (N, inputs)."""
        f = self.features(x.to(self.mean))
        self.mean.copy_(f.mean(dim=0))
        self.std.copy_(f.std(dim=0).clamp_min(1e-3))

    def logits(self, x: Tensor) -> Tensor:
        out: Tensor = self.net((self.features(x) - self.mean) / self.std)
        return out.squeeze(1)
