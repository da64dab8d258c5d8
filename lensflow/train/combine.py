"""The ensemble fitted at training time: members chosen for diversity, combination, calibration.

After every candidate member is trained and exported, the [combination] set (a natural-mix
cutout set, simulated once like the others) is scored with each candidate through ONNX Runtime
as `lensflow evaluate` scores it. With [selection], `select_members` keeps the `size`
candidates whose fitted combination has the best TPR10 there and the others leave the
manifest (their ONNX files too); then `calibrate_manifest` (lensflow.train.calibrate, as
`lensflow train calibrate` runs it) fits the logistic combination and the isotonic calibration
on the same set and writes them into the manifest, so evaluate and the scan's p_lens use them.
Torch-free.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lensflow.evaluate import evaluate_store
from lensflow.labels import read_labels
from lensflow.surveys import Survey
from lensflow.train.calibrate import calibrate_manifest
from lensflow.train.config import TrainConfig
from lensflow.train.data import ensure_cutout_set
from lensflow.train.manifest import keep_members
from lensflow.train.report import RunReport
from lensflow.train.selection import select_members

if TYPE_CHECKING:
    from distributed import Client

logger = logging.getLogger(__name__)


def fit_ensemble(
    config: TrainConfig,
    manifest: Path,
    *,
    survey: Survey,
    run: RunReport,
    client: Client | None = None,
) -> dict[str, Any]:
    """Choose members (with [selection]) and fit the combination and calibration ([combination])
    on the combination set; the run report's "ensemble_fit" entry (also returned)."""
    combination = config.combination
    if combination is None:
        return {}
    with run.step("simulate combination set"):
        store, labels = ensure_cutout_set(
            combination.set,
            config.work / "combination-set",
            survey=survey,
            workers=config.simulation_workers,
            client=client,
        )
    entry: dict[str, Any] = {"set": combination.set.spec()}
    if config.selection is not None:
        with run.step("choose members"):
            scored = evaluate_store(
                store, labels, manifest=manifest, workers=config.evaluation_workers
            )
            truth = read_labels(labels)
            candidates = {m.name: scored.scores[m.name] for m in config.members}
            selection = select_members(
                candidates, truth.is_lens, size=config.selection.size, l2=combination.l2
            )
            for file in keep_members(manifest, selection.chosen):
                (manifest.parent / file).unlink(missing_ok=True)
            entry["selection"] = selection.as_dict()
            entry["candidates"] = scored.as_dict()
            logger.info("members chosen: %s", list(selection.chosen))
            run.update(ensemble_fit=entry)
    with run.step("fit combination and calibration"):
        fitted = calibrate_manifest(
            manifest,
            store,
            labels,
            prior=combination.prior,
            l2=combination.l2,
            workers=config.evaluation_workers,
        )
    entry |= {
        "weights": dict(fitted.combination.weights),
        "bias": fitted.combination.bias,
        "calibration_knots": len(fitted.calibration.scores),
        "lens_fraction": fitted.calibration.lens_fraction,
        "prior": fitted.prior,
        "in_sample": fitted.report.as_dict(),
    }
    run.update(ensemble_fit=entry)
    return entry
