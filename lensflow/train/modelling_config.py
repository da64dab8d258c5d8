"""The lens-modelling training config (TOML, validated) and the parameters the networks predict.

Torch-free, like lensflow.train.config, whose path and survey rules it follows: relative paths
in a TOML file are relative to that file. `lensflow train modelling --config modelling.toml`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Self

from pydantic import Field, model_validator

from lensflow.train.config import _Frozen, _read_toml, _Surveyed

Role = Literal["scalar", "x", "y", "spin2_1", "spin2_2"]
"""How a parameter turns with the cutout: a scalar, a position's x or y (arcsec from the
cutout centre), or the two components of a spin-2 quantity (ellipticity, shear)."""


class ModelledParameter(_Frozen):
    """One predicted parameter: its column name, the labels column holding its truth, its unit
    and its role (how it changes when the cutout is flipped or transposed)."""

    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$")
    truth: str
    unit: str = ""
    role: Role = "scalar"


PARAMETERS: tuple[ModelledParameter, ...] = (
    ModelledParameter(name="theta_E", truth="theta_e", unit="arcsec"),
    ModelledParameter(name="e1", truth="lens_e1", role="spin2_1"),
    ModelledParameter(name="e2", truth="lens_e2", role="spin2_2"),
    ModelledParameter(name="center_x", truth="lens_x", unit="arcsec", role="x"),
    ModelledParameter(name="center_y", truth="lens_y", unit="arcsec", role="y"),
    ModelledParameter(name="gamma_ext1", truth="gamma_ext1", role="spin2_1"),
    ModelledParameter(name="gamma_ext2", truth="gamma_ext2", role="spin2_2"),
    ModelledParameter(name="source_x", truth="source_x", unit="arcsec", role="x"),
    ModelledParameter(name="source_y", truth="source_y", unit="arcsec", role="y"),
)
"""SIE + external shear and the source position, in the conventions of shared/reference:
theta_E intermediate-axis, e1 + i e2 = (1 - q)/(1 + q) exp(2 i phi), the shear zero point at the
lens centre. The truth columns are those of lensflow.simulate's LENS_PARAMS, which
lensflow.independent's LENS_PARAMS share (the same names and conventions)."""


def check_pairs(parameters: tuple[ModelledParameter, ...]) -> None:
    """Refuse parameters whose x/y or spin-2 components do not come in adjacent pairs (x then y,
    component 1 then 2), as the flips and transposes of training need them."""
    for k, p in enumerate(parameters):
        partner = {"x": "y", "spin2_1": "spin2_2"}.get(p.role)
        if partner is not None and (k + 1 >= len(parameters) or parameters[k + 1].role != partner):
            raise ValueError(f"parameter {p.name!r} ({p.role}) must be followed by its {partner}")
        follows = {"y": "x", "spin2_2": "spin2_1"}.get(p.role)
        if follows is not None and (k == 0 or parameters[k - 1].role != follows):
            raise ValueError(f"parameter {p.name!r} ({p.role}) must follow its {follows}")


class LensSet(_Frozen):
    """A set of lenses only: an existing labelled store, or one simulated once and reused.

    simulator "lensflow": lensflow.simulate.make_training_set in `population`; "independent":
    lensflow.independent.make_check_set (its own population; `population` does not apply).
    With `store`, that store and `labels` (default labels.parquet beside it) are read and
    their lenses used.
    """

    n_lenses: int = Field(default=2000, gt=0)
    seed: int = 1
    population: Literal["classic", "wide"] = "wide"
    simulator: Literal["lensflow", "independent"] = "lensflow"
    store: Path | None = None
    labels: Path | None = None
    folder: Path | None = None

    def spec(self) -> dict[str, Any]:
        """The set's description copied into the manifest and the report."""
        if self.store is not None:
            return {"store": str(self.store)}
        spec: dict[str, Any] = {"n_lenses": self.n_lenses, "seed": self.seed}
        if self.simulator == "independent":
            spec["simulator"] = "independent"
        else:
            spec["population"] = self.population
        return spec


class NamedLensSet(LensSet):
    """A held-out lens set evaluated after training, by name (e.g. the independent set)."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")


class ModellingConfig(_Surveyed):
    """`lensflow train modelling --config modelling.toml`: K networks, exported and evaluated.

    Network k trains from seed + k on the training set's lenses (a validation_fraction held
    for early stopping and the variance calibration). widths and blocks: the lensflow ResNet's
    stages. calibrate: fit one sigma scale per parameter on the validation split so that the
    68 % and 95 % intervals cover as they should (stored in the manifest).
    """

    networks: int = Field(default=3, gt=0)
    seed: int = 0
    widths: tuple[int, ...] = (12, 24, 48, 96)
    blocks: tuple[int, ...] = (1, 1, 1, 1)
    parameters: tuple[ModelledParameter, ...] = PARAMETERS
    training_set: LensSet = LensSet(n_lenses=10000, seed=1301)
    test_set: LensSet | None = LensSet(n_lenses=2000, seed=1302)
    evaluation_sets: tuple[NamedLensSet, ...] = ()
    validation_fraction: float = Field(default=0.1, gt=0.0, lt=0.5)
    epochs: int = Field(default=8, gt=0)
    patience: int = Field(default=3, gt=0)
    batch_size: int = Field(default=128, gt=1)
    lr: float = Field(default=2e-3, gt=0.0)
    weight_decay: float = Field(default=1e-4, ge=0.0)
    augment: bool = True  # random flips and transposes, with the parameters turned to match
    calibrate: bool = True
    max_network_seconds: float | None = Field(default=None, gt=0.0)
    threads: int | None = Field(default=None, gt=0)
    simulation_workers: int = Field(default=1, gt=0)
    work: Path = Path("training-modelling")
    checkpoints: Path | None = None
    output: Path = Path("models-modelling")
    reports: Path | None = None
    file_prefix: str = Field(default="modelling", pattern=r"^[a-z][a-z0-9_]*$")
    version: str = "1"

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        check_pairs(self.parameters)
        names = [p.name for p in self.parameters]
        if len(set(names)) != len(names):
            raise ValueError(f"parameter names repeat: {names}")
        if len(self.widths) != len(self.blocks) or not self.widths:
            raise ValueError(f"widths {self.widths} and blocks {self.blocks} differ in length")
        sets = [s.name for s in self.evaluation_sets]
        if len(set(sets)) != len(sets) or "test" in sets:
            raise ValueError(f"evaluation set names repeat or use 'test': {sets}")
        own = [
            (s.simulator, s.seed)
            for s in (self.training_set, self.test_set, *self.evaluation_sets)
            if s and s.store is None
        ]
        if len(set(own)) != len(own):
            raise ValueError(
                "two simulated sets share a simulator and seed (object k of a seed is the same "
                "in any set, so a held-out set would hold training lenses); choose other seeds"
            )
        return self

    @classmethod
    def from_toml(cls, path: Path) -> ModellingConfig:
        """Read and validate a TOML config; relative paths are relative to the file."""
        config: ModellingConfig = _read_toml(cls, path)
        return config

    @property
    def checkpoint_folder(self) -> Path:
        """Where each network's checkpoint goes (default: work/checkpoints)."""
        return self.checkpoints if self.checkpoints is not None else self.work / "checkpoints"

    @property
    def report_folder(self) -> Path:
        """Where the evaluation tables, figures and JSON go (default: work/reports)."""
        return self.reports if self.reports is not None else self.work / "reports"

    def held_out(self) -> list[tuple[str, LensSet]]:
        """The sets evaluated after training, by name: the test set first."""
        sets: list[tuple[str, LensSet]] = [] if self.test_set is None else [("test", self.test_set)]
        return sets + [(s.name, s) for s in self.evaluation_sets]
