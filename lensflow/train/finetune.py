"""Fine-tune the ensemble members from visual grades: `lensflow train ensemble --from-grades`.

Fine-tuning needs torch weights, and a models folder keeps only ONNX files: each member starts
from the checkpoints of the training run that made it (the run's config names its work and
checkpoint folders; the last mining round's best weights when it mined, else the first fit's),
and is refused unless those weights give the probabilities of the manifest's ONNX file.

The graded candidates (lensflow.train.grades) are split, stratified: `held_out_fraction` never
trained on (the "graded" held-out set), `validation_fraction` of the rest for the loop's early
stopping, the remainder trained on, mixed with simulated training cutouts as `Mixing` states.
Each member is trained `epochs` more epochs at `lr_scale` x its learning rate (the training
loop of lensflow.train.loop, checkpointed: a rerun with the same inputs resumes), exported to
ONNX and written into a new models folder with a manifest (photometry gate copied). The
held-out sets (the graded one, the config's test set, any given) are scored before and after
with ONNX Runtime; their metrics go into the new manifest and into `from-grades.json` beside
it. A fitted combination or calibration of the old members is not carried over.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lensflow.ensemble import check_ensemble_inputs
from lensflow.errors import ConfigError, TrainingError
from lensflow.evaluate import EvaluationReport, evaluate_store
from lensflow.io import canonical_hash, file_digest, write_text
from lensflow.registry import EnsembleMember, ModelManifest, default_manifest_path, load_manifest
from lensflow.sessions import load_session, run_batched
from lensflow.surveys import Survey, survey_profile
from lensflow.train.config import TEST_SET, MemberConfig, TrainConfig
from lensflow.train.data import LabelledCutouts, ensure_cutout_set, split_validation
from lensflow.train.export import export_onnx
from lensflow.train.grades import (
    GradedSet,
    Mixing,
    draw_simulated,
    load_graded_set,
    write_labelled_store,
)
from lensflow.train.loop import fit, make_deterministic, resolve_device
from lensflow.train.manifest import (
    clear_fitted,
    read_manifest_table,
    record_metrics,
    take_photometry,
    write_manifest,
)
from lensflow.train.members import check_store_survey, member_settings
from lensflow.train.models import ProbabilityModel, build_cnn
from lensflow.train.plain import plain

logger = logging.getLogger(__name__)

GRADED_SET = "graded"
"""The name of the held-out graded candidates among the sets scored before and after."""

REPORT_FILE = "from-grades.json"
"""The fine-tuning report, beside the new manifest."""

ONNX_AGREEMENT = 1e-3
"""Largest |probability| difference at which checkpoint weights count as the ONNX member's."""

MIN_PER_CLASS = 3
"""Graded lenses and non-lenses needed at least: one each to hold out, validate and train."""


@dataclasses.dataclass(frozen=True)
class FineTuneSettings:
    """How members are fine-tuned from grades (see the module docstring).

    epochs: more epochs per member; lr_scale: x the member's training learning rate; mixing:
    graded and simulated cutouts per epoch; held_out_fraction, validation_fraction: of the
    graded lenses and of the graded non-lenses; min_graders: the label rule's; seed: of the
    splits and the simulated draw; test_set: also score the config's test set before and after.
    """

    epochs: int = 3
    lr_scale: float = 0.1
    mixing: Mixing = dataclasses.field(default_factory=Mixing)
    held_out_fraction: float = 0.2
    validation_fraction: float = 0.2
    min_graders: int = 2
    seed: int = 0
    test_set: bool = True

    def __post_init__(self) -> None:
        for name in ("held_out_fraction", "validation_fraction"):
            if not 0.0 < getattr(self, name) < 0.5:
                raise ConfigError(f"{name} {getattr(self, name)}: give a fraction in (0, 0.5)")
        if self.epochs < 1 or self.lr_scale <= 0.0:
            raise ConfigError(f"epochs {self.epochs}, lr scale {self.lr_scale}: both must be > 0")


@dataclasses.dataclass(frozen=True)
class HeldOutSet:
    """A labelled cutout store scored before and after fine-tuning (labels: Parquet beside)."""

    name: str
    store: Path
    labels: Path


@dataclasses.dataclass(frozen=True)
class FineTuneResult:
    """The new manifest, the report, and each set's metrics (set -> "before"/"after" -> scorer
    -> auroc, tpr0, tpr10, n_lenses, n_non_lenses)."""

    manifest: Path
    report: Path
    sets: Mapping[str, Mapping[str, Mapping[str, Mapping[str, float | int]]]]
    graded: Mapping[str, Any]


def _metrics(report: EvaluationReport) -> dict[str, dict[str, float | int]]:
    return {name: m.as_dict() for name, m in report.metrics.items()}


def starting_weights(config: TrainConfig, member: MemberConfig) -> tuple[dict[str, Any], Path]:
    """A member's final weights from its training run's checkpoints, and the file they came
    from: the best weights of the last mining round that has a checkpoint, else of the fit."""
    folder = config.checkpoint_folder / member.name
    rounds = sorted(
        (p for p in folder.glob("round-*") if p.name.removeprefix("round-").isdigit()),
        key=lambda p: int(p.name.removeprefix("round-")),
    )
    for candidate in [*reversed(rounds), folder]:
        found = sorted(candidate.glob("epoch-[0-9][0-9][0-9].pt"))
        if found:
            state = torch.load(found[-1], map_location="cpu", weights_only=True)
            return dict(state["best_model"]), found[-1]
    raise TrainingError(
        f"{folder}: no checkpoints of member {member.name!r}. Fine-tuning starts from torch "
        "weights and a models folder keeps only ONNX files: give --config the training config "
        "whose work folder holds the run's checkpoints (`lensflow train ensemble --config` "
        "writes them under its work folder)"
    )


def _start_member(
    config: TrainConfig,
    entry: EnsembleMember,
    models: ModelManifest,
    survey: Survey,
    images: np.ndarray,
) -> tuple[MemberConfig, ProbabilityModel]:
    """The member's config and torch model holding its checkpoint weights, checked against its
    ONNX file on images (float32 (N, C, H, W))."""
    by_name = {m.name: m for m in config.members}
    if entry.name not in by_name:
        raise TrainingError(
            f"member {entry.name!r} of {models.folder / 'manifest.toml'} is not in the training "
            f"config (members {sorted(by_name)}); give the config that trained these models"
        )
    member = by_name[entry.name]
    weights, source = starting_weights(config, member)
    model = build_cnn(member.architecture, survey)
    try:
        model.load_state_dict(weights)
    except RuntimeError as exc:
        raise TrainingError(
            f"{source}: does not fit a {member.architecture} for survey {survey.name!r} ({exc}); "
            "give the config that trained these models"
        ) from None
    model.train(False)
    batch = np.ascontiguousarray(images[:32], dtype=np.float32)
    onnx = run_batched(load_session(models.path_of(entry.file), entry.sha256), batch, batch=32)
    with torch.no_grad():
        mine = model(torch.from_numpy(batch)).numpy()
    worst = float(np.max(np.abs(onnx - mine), initial=0.0))
    if not worst <= ONNX_AGREEMENT:
        raise TrainingError(
            f"{source}: these weights are not those of {entry.file} (probabilities differ by "
            f"up to {worst:.3g}); give the config of the run that exported this manifest"
        )
    return member, model


def _split(graded: GradedSet, settings: FineTuneSettings) -> dict[str, LabelledCutouts]:
    """The graded rows held out, validated on and trained on (stratified, seeded)."""
    is_lens = graded.data.labels.is_lens
    for what, n in (("lenses", int(is_lens.sum())), ("non-lenses", int((~is_lens).sum()))):
        if n < MIN_PER_CLASS:
            raise TrainingError(
                f"the grades give {n} {what} after the consensus rule ({graded.as_dict()}); "
                f"fine-tuning needs at least {MIN_PER_CLASS} lenses and {MIN_PER_CLASS} "
                "non-lenses: grade more candidates"
            )
    rest, held = split_validation(is_lens, fraction=settings.held_out_fraction, seed=settings.seed)
    fit_part, val_part = split_validation(
        is_lens[rest], fraction=settings.validation_fraction, seed=settings.seed + 1
    )
    return {
        "held_out": graded.data.subset(held),
        "validation": graded.data.subset(rest[val_part]),
        "train": graded.data.subset(rest[fit_part]),
    }


def _held_out_sets(
    config: TrainConfig,
    survey: Survey,
    settings: FineTuneSettings,
    graded_held: tuple[Path, Path],
    extra: Sequence[HeldOutSet],
) -> list[HeldOutSet]:
    sets = [HeldOutSet(GRADED_SET, *graded_held)]
    if settings.test_set and config.test_set is not None:
        store, labels = ensure_cutout_set(
            config.test_set,
            config.work / "test-set",
            survey=survey,
            workers=config.simulation_workers,
        )
        sets.append(HeldOutSet(TEST_SET, store, labels))
    names = [s.name for s in [*sets, *extra]]
    if len(set(names)) != len(names):
        raise ConfigError(f"held-out set names repeat: {names}")
    return [*sets, *extra]


def fine_tune_from_grades(
    config: TrainConfig,
    *,
    grades: str | Path,
    cutouts: Path,
    manifest: Path | None = None,
    output: Path | None = None,
    work: Path | None = None,
    held_out: Sequence[HeldOutSet] = (),
    settings: FineTuneSettings | None = None,
) -> FineTuneResult:
    """Fine-tune the members of `manifest` (default: the shipped one) on the graded candidates
    of `grades` whose cutouts `cutouts` holds; write output (default: WORK/models).

    work: the fine-tuning's own folder (graded held-out set, checkpoints; default: the config's
    work folder / graded).

    Returns the new manifest, the report (from-grades.json beside it) and the metrics of every
    held-out set before and after.
    """
    settings = settings or FineTuneSettings()
    survey = survey_profile(config.survey)
    source = Path(manifest) if manifest is not None else default_manifest_path()
    models = load_manifest(source, verify=True)
    folder = Path(work) if work is not None else config.work / "graded"
    output = Path(output) if output is not None else folder / "models"
    graded = load_graded_set(grades, cutouts, min_graders=settings.min_graders)
    check_store_survey(graded.data, survey, Path(cutouts))
    check_ensemble_inputs(models, graded.data.info)
    parts = _split(graded, settings)
    make_deterministic(config.threads, deterministic=config.deterministic)
    device = resolve_device(config.device)
    started = {
        e.name: _start_member(config, e, models, survey, parts["train"].images)
        for e in models.ensemble.members
    }
    sets = _held_out_sets(
        config,
        survey,
        settings,
        write_labelled_store(folder / "held-out", parts["held_out"]),
        held_out,
    )
    before = {s.name: _score(s, source, config) for s in sets}
    n_train = parts["train"].labels.ids.size
    n_val = parts["validation"].labels.ids.size
    sim_train, sim_val = draw_simulated(
        config,
        survey,
        n_train=settings.mixing.simulated_rows(n_train),
        n_val=settings.mixing.simulated_rows(n_val, repeated=False),
        seed=settings.seed,
    )
    repeats = settings.mixing.repeats
    inputs = np.concatenate([*[parts["train"].images] * repeats, sim_train.images])
    targets = np.concatenate([*[parts["train"].labels.is_lens] * repeats, sim_train.labels.is_lens])
    val_x = np.concatenate([parts["validation"].images, sim_val.images])
    val_y = np.concatenate([parts["validation"].labels.is_lens, sim_val.labels.is_lens])
    inputs_hash = canonical_hash(
        {
            "graded": [parts[k].labels.ids.tolist() for k in ("train", "validation")],
            "labels": parts["train"].labels.is_lens.tolist(),
            "simulated": [sim_train.labels.ids.tolist(), sim_val.labels.ids.tolist()],
            "settings": dataclasses.asdict(settings),
        }
    )
    raw_members = {m["name"]: m for m in read_manifest_table(source)["ensemble"]["members"]}
    entries = []
    for entry in models.ensemble.members:
        member, model = started[entry.name]
        base = member_settings(config, member, survey)
        fit_settings = dataclasses.replace(
            base, epochs=settings.epochs, lr=base.lr * settings.lr_scale, seed=member.seed + 7919
        )
        tag = canonical_hash(
            {"start": entry.sha256, "inputs": inputs_hash, "fit": dataclasses.asdict(fit_settings)}
        )
        result = fit(
            model,
            (inputs, targets),
            (val_x, val_y),
            settings=fit_settings,
            device=device,
            checkpoints=folder / "checkpoints" / tag[:16] / member.name,
            tag=tag,
        )
        path = output / entry.file
        zeros = np.zeros((2, *inputs.shape[1:]), dtype=np.float32)
        worst = export_onnx(model, path, kind="cnn", example=val_x[:5], check=[zeros, val_x[:256]])
        new = {k: v for k, v in raw_members[entry.name].items() if k != "metrics"}
        new["sha256"] = file_digest(path)
        new["version"] = f"{entry.version}+grades"
        new["training"] = {
            **dict(new.get("training", {})),
            "fine_tuning": {
                "from": {"sha256": entry.sha256, "manifest": str(source)},
                "grades": graded.as_dict(),
                "mixing": settings.mixing.describe(),
                "n_graded_train": int(n_train),
                "n_graded_validation": int(n_val),
                "n_simulated_train": int(sim_train.labels.ids.size),
                "n_simulated_validation": int(sim_val.labels.ids.size),
                "epochs": settings.epochs,
                "epochs_run": result.epochs_run,
                "best_epoch": result.best_epoch,
                "best_val_loss": result.best_val_loss,
                "best_val_auroc": result.best_val_auroc,
                "lr": fit_settings.lr,
                "seconds": round(result.seconds, 1),
                "onnx_max_abs_diff": worst,
            },
        }
        entries.append(new)
        logger.info("member %s fine-tuned: %s", entry.name, new["training"]["fine_tuning"])
    new_manifest = _write_models(source, output, entries, threshold=models.ensemble.threshold)
    after = {s.name: _score(s, new_manifest, config) for s in sets}
    for s in sets:
        record_metrics(new_manifest, s.name, spec={"store": str(s.store)}, report=after[s.name])
    metrics = {
        s.name: {"before": _metrics(before[s.name]), "after": _metrics(after[s.name])} for s in sets
    }
    report = {
        "models": {"before": str(source), "after": str(new_manifest)},
        "grades": graded.as_dict(),
        "rule": "A/B consensus lens, 0 non-lens; C, ties (mean 1.5 or 0.5) and candidates "
        f"with fewer than {settings.min_graders} graders dropped",
        "settings": dataclasses.asdict(settings),
        "mixing": settings.mixing.describe(),
        "sets": {s.name: {"store": str(s.store), **metrics[s.name]} for s in sets},
        "members": {e["name"]: e["training"]["fine_tuning"] for e in entries},
    }
    path = output / REPORT_FILE
    write_text(path, json.dumps(plain(report, target="json"), indent=2) + "\n")
    return FineTuneResult(manifest=new_manifest, report=path, sets=metrics, graded=graded.as_dict())


def _score(held: HeldOutSet, manifest: Path, config: TrainConfig) -> EvaluationReport:
    return evaluate_store(
        held.store, held.labels, manifest=manifest, workers=config.evaluation_workers
    )


def _write_models(
    source: Path, output: Path, entries: Sequence[Mapping[str, Any]], *, threshold: float
) -> Path:
    """The new manifest in output: the source's photometry gate and threshold, the new members;
    the old members' ensemble metrics, combination and calibration left behind."""
    target = output / "manifest.toml"
    if output.resolve() != source.parent.resolve():
        target.unlink(missing_ok=True)  # a fresh manifest, not one merged with an older run's
    take_photometry(output, source=source)
    write_manifest(target, members=entries, threshold=threshold, ensemble_metrics={})
    clear_fitted(target)
    return target
