"""`lensflow train calibrate`: fit the ensemble's combination and calibration on a validation set.

The labelled validation store is scored with every member as `lensflow evaluate` scores it;
then a logistic combination of the members' logits and an isotonic calibration of the combined
score are fitted (`lensflow.evaluate.calibration`), and only the manifest's
[ensemble.combination] and [ensemble.calibration] tables are replaced: the file is re-read
just before the atomic write, so another table changed meanwhile (say [photometry]) is kept.

Refused: a set with fewer than MIN_LENSES lenses (or non-lenses), and a set the manifest
records as held out (its test set or an evaluation set): the same seed for a simulated set,
the same store or overlapping ids for a stored one. The set should follow the natural mix of
contaminant classes: the calibration is only as right as the mix it was fitted on. Torch-free.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import tomli_w
from pydantic import ValidationError

from lensflow.calibration import (
    DEFAULT_PRIOR_LENS_RATE,
    check_prior,
    combined_score,
    lens_probability,
)
from lensflow.ensemble import ENSEMBLE, MEAN, ensemble_mean
from lensflow.errors import EvaluationError, TrainingError
from lensflow.evaluate import EvaluationReport, build_report, evaluate_store
from lensflow.evaluate.calibration import DEFAULT_L2, fit_combination, fit_isotonic
from lensflow.evaluate.purity import PurityReport, purity_report
from lensflow.io import write_text
from lensflow.labels import Labels, read_labels
from lensflow.registry import (
    EnsembleCalibration,
    EnsembleCombination,
    ModelManifest,
    load_manifest,
)
from lensflow.train.manifest import read_manifest_table

logger = logging.getLogger(__name__)

MIN_LENSES = 50
"""The fewest lenses (and non-lenses) a validation set may hold."""

SIMULATION_KEYS = ("seed", "mix", "seeing_factor", "depth_mag")
"""What identifies a simulated set's objects: object k of a seed is the same in any set."""


@dataclasses.dataclass(frozen=True)
class Calibrated:
    """What `calibrate_manifest` fitted and wrote, and how the scorers do on the fitting set.

    report: members, "mean" and "ensemble" (the new combination) on the validation set, the
    combination and calibration fitted on it (in-sample figures). purity: of p_lens at prior.
    """

    manifest: Path
    combination: EnsembleCombination
    calibration: EnsembleCalibration
    report: EvaluationReport
    purity: PurityReport
    prior: float


def describe_set(store: Path, labels: Path, truth: Labels) -> dict[str, Any]:
    """fitted_on for a set: its counts and, when the set's folder holds the spec.json its
    simulation wrote, how it was simulated (seed, mix, survey); else its store and labels."""
    described: dict[str, Any] = {
        "n_lenses": int(truth.is_lens.sum()),
        "n_non_lenses": int((~truth.is_lens).sum()),
    }
    stamp = Path(labels).parent / "spec.json"
    if stamp.is_file():
        made = json.loads(stamp.read_text())
        if Path(made.get("labels", "")).resolve() == Path(labels).resolve():
            spec = made.get("spec", {})
            described |= {k: spec[k] for k in SIMULATION_KEYS if k in spec}
            return described | {"survey": made.get("survey", "lsst")}
    return described | {"store": str(Path(store).resolve()), "labels": str(Path(labels).resolve())}


def held_out_sets(models: ModelManifest) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(name, spec) of every set the manifest records metrics for: test and evaluation sets."""
    tables = [models.ensemble.metrics, *(m.metrics for m in models.ensemble.members)]
    seen: set[str] = set()
    for metrics in tables:
        found = [("test", metrics.get("test_set"))]
        for name, entry in dict(metrics.get("evaluation_sets", {})).items():
            found.append((str(name), entry.get("set") if isinstance(entry, Mapping) else None))
        for name, spec in found:
            key = json.dumps([name, spec], sort_keys=True, default=str)
            if isinstance(spec, Mapping) and key not in seen:
                seen.add(key)
                yield name, spec


def _simulation(spec: Mapping[str, Any]) -> tuple[Any, ...]:
    defaults = {"mix": "training", "seeing_factor": 1.0, "depth_mag": 0.0}
    return tuple(spec.get(k, defaults.get(k)) for k in SIMULATION_KEYS)


def check_not_held_out(
    models: ModelManifest,
    described: Mapping[str, Any],
    truth: Labels,
    *,
    store: Path,
    labels: Path,
    source: Path,
) -> None:
    """Refuse a validation set that is, or overlaps, a set the manifest was evaluated on."""
    for name, spec in held_out_sets(models):
        if "seed" in spec and "seed" in described:
            if _simulation(spec) == _simulation(described):
                raise TrainingError(
                    f"{labels}: simulated with seed {described['seed']}, like the "
                    f"{name} set recorded in {source}; calibrate on a set of another seed"
                )
        elif "seed" in spec:
            logger.warning(
                "%s: no spec.json beside the labels, so its seed cannot be compared with the "
                "%s set's (seed %s)",
                labels,
                name,
                spec["seed"],
            )
        elif "store" in spec:
            held = Path(str(spec["store"]))
            if held.resolve() == Path(store).resolve():
                raise TrainingError(
                    f"{held} is the {name} set recorded in {source}; calibrate on another set"
                )
            held_labels = held.parent / "labels.parquet"
            if held_labels.is_file():
                shared = np.intersect1d(read_labels(held_labels).ids, truth.ids)
                if shared.size:
                    raise TrainingError(
                        f"{labels}: {shared.size} ids (e.g. {int(shared[0])}) are "
                        f"also in the {name} set {held} recorded in {source}; calibrate on a "
                        "set with other ids"
                    )


def check_size(truth: Labels, *, path: Path) -> None:
    """Refuse a set with fewer than MIN_LENSES lenses or non-lenses."""
    lenses = int(truth.is_lens.sum())
    others = int(truth.is_lens.size - lenses)
    if lenses < MIN_LENSES or others < MIN_LENSES:
        raise TrainingError(
            f"{path}: {lenses} lenses and {others} non-lenses; a calibration needs at least "
            f"{MIN_LENSES} of each (a natural-mix set of about 500 lenses and 20,000 "
            "non-lenses gives usable knots)"
        )


def write_ensemble_tables(
    path: Path, *, combination: EnsembleCombination, calibration: EnsembleCalibration
) -> None:
    """Replace only [ensemble.combination] and [ensemble.calibration] in a manifest, atomically.

    The file is read again right before writing; the result is validated first.
    """
    path = Path(path)
    raw = read_manifest_table(path)
    if "ensemble" not in raw:
        raise TrainingError(f"{path}: no [ensemble] table to add a calibration to")
    ensemble = dict(raw["ensemble"])
    ensemble["combination"] = combination.model_dump(mode="json")
    ensemble["calibration"] = calibration.model_dump(mode="json")
    raw["ensemble"] = ensemble
    try:
        ModelManifest.model_validate({**raw, "folder": path.parent})
    except ValidationError as exc:
        raise TrainingError(f"{path}: the calibrated manifest does not validate:\n{exc}") from exc
    write_text(path, tomli_w.dumps(raw))
    load_manifest(path, verify=True)


def calibrate_manifest(
    manifest: Path,
    store: Path,
    labels: Path,
    *,
    prior: float = DEFAULT_PRIOR_LENS_RATE,
    l2: float = DEFAULT_L2,
    workers: int = 1,
) -> Calibrated:
    """Fit the combination and the calibration on a labelled store; rewrite the manifest.

    prior: the lens rate at which the returned purity of p_lens is computed (the scan's own
    prior, [ensemble] prior_lens_rate, is applied at scan time). workers: ONNX Runtime sessions
    per member, as in evaluate_store.
    """
    check_prior(prior)
    manifest, store, labels = Path(manifest), Path(store), Path(labels)
    models = load_manifest(manifest, verify=True)
    truth = read_labels(labels)
    check_size(truth, path=labels)
    described = describe_set(store, labels, truth)
    check_not_held_out(models, described, truth, store=store, labels=labels, source=manifest)
    scored = evaluate_store(store, labels, manifest=manifest, workers=workers)
    members = {m.name: scored.scores[m.name] for m in models.ensemble.members}
    try:
        combination = fit_combination(members, truth.is_lens, l2=l2, fitted_on=described)
        combined = combined_score(members, combination)
        calibration = fit_isotonic(combined, truth.is_lens, fitted_on=described)
    except EvaluationError as exc:
        raise TrainingError(f"{labels}: {exc}") from exc
    write_ensemble_tables(manifest, combination=combination, calibration=calibration)
    knots = len(calibration.scores)
    logger.info("%s: weights %s, %d knots", manifest, combination.weights, knots)
    scores = {ENSEMBLE: combined, MEAN: ensemble_mean(members), **members}
    report = build_report(truth, scores, threshold=models.ensemble.threshold)
    p_lens = lens_probability(combined, calibration, prior=prior)
    purity = purity_report(combined, truth.is_lens, prior=prior, p_lens=p_lens)
    return Calibrated(
        manifest=manifest,
        combination=combination,
        calibration=calibration,
        report=report,
        purity=purity,
        prior=prior,
    )
