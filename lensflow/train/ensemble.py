"""Train the CNN ensemble members, export them, and evaluate them on held-out sets.

Each member (lensflow.train.members) trains from its own seed with per-epoch checkpoints, then
runs its [mining] rounds; a rerun of the same config resumes where it stopped. With
[combination], the members are then chosen ([selection]) and combined and calibrated on a
natural-mix set (lensflow.train.combine) before the held-out sets are scored. Every set is
simulated in the config's survey profile, and each member's manifest entry records that survey
and its bands. The held-out sets (the test set and any evaluation sets) are simulated on the
local cluster while the members train, then scored with ONNX Runtime as a scan would score
them. The manifest and the run report are rewritten after every step, so an interrupted run
leaves what it finished.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from lensflow.errors import TrainingError
from lensflow.evaluate import (
    ENSEMBLE,
    EvaluationReport,
    evaluate_store,
    write_plots,
    write_report_json,
    write_roc_panels,
)
from lensflow.surveys import Survey, survey_profile
from lensflow.train.combine import fit_ensemble
from lensflow.train.config import TEST_SET, CutoutSet, TrainConfig
from lensflow.train.data import (
    ensure_cutout_set,
    load_training_set,
    simulation_client,
    split_validation,
)
from lensflow.train.loop import make_deterministic, resolve_device
from lensflow.train.manifest import clear_fitted, record_metrics, take_photometry, write_manifest
from lensflow.train.members import check_store_survey, preflight, train_member
from lensflow.train.report import RunReport, environment, now, summarise

if TYPE_CHECKING:
    from distributed import Client

logger = logging.getLogger(__name__)


def held_out_sets(config: TrainConfig) -> list[tuple[str, CutoutSet]]:
    """The sets scored after training, by name: the test set first, then the evaluation sets."""
    sets: list[tuple[str, CutoutSet]] = []
    if config.test_set is not None:
        sets.append((TEST_SET, config.test_set))
    sets += [(s.name, s) for s in config.evaluation_sets]
    return sets


def _simulate_held_out(
    config: TrainConfig, survey: Survey, client: Client | None, run: RunReport
) -> dict[str, tuple[Path, Path]]:
    paths: dict[str, tuple[Path, Path]] = {}
    for name, spec in held_out_sets(config):
        folder = config.work / ("test-set" if name == TEST_SET else f"set-{name}")
        with run.step(f"simulate {name} set"):
            paths[name] = ensure_cutout_set(
                spec, folder, survey=survey, workers=config.simulation_workers, client=client
            )
    return paths


def train_ensemble(config: TrainConfig | Path) -> Path:
    """Train every member of the config, export and evaluate them; returns the manifest path.

    Writes output/<member>.onnx and merges each member into output/manifest.toml as soon as it
    is exported; then scores the test set and each evaluation set with ONNX Runtime and writes
    their metrics (the test set's as `metrics`, the others' under `metrics.evaluation_sets`),
    report JSON and plots. With config.summary, the run report and a ROC figure of every set.
    """
    if not isinstance(config, TrainConfig):
        config = TrainConfig.from_toml(Path(config))
    survey = survey_profile(config.survey)
    run = RunReport(config.summary)
    make_deterministic(config.threads, deterministic=config.deterministic)
    device = resolve_device(config.device)
    run.update(environment=environment(device), config=config.model_dump(mode="json"))
    manifest = config.output / "manifest.toml"
    held_out: dict[str, tuple[Path, Path]] = {}
    if config.preflight:
        with run.step("preflight"):
            preflight(config, device, survey)
    with (
        simulation_client(config.simulation_workers) as client,
        ThreadPoolExecutor(1, thread_name_prefix="simulate") as background,
    ):
        with run.step("simulate training set"):
            store, labels = ensure_cutout_set(
                config.training_set,
                config.work / "train-set",
                survey=survey,
                workers=config.simulation_workers,
                client=client,
            )
        pending: Future[dict[str, tuple[Path, Path]]] = background.submit(
            _simulate_held_out, config, survey, client, run
        )
        with run.step("load training set"):
            threads = min(8, os.cpu_count() or 1)
            data = load_training_set(config.training_set, store, labels, threads=threads)
            check_store_survey(data, survey, store)
            if not data.labels.is_lens.any() or data.labels.is_lens.all():
                raise TrainingError(f"{store}: training needs both lenses and non-lenses")
            fit_rows, val_rows = split_validation(
                data.labels.is_lens,
                fraction=config.validation_fraction,
                seed=config.training_set.seed,
            )
            train, val = data.subset(fit_rows), data.subset(val_rows)
            del data
            images = torch.from_numpy(train.images).to(device)
        take_photometry(config.output, source=config.photometry_from)
        if config.combination is not None:
            clear_fitted(manifest)  # refitted below, on the members this run trains
        for member in config.members:
            with run.step(f"train {member.name}"):
                entry = train_member(
                    member,
                    train=train,
                    val=val,
                    config=config,
                    device=device,
                    survey=survey,
                    images=images,
                    client=client,
                )
                write_manifest(manifest, members=[entry], threshold=config.threshold)
            run.merge(
                "members",
                member.name,
                {"flops": entry["flops"], "sha256": entry["sha256"], **entry["training"]},
            )
        del train, val, images
        if device.type == "cuda":
            torch.cuda.empty_cache()
        fit_ensemble(config, manifest, survey=survey, run=run, client=client)
        with run.step("wait for held-out sets"):
            held_out = pending.result()
    reports: dict[str, EvaluationReport] = {}
    for name, spec in held_out_sets(config):
        set_store, set_labels = held_out[name]
        with run.step(f"evaluate {name} set"):
            report = evaluate_store(
                set_store, set_labels, manifest=manifest, workers=config.evaluation_workers
            )
            record_metrics(manifest, name, spec=spec.spec(), report=report)
            suffix = "" if name == TEST_SET else f"_{name}"
            write_report_json(report, config.report_folder / f"ensemble{suffix}.json")
            write_plots(report, config.report_folder, prefix=f"roc{suffix}")
            reports[name] = report
            run.merge("sets", name, {"set": spec.spec(), **summarise(report)})
            if config.summary is not None:
                write_roc_panels(reports, config.summary.with_suffix(".png"))
        logger.info("ensemble on the %s set: %s", name, report.as_dict()[ENSEMBLE])
    run.update(finished=now())
    return manifest
