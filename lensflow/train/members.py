"""One ensemble member: its fit, its mining rounds, its ONNX export and manifest entry.

Each member trains from its own seed with per-epoch checkpoints under checkpoints/<name>/ (its
mining rounds under checkpoints/<name>/round-<r>/), so a rerun of the same config resumes where
it stopped and a finished member is only re-exported. The first fit's checkpoint tag is that of
a run without [randomise] or [mining] when they are off, so older checkpoints still resume.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from lensflow.errors import TrainingError
from lensflow.io import canonical_hash, file_digest
from lensflow.surveys import Survey
from lensflow.train.config import MemberConfig, TrainConfig
from lensflow.train.data import LabelledCutouts
from lensflow.train.export import export_onnx
from lensflow.train.loop import FitSettings, fit
from lensflow.train.mining import mine, validation_metrics
from lensflow.train.models import ProbabilityModel, build_cnn, count_flops, normalisation_text
from lensflow.train.randomise import Randomisation

if TYPE_CHECKING:
    from distributed import Client


def member_settings(
    config: TrainConfig, member: MemberConfig, survey: Survey | None = None
) -> FitSettings:
    """A member's fit settings; with survey, its [randomise] (the survey's sky sigmas)."""
    sky = [] if survey is None else [survey.sky_sigma_njy[b] for b in survey.bands]
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
        randomise=None if survey is None else Randomisation.of(config.randomise, sky),
    )


def checkpoint_tag(
    config: TrainConfig, member: MemberConfig, settings: FitSettings, survey: Survey
) -> str:
    """The fingerprint of a member's first fit: its config, settings, data and survey.

    Without randomisation the settings are hashed without that field, as before it existed.
    """
    fields = dataclasses.asdict(settings)
    if settings.randomise is None:
        fields.pop("randomise")
    return canonical_hash(
        {
            "member": member.model_dump(),
            "settings": fields,
            "data": config.training_set.spec(),
            "survey": survey.name,
            "validation_fraction": config.validation_fraction,
        }
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
            settings = dataclasses.replace(member_settings(config, member, survey), epochs=1)
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
    client: Client | None = None,
) -> dict[str, Any]:
    """Train (or resume) one member and its mining rounds, export its ONNX file; its manifest
    entry, less metrics.

    survey: the profile of the training set (its bands and sky noise set the normalisation and
    the randomisation); images: train.images already on the device (moved once for every
    member); client: where mining pools are simulated.
    """
    settings = member_settings(config, member, survey)
    tag = checkpoint_tag(config, member, settings, survey)
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
    first = validation_metrics(model, val, result, device=device)
    rounds = mine(
        model,
        train=train,
        val=val,
        images=images,
        settings=settings,
        config=config,
        survey=survey,
        device=device,
        tag=tag,
        folder=config.checkpoint_folder / member.name,
        client=client,
    )
    mined = sum(int(r["kept"]) for r in rounds)
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
            "augmentation": augmentation_text(config),
            "n_train": int(train.labels.ids.size) + mined,
            "n_val": int(val.labels.ids.size),
            "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            "precision": settings.precision if device.type == "cuda" else "float32",
            "seconds": round(result.seconds, 1),
            "images_per_second": _rounded(result.images_per_second),
            "inference_images_per_second": round(rate),
            "onnx_max_abs_diff": worst,
            "validation": first,
            **({"mining": rounds} if rounds else {}),
        },
    }


def augmentation_text(config: TrainConfig) -> str:
    """The augmentation of the manifest entry: flips and rotations, and any randomisation."""
    text = "random 90-degree rotations and flips"
    r = config.randomise
    if not r.active:
        return text
    return (
        f"{text}; per cutout (probability {r.probability:g}): flux x 10^(-0.4 U(-{r.depth_mag:g}, "
        f"{r.depth_mag:g})), Gaussian blur sigma U{list(r.psf_sigma_px)} px and added noise "
        f"U{list(r.noise_fraction)} x sky sigma per band"
    )


def _rounded(value: float) -> int | None:
    return round(value) if np.isfinite(value) else None


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
