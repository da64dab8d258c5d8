"""Training configs (TOML, validated): what to simulate, what to train, where to write it.

Torch-free, so a config can be read and checked where the [train] extra is not installed.
Relative paths in a TOML file are relative to that file, a survey profile's file included.
`survey` names the profile the data are simulated in (a shipped name or a TOML file).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from lensflow.calibration import DEFAULT_PRIOR_LENS_RATE
from lensflow.config import problems, read_toml
from lensflow.errors import ConfigError
from lensflow.surveys import DEFAULT_SURVEY, profile_path, survey_profile
from lensflow.train.options import MiningConfig, RandomiseConfig, SelectionConfig

Device = Literal["cpu", "cuda", "auto"]
Architecture = Literal["resnet", "mobilenet", "attention"]
Precision = Literal["float32", "bfloat16"]

TEST_SET = "test"
"""The test set's name among the held-out sets (no evaluation set may take it)."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _Surveyed(_Frozen):
    """A config that simulates its data in a survey profile."""

    survey: str = DEFAULT_SURVEY  # a shipped profile's name or a profile's TOML file

    def with_survey(self, survey: str | Path | None) -> Self:
        """This config with another survey (None: unchanged), the profile checked now."""
        changed = self if survey is None else self.model_copy(update={"survey": str(survey)})
        survey_profile(changed.survey)
        return changed


def _read_toml(cls: type[_Frozen], path: Path) -> Any:
    path = Path(path)
    try:
        config = cls.model_validate(read_toml(path, what="training config"))
    except ValidationError as exc:
        raise ConfigError(f"{path}: invalid training config:\n{problems(exc)}") from None
    update = _rebased(config, path.parent)
    survey = profile_path(getattr(config, "survey", DEFAULT_SURVEY))
    if survey is not None and not survey.is_absolute():
        update["survey"] = str(path.parent / survey)
    return config.model_copy(update=update)


def _rebased(model: BaseModel, base: Path) -> dict[str, Any]:
    """Fields holding relative paths (also in nested configs), made relative to base."""
    update: dict[str, Any] = {}
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, Path) and not value.is_absolute():
            update[name] = base / value
        elif isinstance(value, BaseModel):
            update[name] = value.model_copy(update=_rebased(value, base))
        elif isinstance(value, tuple) and value and all(isinstance(v, BaseModel) for v in value):
            update[name] = tuple(v.model_copy(update=_rebased(v, base)) for v in value)
    return update


class CutoutSet(_Frozen):
    """A labelled cutout set: an existing store, or one simulated with make_training_set.

    With `store` set, that store and `labels` (default: labels.parquet beside it) are used;
    otherwise the set is simulated into `folder` (default: the run's work folder) once and
    reused while the spec is unchanged. seeing_factor and depth_mag simulate it in a shifted
    survey (`Survey.shifted` of the config's profile: PSF FWHM x seeing_factor, depth_mag < 0
    shallower). population: the simulator's ("classic" or "wide"); the spec holds it when it is
    not "classic" (so specs, and sets cached, from before it existed stay valid). simulator
    "independent": rendered by lensflow.independent (`lensflow simulate check-set`: its own
    population and classes in equal shares; mix and population do not apply).
    """

    n_lenses: int = Field(default=4000, gt=0)
    n_non_lenses: int = Field(default=12000, gt=0)
    seed: int = 1
    mix: Literal["training", "natural"] = "training"
    seeing_factor: float = Field(default=1.0, gt=0.0)
    depth_mag: float = 0.0
    population: Literal["classic", "wide"] = "classic"
    simulator: Literal["lensflow", "independent"] = "lensflow"
    store: Path | None = None
    labels: Path | None = None
    folder: Path | None = None

    @property
    def shifted(self) -> bool:
        """Whether the set is simulated in a survey other than the nominal one."""
        return self.seeing_factor != 1.0 or self.depth_mag != 0.0

    def spec(self) -> dict[str, Any]:
        """The set's description copied into the manifest (counts, seed, mix or store path)."""
        if self.store is not None:
            return {"store": str(self.store)}
        spec: dict[str, Any] = {
            "n_lenses": self.n_lenses,
            "n_non_lenses": self.n_non_lenses,
            "seed": self.seed,
            "mix": self.mix,
        }
        if self.shifted:
            spec |= {"seeing_factor": self.seeing_factor, "depth_mag": self.depth_mag}
        if self.population != "classic":
            spec["population"] = self.population
        if self.simulator != "lensflow":
            spec["simulator"] = self.simulator
        return spec


class PoolSet(CutoutSet):
    """A set of non-lenses only (a mining round's pool): n_lenses may be 0."""

    n_lenses: int = Field(default=0, ge=0)


class EvaluationSet(CutoutSet):
    """A held-out set scored after training besides the test set (e.g. a shifted survey).

    Its metrics go into the manifest under metrics.evaluation_sets.<name>.
    """

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")


class LabelledStore(_Frozen):
    """A labelled cutout store mixed into the training set, such as an injection set
    (`lensflow simulate inject`): `labels` defaults to labels.parquet beside the store."""

    store: Path
    labels: Path | None = None

    @property
    def labels_path(self) -> Path:
        """The labels file: `labels`, else labels.parquet beside the store."""
        return self.labels if self.labels is not None else self.store.parent / "labels.parquet"


class TrainingSetConfig(CutoutSet):
    """The training set: a CutoutSet plus `extra` labelled stores appended to it when loaded
    (`[[training_set.extra]]`), each with the same bands, size, pixel scale and units."""

    extra: tuple[LabelledStore, ...] = ()

    def simulated(self) -> CutoutSet:
        """The set without its extra stores (what is simulated or read as the main set)."""
        return CutoutSet.model_validate(self.model_dump(exclude={"extra"}))

    def spec(self) -> dict[str, Any]:
        """The CutoutSet's spec, plus the extra stores and labels when there are some."""
        spec = super().spec()
        if self.extra:
            spec["extra"] = [
                {"store": str(e.store), "labels": str(e.labels_path)} for e in self.extra
            ]
        return spec


class MemberConfig(_Frozen):
    """One ensemble member: its manifest name, architecture and seed."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    architecture: Architecture
    seed: int = 0
    epochs: int | None = Field(default=None, gt=0)
    lr: float | None = Field(default=None, gt=0.0)


class CombinationConfig(_Frozen):
    """The ensemble combination and calibration fitted at training time ([combination]).

    set: a natural-mix cutout set (not a held-out one) the members are scored on; a logistic
    regression on their logits and an isotonic calibration are fitted there and written into
    the manifest (lensflow.train.calibrate). prior: the lens rate the run report quotes purity
    at; l2: the logistic regression's penalty.
    """

    set: CutoutSet
    prior: float = Field(default=DEFAULT_PRIOR_LENS_RATE, gt=0.0, lt=1.0)
    l2: float = Field(default=1.0, gt=0.0)


class TrainConfig(_Surveyed):
    """`lensflow train ensemble --config train.toml`: CNN members, trained and exported."""

    members: tuple[MemberConfig, ...] = Field(min_length=1)
    training_set: TrainingSetConfig = TrainingSetConfig()
    test_set: CutoutSet | None = CutoutSet(n_lenses=1000, n_non_lenses=5000, seed=2)
    evaluation_sets: tuple[EvaluationSet, ...] = ()
    validation_fraction: float = Field(default=0.1, gt=0.0, lt=0.5)
    epochs: int = Field(default=10, gt=0)
    patience: int = Field(default=3, gt=0)
    batch_size: int = Field(default=64, gt=0)
    lr: float = Field(default=1e-3, gt=0.0)
    weight_decay: float = Field(default=1e-4, ge=0.0)
    device: Device = "auto"
    precision: Precision = "float32"  # bfloat16: autocast on CUDA; export stays float32
    channels_last: bool = False  # NHWC activations (faster convolutions on GPUs)
    deterministic: bool = True  # False: cuDNN autotuning and TF32, faster, not bit-exact
    max_member_seconds: float | None = Field(default=None, gt=0.0)  # per member: epochs to fit
    preflight: bool = False  # first a short fit and export of each architecture on noise
    threads: int | None = Field(default=None, gt=0)
    simulation_workers: int = Field(default=1, gt=0)
    evaluation_workers: int = Field(default=1, gt=0)  # ONNX Runtime sessions run side by side
    work: Path = Path("training")
    checkpoints: Path | None = None
    output: Path = Path("models")
    reports: Path | None = None
    summary: Path | None = None  # run report JSON, rewritten after each step; ROC plot beside it
    photometry_from: Path | None = None  # a manifest whose photometry gate the output takes
    threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    version: str = "1"
    randomise: RandomiseConfig = RandomiseConfig()  # off unless asked for
    mining: MiningConfig | None = None
    selection: SelectionConfig | None = None  # needs [combination]
    combination: CombinationConfig | None = None

    @field_validator("training_set", mode="before")
    @classmethod
    def _a_training_set(cls, value: Any) -> Any:
        """A plain CutoutSet is a training set without extra stores."""
        if isinstance(value, CutoutSet) and not isinstance(value, TrainingSetConfig):
            return TrainingSetConfig.model_validate(value.model_dump())
        return value

    @model_validator(mode="after")
    def _unique_names(self) -> Self:
        names = [m.name for m in self.members]
        if len(set(names)) != len(names):
            raise ValueError(f"member names repeat: {names}")
        sets = [s.name for s in self.evaluation_sets]
        if len(set(sets)) != len(sets) or TEST_SET in sets:
            raise ValueError(
                f"evaluation set names repeat or use {TEST_SET!r} (the test set): {sets}"
            )
        if self.selection is not None:
            if self.combination is None:
                raise ValueError("[selection] chooses members on the [combination] set; add one")
            if self.selection.size > len(self.members):
                raise ValueError(
                    f"[selection] size {self.selection.size} exceeds the {len(names)} members"
                )
        self._seeds_apart()
        return self

    def _seeds_apart(self) -> None:
        """Mining pools and the combination set must not share a seed with a held-out set:
        object k of a seed is the same in any set, so the models would see held-out objects."""
        held = {s.seed for s in (self.test_set, *self.evaluation_sets) if s and s.store is None}
        used: dict[int, str] = {}
        if self.mining is not None:
            used |= {seed: "a [mining] pool" for seed in self.mining.seeds()}
            if self.training_set.seed in used:
                raise ValueError(f"{used[self.training_set.seed]} takes the training set's seed")
        if self.combination is not None and self.combination.set.store is None:
            seed = self.combination.set.seed
            if seed in used or seed == self.training_set.seed:
                raise ValueError(f"the [combination] set's seed {seed} is already used")
            used[seed] = "the [combination] set"
        clash = sorted(set(used) & held)
        if clash:
            raise ValueError(
                f"{used[clash[0]]} has seed {clash[0]}, like a held-out set; choose another seed"
            )

    @classmethod
    def from_toml(cls, path: Path) -> TrainConfig:
        """Read and validate a TOML config; relative paths are relative to the file."""
        config: TrainConfig = _read_toml(cls, path)
        return config

    @property
    def checkpoint_folder(self) -> Path:
        """Where per-epoch checkpoints go (default: work/checkpoints)."""
        return self.checkpoints if self.checkpoints is not None else self.work / "checkpoints"

    @property
    def report_folder(self) -> Path:
        """Where the evaluation JSON and plots go (default: work/reports)."""
        return self.reports if self.reports is not None else self.work / "reports"


class CatalogCuts(_Frozen):
    """The catalog cuts in front of the photometry gate (what it is trained to see).

    Rows need a magnitude in every catalog band of the survey; the defaults are the mock sky's
    scan cuts (extended, 16.5 <= r < 22.5).
    """

    extended: bool = True
    min_mag_r: float = 16.5
    max_mag_r: float = 22.5


PHOTOMETRY_FEATURE = (
    r"^(mag|colour|psf_minus_model|size|extendedness"
    r"|(mag|magerr|psfmag|size|psf_minus_model)_[A-Za-z0-9]+|colour_[A-Za-z0-9]+_[A-Za-z0-9]+)$"
)
"""A gate feature: a group (mag, colour, psf_minus_model, size, extendedness) or one feature
(mag_r, psfmag_g, size_i, colour_g_r, psf_minus_model_g, ...); see lensflow.train.gate."""


class PhotometryConfig(_Surveyed):
    """`lensflow train photometry --config photometry.toml`: the catalog-gate MLP.

    features: the gate's inputs (lensflow.train.gate), groups over the survey's catalog bands or
    single features; the default, magnitudes and adjacent colours, needs no morphology.
    simulation_workers: processes that measure the catalogs' morphology on pixels.
    """

    name: str = "photometry_mlp"
    features: tuple[Annotated[str, Field(pattern=PHOTOMETRY_FEATURE)], ...] = Field(
        default=("mag", "colour"), min_length=1
    )
    simulation_workers: int = Field(default=1, gt=0)
    n_lenses: int = Field(default=4_000, gt=0)
    n_non_lenses: int = Field(default=40_000, gt=0)
    seed: int = 11
    n_test_lenses: int = Field(default=1_000, gt=0)
    n_test_non_lenses: int = Field(default=20_000, gt=0)
    test_seed: int = 12
    cuts: CatalogCuts = CatalogCuts()
    hidden: tuple[int, ...] = (64, 64)
    validation_fraction: float = Field(default=0.1, gt=0.0, lt=0.5)
    epochs: int = Field(default=40, gt=0)
    patience: int = Field(default=5, gt=0)
    batch_size: int = Field(default=1024, gt=0)
    lr: float = Field(default=3e-3, gt=0.0)
    weight_decay: float = Field(default=1e-4, ge=0.0)
    # the threshold keeps `completeness` of the validation lenses; the aim, checked on the test
    # set: at most `max_kept_fraction` of galaxies kept where the lenses reach aim_completeness
    completeness: float = Field(default=0.95, gt=0.0, le=1.0)
    aim_completeness: float = Field(default=0.95, gt=0.0, le=1.0)
    max_kept_fraction: float = Field(default=0.03, gt=0.0, le=1.0)
    device: Device = "cpu"
    threads: int | None = Field(default=None, gt=0)
    output: Path = Path("models")
    reports: Path = Path("training/reports")
    version: str = "1"

    @classmethod
    def from_toml(cls, path: Path) -> PhotometryConfig:
        """Read and validate a TOML config; relative paths are relative to the file."""
        config: PhotometryConfig = _read_toml(cls, path)
        return config
