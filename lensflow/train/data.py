"""Training data: labelled cutout stores in memory, augmentation.

Cutout sets are made by the simulator (`make_training_set`) once and reused while their spec
is unchanged; the photometry gate learns from simulated catalogs (`lensflow.train.catalogs`).
"""

from __future__ import annotations

import functools
import json
import logging
import math
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from lensflow.cluster import connect
from lensflow.config import ClusterConfig
from lensflow.cutouts import StoreInfo, list_groups, open_store, read_group
from lensflow.errors import TrainingError
from lensflow.labels import Labels, check_same_ids, read_labels
from lensflow.surveys import Survey, survey_profile
from lensflow.train.config import CutoutSet, TrainingSetConfig

if TYPE_CHECKING:
    from distributed import Client

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LabelledCutouts:
    """A labelled cutout set in memory: images float32 (N, bands, H, W) nJy, labels by row."""

    images: np.ndarray
    labels: Labels
    info: StoreInfo

    def subset(self, rows: np.ndarray) -> LabelledCutouts:
        """The rows given (int indices), in that order."""
        classes = self.labels.classes
        return LabelledCutouts(
            images=self.images[rows],
            labels=Labels(
                ids=self.labels.ids[rows],
                is_lens=self.labels.is_lens[rows],
                classes=None if classes is None else classes[rows],
            ),
            info=self.info,
        )


@contextmanager
def simulation_client(workers: int) -> Iterator[Client | None]:
    """A Dask client on a local cluster of `workers` one-thread processes; None for one worker.

    The simulation of cutout sets runs there (one task per chunk of ids).
    """
    if workers <= 1:
        yield None
        return
    with connect(ClusterConfig(n_workers=workers, threads_per_worker=1, dashboard=False)) as client:
        yield client


def ensure_cutout_set(
    spec: CutoutSet,
    default_folder: Path,
    *,
    survey: Survey | None = None,
    workers: int = 1,
    client: Client | None = None,
) -> tuple[Path, Path]:
    """Paths (store, labels) of a cutout set, simulating it first unless it exists already.

    The simulation runs on client when given, else on a local cluster of `workers` processes
    when workers > 1, else here, in the survey profile (default: lsst); a shifted set in
    survey.shifted(...). A set made earlier is reused when its spec and survey are the same.
    A training set's extra stores are not part of it here (see `load_training_set`).
    """
    if isinstance(spec, TrainingSetConfig):
        spec = spec.simulated()
    if spec.store is not None:
        labels = spec.labels if spec.labels is not None else spec.store.parent / "labels.parquet"
        return spec.store, labels
    survey = survey or survey_profile()
    folder = spec.folder if spec.folder is not None else default_folder
    stamp = folder / "spec.json"
    wanted = spec.spec()
    made = json.loads(stamp.read_text()) if stamp.is_file() else {}
    # stamps written before sets recorded their survey hold lsst sets
    if made.get("spec") == wanted and made.get("survey", "lsst") == survey.name:
        return Path(made["store"]), Path(made["labels"])
    stamp.unlink(missing_ok=True)
    folder.mkdir(parents=True, exist_ok=True)
    logger.info("simulating %s into %s", wanted, folder)
    if spec.simulator == "independent":
        made_set: Any = _independent_set(spec, folder, survey, workers, client)
    else:
        made_set = _lensflow_set(spec, folder, survey, workers, client)
    store, labels = Path(made_set.store), Path(made_set.labels)
    stamp.write_text(
        json.dumps(
            {"spec": wanted, "survey": survey.name, "store": str(store), "labels": str(labels)},
            indent=2,
        )
    )
    return store, labels


def _independent_set(
    spec: CutoutSet, folder: Path, survey: Survey, workers: int, client: Client | None
) -> Any:
    """A check set rendered by lensflow.independent (its own population; mix not used)."""
    from lensflow.independent import make_check_set

    options: dict[str, Any] = {
        "n_lenses": spec.n_lenses,
        "n_non_lenses": spec.n_non_lenses,
        "seed": spec.seed,
        "survey": survey.shifted(seeing_factor=spec.seeing_factor, depth_mag=spec.depth_mag),
        "overwrite": True,
        "progress": False,
    }
    if client is not None:
        return make_check_set(folder, client=client, **options)
    with simulation_client(workers) as own:
        return make_check_set(folder, client=own, **options)


def _lensflow_set(
    spec: CutoutSet, folder: Path, survey: Survey, workers: int, client: Client | None
) -> Any:
    """A set simulated by lensflow.simulate in the spec's mix and population."""
    from lensflow.simulate import NATURAL_MIX, TRAINING_MIX, make_training_set

    options: dict[str, Any] = {
        "n_lenses": spec.n_lenses,
        "n_non_lenses": spec.n_non_lenses,
        "seed": spec.seed,
        "mix": TRAINING_MIX if spec.mix == "training" else NATURAL_MIX,
        "survey": survey.shifted(seeing_factor=spec.seeing_factor, depth_mag=spec.depth_mag),
        "overwrite": True,
        "progress": False,
        "population": spec.population,
    }
    if client is not None:
        return make_training_set(folder, client=client, **options)
    with simulation_client(workers) as own:
        return make_training_set(folder, client=own, **options)


def load_cutouts(store: Path, labels: Path, *, threads: int = 1) -> LabelledCutouts:
    """Every cutout of a store (all groups) with its label, sorted by id.

    threads: groups read side by side (Zarr decoding releases the GIL).
    """
    store, labels = Path(store), Path(labels)
    info = open_store(store)
    groups = list_groups(store)
    with ThreadPoolExecutor(max(1, threads)) as pool:
        parts = list(pool.map(lambda group: read_group(store, group), groups))
    ids = np.concatenate([p[0] for p in parts]) if parts else np.empty(0, np.int64)
    order = np.argsort(ids, kind="stable")
    truth = read_labels(labels)
    check_same_ids(ids[order], truth, store=store, path=labels)
    if not parts:
        return LabelledCutouts(images=np.empty((0, 0, 0, 0), np.float32), labels=truth, info=info)
    images = np.empty((ids.size, *parts[0][1].shape[1:]), dtype=np.float32)
    start = 0
    for _, part in parts:
        images[start : start + part.shape[0]] = part
        start += part.shape[0]
    del parts
    if np.any(order != np.arange(order.size)):
        images = images[order]
    return LabelledCutouts(images=images, labels=truth, info=info)


def load_training_set(
    spec: CutoutSet, store: Path, labels: Path, *, threads: int = 1
) -> LabelledCutouts:
    """The training set (`load_cutouts` of store and labels) with the spec's extra labelled
    stores appended, rows in that order (ids may repeat across the stores).

    Refuses an extra store whose bands, cutout size, pixel scale or units differ from the
    training set's, naming the mismatch.
    """
    data = load_cutouts(store, labels, threads=threads)
    extra = spec.extra if isinstance(spec, TrainingSetConfig) else ()
    parts = [data]
    for more in extra:
        part = load_cutouts(more.store, more.labels_path, threads=threads)
        held, wanted = part.info, data.info
        for what, found, expected in (
            ("bands", list(held.bands), list(wanted.bands)),
            ("cutout_size", held.cutout_size, wanted.cutout_size),
            ("pixel_scale_arcsec", held.pixel_scale_arcsec, wanted.pixel_scale_arcsec),
            ("units", held.units, wanted.units),
        ):
            same = (
                math.isclose(found, expected, rel_tol=1e-9)
                if isinstance(found, float) and isinstance(expected, float)
                else found == expected
            )
            if not same:
                raise TrainingError(
                    f"{more.store}: {what} {found} differs from the training set's {expected} "
                    f"({store}); an extra set needs the same bands, size, pixel scale and units"
                )
        parts.append(part)
    if len(parts) == 1:
        return data

    def classes(part: LabelledCutouts) -> np.ndarray:
        known = part.labels.classes
        fallback = np.where(part.labels.is_lens, "lens", "unknown").astype(object)
        return known if known is not None else fallback

    return LabelledCutouts(
        images=np.concatenate([p.images for p in parts]),
        labels=Labels(
            ids=np.concatenate([p.labels.ids for p in parts]),
            is_lens=np.concatenate([p.labels.is_lens for p in parts]),
            classes=np.concatenate([classes(p) for p in parts]),
        ),
        info=data.info,
    )


def split_validation(
    is_lens: np.ndarray, *, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Rows (train, validation), stratified: `fraction` of the lenses and of the non-lenses."""
    rng = np.random.default_rng(seed)
    train: list[np.ndarray] = []
    val: list[np.ndarray] = []
    for rows in (np.flatnonzero(is_lens), np.flatnonzero(~is_lens)):
        rows = rng.permutation(rows)
        n_val = max(1, round(fraction * rows.size))
        val.append(rows[:n_val])
        train.append(rows[n_val:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


@functools.lru_cache(maxsize=8)
def _symmetry_maps(size: int, device: torch.device) -> Tensor:
    """Source pixel of each output pixel, int64 (8, size * size), for the 8 symmetries of a square.

    Rows 0-3 rotate by k x 90 degrees; rows 4-7 mirror (flip in x), then rotate.
    """
    grid = torch.arange(size * size, device=device).reshape(size, size)
    maps = [
        torch.rot90(g, k, dims=(0, 1)).reshape(-1) for g in (grid, grid.flip(-1)) for k in range(4)
    ]
    return torch.stack(maps)


def augment(images: Tensor, generator: torch.Generator) -> Tensor:
    """Random 90-degree rotations and flips, one draw per cutout; images (N, C, H, W), H = W.

    One gather on the images' device, no host synchronisation; the draws come from generator
    (on the images' device or the CPU).
    """
    n, c, h, w = images.shape
    if h != w:
        raise ValueError(f"augment needs square images, got {h}x{w}")
    choice = torch.randint(0, 8, (n,), generator=generator, device=generator.device)
    index = _symmetry_maps(h, images.device)[choice.to(images.device)]
    moved = images.reshape(n, c, h * w).gather(2, index[:, None, :].expand(n, c, h * w))
    return moved.reshape(n, c, h, w)


def batch_rows(n: int, batch_size: int, generator: torch.Generator) -> Iterator[Tensor]:
    """Shuffled row indices of an epoch in full batches, on the generator's device.

    The rows left over after the last full batch wait for another epoch's shuffle (a batch
    of one would break batch normalisation); with fewer rows than batch_size, one batch of all.
    """
    order = torch.randperm(n, generator=generator, device=generator.device)
    if n <= batch_size:
        yield order
        return
    for start in range(0, n - batch_size + 1, batch_size):
        yield order[start : start + batch_size]
