"""Train the CNN ensemble members, export them, and evaluate them on held-out sets.

Each member trains from its own seed with per-epoch checkpoints under checkpoints/<name>/, so a
rerun of the same config resumes where it stopped and a finished member is only re-exported.
Every set is simulated in the config's survey profile, and each member's manifest entry records
that survey and its bands. The held-out sets (the test set and any evaluation sets) are
simulated on the local cluster while the members train, then scored with ONNX Runtime as a scan would score them. The
manifest and the run report are rewritten after every step, so an interrupted run leaves
what it finished.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import tempfile
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from lensflow.errors import TrainingError
from lensflow.evaluate import (
    ENSEMBLE,
    EvaluationReport,
    evaluate_store,
    write_plots,
    write_report_json,
    write_roc_panels,
)
from lensflow.io import canonical_hash, file_digest
from lensflow.surveys import Survey, survey_profile
from lensflow.train.config import TEST_SET, CutoutSet, MemberConfig, TrainConfig
from lensflow.train.data import (
    LabelledCutouts,
    ensure_cutout_set,
    load_training_set,
    simulation_client,
    split_validation,
)
from lensflow.train.export import export_onnx
from lensflow.train.loop import (
    FitSettings,
    fit,
    make_deterministic,
    resolve_device,
)
from lensflow.train.manifest import record_metrics, take_photometry, write_manifest
from lensflow.train.models import ProbabilityModel, build_cnn, count_flops, normalisation_text
from lensflow.train.report import RunReport, environment, now, summarise

if TYPE_CHECKING:
    from distributed import Client

logger = logging.getLogger(__name__)


def _settings(config: TrainConfig, member: MemberConfig) -> FitSettings:
    return FitSettings(
        epochs=member.epochs or config.epochs,
        patience=config.patience,
        batch_size=config.batch_size,
        lr=member.lr or config.lr,
        weight_decay=config.weight_decay,
        seed=member.seed,
        augment=True,
        precision=config.precision,
        channels_last=config.channels_last,
    )


def inference_rate(
    model: ProbabilityModel, shape: tuple[int, ...], *, device: torch.device
) -> float:
    """Images per second of the float32 torch forward pass on device (batches of zeros)."""
    batch = 1024 if device.type == "cuda" else 16
    model.to(device)
    model.train(False)
    x = torch.zeros((batch, *shape), device=device)
    with torch.no_grad():
        model(x)  # warm-up
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        rounds = 5 if device.type == "cuda" else 1
        tick = time.perf_counter()
        for _ in range(rounds):
            model(x)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    model.cpu()
    return rounds * batch / (time.perf_counter() - tick)


def preflight(config: TrainConfig, device: torch.device, survey: Survey) -> None:
    """A one-epoch fit and an ONNX export of every member's architecture on noise cutouts.

    Runs the whole device path (shuffling, augmentation, precision, optimiser, export check) in
    seconds, so a run that cannot work fails before it simulates anything.
    """
    n = 2 * config.batch_size
    shape = (len(survey.bands), survey.cutout_size, survey.cutout_size)
    images = np.random.default_rng(0).normal(0.0, 10.0, size=(n + 16, *shape))
    images = images.astype(np.float32)
    is_lens = np.arange(n + 16) % 2 == 0
    with tempfile.TemporaryDirectory() as folder:
        for member in config.members:
            settings = dataclasses.replace(_settings(config, member), epochs=1)
            model = build_cnn(member.architecture, survey)
            fit(
                model,
                (images[:n], is_lens[:n]),
                (images[n:], is_lens[n:]),
                settings=settings,
                device=device,
            )
            export_onnx(model, Path(folder) / "model.onnx", kind="cnn", example=images[:4])


def train_member(
    member: MemberConfig,
    *,
    train: LabelledCutouts,
    val: LabelledCutouts,
    config: TrainConfig,
    device: torch.device,
    survey: Survey,
    images: Tensor | None = None,
) -> dict[str, Any]:
    """Train (or resume) one member, export its ONNX file; its manifest entry, less metrics.

    survey: the profile of the training set (its bands and sky noise set the normalisation);
    images: train.images already on the device (moved once for every member).
    """
    settings = _settings(config, member)
    tag = canonical_hash(
        {
            "member": member.model_dump(),
            "settings": dataclasses.asdict(settings),
            "data": config.training_set.spec(),
            "survey": survey.name,
            "validation_fraction": config.validation_fraction,
        }
    )
    torch.manual_seed(member.seed)
    info = train.info
    model = build_cnn(member.architecture, survey)
    result = fit(
        model,
        (train.images if images is None else images, train.labels.is_lens),
        (val.images, val.labels.is_lens),
        settings=settings,
        device=device,
        checkpoints=config.checkpoint_folder / member.name,
        tag=tag,
        max_seconds=config.max_member_seconds,
    )
    shape = tuple(int(n) for n in val.images.shape[1:])
    rate = inference_rate(model, shape, device=device)
    file = f"{member.name}.onnx"
    path = config.output / file
    zeros = np.zeros((2, *shape), dtype=np.float32)
    worst = export_onnx(
        model, path, kind="cnn", example=val.images[:5], check=[zeros, val.images[:256]]
    )
    return {
        "name": member.name,
        "file": file,
        "sha256": file_digest(path),
        "survey": survey.name,
        "bands": list(info.bands),
        "size": info.cutout_size,
        "pixel_scale_arcsec": info.pixel_scale_arcsec,
        "units": info.units,
        "normalisation": normalisation_text(survey),
        "flops": count_flops(model, shape),
        "version": config.version,
        "training": {
            **config.training_set.spec(),
            "architecture": member.architecture,
            "parameters": sum(p.numel() for p in model.parameters()),
            "seed": member.seed,
            "epochs": settings.epochs,
            "epochs_run": result.epochs_run,
            "best_epoch": result.best_epoch,
            "stopped_by": result.stopped_by,
            "best_val_loss": result.best_val_loss,
            "best_val_auroc": result.best_val_auroc,
            "batch_size": settings.batch_size,
            "lr": settings.lr,
            "validation_fraction": config.validation_fraction,
            "augmentation": "random 90-degree rotations and flips",
            "n_train": int(train.labels.ids.size),
            "n_val": int(val.labels.ids.size),
            "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            "precision": settings.precision if device.type == "cuda" else "float32",
            "seconds": round(result.seconds, 1),
            "images_per_second": _rounded(result.images_per_second),
            "inference_images_per_second": round(rate),
            "onnx_max_abs_diff": worst,
        },
    }


def _rounded(value: float) -> int | None:
    return round(value) if np.isfinite(value) else None


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


def check_store_survey(data: LabelledCutouts, survey: Survey, store: Path) -> None:
    """Refuse a training store whose bands, cutout size or pixel scale are not the survey's."""
    info = data.info
    held = (info.bands, info.cutout_size, info.pixel_scale_arcsec)
    wanted = (survey.bands, survey.cutout_size, survey.pixel_scale_arcsec)
    if held[:2] != wanted[:2] or abs(held[2] - wanted[2]) > 1e-9:
        raise TrainingError(
            f"{store}: cutouts of bands {list(held[0])}, {held[1]} px at {held[2]}''/px are not "
            f"those of survey {survey.name!r} ({list(wanted[0])}, {wanted[1]} px at "
            f"{wanted[2]}''/px); set `survey` to the store's profile"
        )


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
