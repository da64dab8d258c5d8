"""The models manifest as training writes it: entries merged in, validated, written atomically.

A run merges each member into `manifest.toml` as soon as it is exported, gives the output a
photometry gate when it has none, and records each held-out set's metrics: the test set's at
the top of `metrics`, every other set's under `metrics.evaluation_sets.<name>`.
"""

from __future__ import annotations

import shutil
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import tomli_w
from pydantic import ValidationError

from lensflow.errors import TrainingError
from lensflow.evaluate import ENSEMBLE, EvaluationReport
from lensflow.io import file_digest, write_atomic, write_text
from lensflow.registry import (
    EnsembleModels,
    PhotometryModel,
    default_manifest_path,
    load_manifest,
)
from lensflow.train.config import TEST_SET
from lensflow.train.plain import plain


def read_manifest_table(path: Path) -> dict[str, Any]:
    """A manifest's TOML as a plain table, unvalidated; empty when there is no file."""
    path = Path(path)
    if not path.is_file():
        return {}
    with path.open("rb") as f:
        return tomllib.load(f)


def write_manifest(
    path: Path,
    *,
    photometry: Mapping[str, Any] | None = None,
    members: Sequence[Mapping[str, Any]] = (),
    threshold: float | None = None,
    ensemble_metrics: Mapping[str, Any] | None = None,
) -> Path:
    """Merge entries into a models manifest (created if absent); validate; write atomically.

    photometry replaces that table; members replace those of the same name and are appended
    otherwise; threshold and ensemble_metrics replace the ensemble's. Once both sections exist
    the file is checked with load_manifest(verify=True).
    """
    path = Path(path)
    raw: dict[str, Any] = read_manifest_table(path) if path.is_file() else {"version": 1}
    if photometry is not None:
        raw["photometry"] = plain(photometry, target="toml")
    if members or threshold is not None or ensemble_metrics is not None:
        ensemble = dict(raw.get("ensemble", {}))
        merged = {m["name"]: m for m in ensemble.get("members", [])}
        for member in members:
            merged[str(member["name"])] = plain(member, target="toml")
        ensemble["members"] = list(merged.values())
        if threshold is not None:
            ensemble["threshold"] = float(threshold)
        if ensemble_metrics is not None:
            ensemble["metrics"] = plain(ensemble_metrics, target="toml")
        raw["ensemble"] = ensemble
    try:
        if "photometry" in raw:
            PhotometryModel.model_validate(raw["photometry"])
        if "ensemble" in raw:
            EnsembleModels.model_validate(raw["ensemble"])
    except ValidationError as exc:
        raise TrainingError(f"{path}: the manifest entries do not validate:\n{exc}") from exc
    write_text(path, tomli_w.dumps(raw))
    if "photometry" in raw and "ensemble" in raw:
        load_manifest(path, verify=True)
    return path


def take_photometry(output: Path, *, source: Path | None = None) -> None:
    """Give output/manifest.toml a photometry gate when it has none, copied with its file.

    From the manifest `source`, else the shipped one: the output is then a complete model set
    that a scan or `evaluate_store` loads.
    """
    target = output / "manifest.toml"
    if "photometry" in read_manifest_table(target):
        return
    source = source or default_manifest_path()
    entry = read_manifest_table(source).get("photometry")
    if entry is None:
        raise TrainingError(f"{source}: no [photometry] table to copy into {target}")
    file = source.parent / str(entry["file"])
    if file_digest(file) != entry["sha256"]:
        raise TrainingError(f"{file}: sha256 does not match {source}")
    copy = output / file.name
    if file.resolve() != copy.resolve():
        write_atomic(copy, lambda tmp: shutil.copyfile(file, tmp))
    write_manifest(target, photometry={**entry, "file": file.name})


def record_metrics(
    manifest: Path, name: str, *, spec: Mapping[str, Any], report: EvaluationReport
) -> None:
    """Write a held-out set's metrics into the manifest: top level for the test set, else nested.

    spec: the set's description (how it was simulated, or its store), kept beside its metrics.
    """
    raw = read_manifest_table(manifest)["ensemble"]
    members = raw["members"]
    scored = report.as_dict()
    for member in members:
        if member["name"] not in scored:
            continue
        values = {**scored[member["name"]], "set": dict(spec)}
        member["metrics"] = _merged(member.get("metrics", {}), name, values)
    ensemble = {**scored[ENSEMBLE], "set": dict(spec)}
    write_manifest(
        manifest,
        members=members,
        ensemble_metrics=_merged(raw.get("metrics", {}), name, ensemble),
    )


def _merged(metrics: Mapping[str, Any], name: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """metrics with one set's values merged in, where record_metrics says they go."""
    out = dict(metrics)
    if name == TEST_SET:
        out.pop("test_set", None)
        out.update({k: v for k, v in values.items() if k != "set"})
        out["test_set"] = values["set"]
    else:
        sets = dict(out.get("evaluation_sets", {}))
        sets[name] = dict(values)
        out["evaluation_sets"] = sets
    return out


def keep_members(path: Path, names: Sequence[str]) -> list[str]:
    """Drop the ensemble members not named (and any fitted combination and calibration, which
    weigh the old set) from a manifest; the file names of the members dropped."""
    raw = read_manifest_table(path)
    ensemble = dict(raw.get("ensemble", {}))
    members = list(ensemble.get("members", []))
    unknown = sorted(set(names) - {m["name"] for m in members})
    if unknown:
        raise TrainingError(f"{path}: no members {unknown} to keep")
    dropped = [str(m["file"]) for m in members if m["name"] not in names]
    ensemble["members"] = [m for m in members if m["name"] in names]
    ensemble.pop("combination", None)
    ensemble.pop("calibration", None)
    raw["ensemble"] = ensemble
    try:
        EnsembleModels.model_validate(ensemble)
    except ValidationError as exc:
        raise TrainingError(f"{path}: the manifest entries do not validate:\n{exc}") from exc
    write_text(path, tomli_w.dumps(raw))
    return dropped


def clear_fitted(path: Path) -> None:
    """Remove [ensemble.combination] and [ensemble.calibration] from a manifest, if present."""
    raw = read_manifest_table(path)
    ensemble = raw.get("ensemble")
    if not ensemble or not ({"combination", "calibration"} & set(ensemble)):
        return
    ensemble.pop("combination", None)
    ensemble.pop("calibration", None)
    write_text(path, tomli_w.dumps(raw))
