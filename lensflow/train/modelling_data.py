"""The lens sets of modelling training: simulated once (lenses only) and reused, then split.

A set is simulated by lensflow.simulate (`make_training_set` with no non-lenses, in the set's
population) or by lensflow.independent (`make_check_set`), into its folder with a spec.json
stamp; a later run with the same spec and survey reuses it.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from lensflow.errors import TrainingError
from lensflow.evaluate.modelling import HeldOutLenses
from lensflow.io import write_text
from lensflow.surveys import Survey
from lensflow.train.data import simulation_client
from lensflow.train.modelling_config import LensSet

logger = logging.getLogger(__name__)


def ensure_lens_set(
    spec: LensSet, default_folder: Path, *, survey: Survey, workers: int = 1
) -> tuple[Path, Path]:
    """Paths (store, labels) of a lens set, simulated first unless made earlier with the same
    spec and survey (a spec.json stamp in its folder, which also records the seconds the
    simulation took) or given as a store."""
    if spec.store is not None:
        labels = spec.labels if spec.labels is not None else spec.store.parent / "labels.parquet"
        return spec.store, labels
    folder = spec.folder if spec.folder is not None else default_folder
    stamp = folder / "spec.json"
    wanted = {"spec": spec.spec(), "survey": survey.name}
    made = json.loads(stamp.read_text()) if stamp.is_file() else {}
    if {k: made.get(k) for k in wanted} == wanted:
        return Path(made["store"]), Path(made["labels"])
    stamp.unlink(missing_ok=True)
    folder.mkdir(parents=True, exist_ok=True)
    logger.info("simulating %s into %s", spec.spec(), folder)
    began = time.perf_counter()
    options: dict[str, Any] = {
        "n_lenses": spec.n_lenses,
        "n_non_lenses": 0,
        "seed": spec.seed,
        "survey": survey,
        "overwrite": True,
        "progress": False,
    }
    with simulation_client(workers) as client:
        if spec.simulator == "independent":
            from lensflow.independent import make_check_set

            made_set: Any = make_check_set(folder, client=client, **options)
        else:
            from lensflow.simulate import make_training_set

            made_set = make_training_set(
                folder, client=client, population=spec.population, **options
            )
    store, labels = Path(made_set.store).resolve(), Path(made_set.labels).resolve()
    made = {**wanted, "store": str(store), "labels": str(labels)}
    made["seconds"] = round(time.perf_counter() - began, 1)
    write_text(stamp, json.dumps(made) + "\n")
    return store, labels


def split_rows(n: int, *, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (fit, validation) of n lenses, `fraction` of them (at least one) held."""
    order = np.random.default_rng(seed).permutation(n)
    n_val = max(1, round(fraction * n))
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def check_survey(lenses: HeldOutLenses, survey: Survey, store: Path) -> None:
    """Refuse training lenses whose bands, size or pixel scale are not the survey's."""
    info = lenses.info
    if (info.bands, info.cutout_size) != (survey.bands, survey.cutout_size) or not np.isclose(
        info.pixel_scale_arcsec, survey.pixel_scale_arcsec
    ):
        raise TrainingError(
            f"{store}: cutouts of bands {list(info.bands)}, {info.cutout_size} px at "
            f"{info.pixel_scale_arcsec}''/px are not those of survey {survey.name!r}; set "
            "`survey` to the store's profile"
        )


def simulation_seconds(spec: LensSet, default_folder: Path) -> float | None:
    """The seconds a simulated set's stamp records (None for a given store or no record)."""
    if spec.store is not None:
        return None
    stamp = (spec.folder if spec.folder is not None else default_folder) / "spec.json"
    if not stamp.is_file():
        return None
    seconds = json.loads(stamp.read_text()).get("seconds")
    return float(seconds) if seconds is not None else None
