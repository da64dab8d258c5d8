"""Score cutouts with the CNN ensemble: ONNX members, batched, CUDA when present, else CPU.

Each worker process loads each member once (the session cache in `lensflow.sessions`) and keeps
it for every partition it scores. A member returns one lens probability per cutout; the
ensemble score is the manifest's fitted combination of the members (`[ensemble.combination]`,
see `lensflow.calibration`), or the mean over members when the manifest has none. With an
`[ensemble.calibration]`, each cutout also gets p_lens, its probability of being a lens at the
scan's prior lens rate.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np

from lensflow.calibration import DEFAULT_PRIOR_LENS_RATE, combined_score, lens_probability
from lensflow.cutouts import StoreInfo
from lensflow.errors import ModelMismatchError
from lensflow.registry import EnsembleModels, ModelManifest
from lensflow.sessions import load_session, run_batched

logger = logging.getLogger(__name__)

DEFAULT_BATCH = 32
"""Cutouts per ONNX Runtime run on a CPU. Small batches keep a member's activations in the
core's caches: one thread ran the shipped members 1.12-1.41 times faster at 32 than at 256
(benchmarks/results/ensemble.md); a GPU takes [ensemble] gpu_batch_size."""

ENSEMBLE = "ensemble"
"""The key of the ensemble score (the combination, else the mean), beside the members' names."""

MEAN = "mean"
"""The key of the members' plain mean where a report sets it beside a fitted combination."""

P_LENS = "p_lens"
"""The key of the calibrated lens probability at a prior lens rate."""


def check_ensemble_inputs(manifest: ModelManifest, store: StoreInfo) -> None:
    """Refuse, before a scan starts, members whose input spec or graph does not fit the store."""
    for member in manifest.ensemble.members:
        misfit = store.misfit(
            bands=member.bands,
            size=member.size,
            pixel_scale_arcsec=member.pixel_scale_arcsec,
            units=member.units,
        )
        if misfit is not None:
            raise ModelMismatchError(f"model {member.name!r} ({member.file}) expects {misfit}")
        session = load_session(manifest.path_of(member.file), member.sha256)
        graph_input = session.get_inputs()[0]
        shape = graph_input.shape
        expected = [len(store.bands), store.cutout_size, store.cutout_size]
        fixed = [d for d in shape[1:]]
        if len(shape) != 4 or any(
            isinstance(d, int) and d != e for d, e in zip(fixed, expected, strict=True)
        ):
            raise ModelMismatchError(
                f"model {member.name!r} ({member.file}) graph input {graph_input.name!r} has shape "
                f"{shape}; cutout store {store.path} gives (N, {expected[0]}, {expected[1]}, "
                f"{expected[2]})"
            )


def score_cutouts(
    images: np.ndarray,
    *,
    manifest: ModelManifest,
    batch: int = DEFAULT_BATCH,
    prior_lens_rate: float = DEFAULT_PRIOR_LENS_RATE,
) -> Mapping[str, np.ndarray]:
    """Each member's lens probability for each cutout, the ensemble score, and p_lens.

    images float32 (N, bands, H, W) in the store's units. Returns float32 (N,) arrays keyed by
    member name, plus ENSEMBLE ("ensemble", see ensemble_score) and, when the manifest has a
    calibration, P_LENS ("p_lens") at prior_lens_rate (lenses per source scanned).
    """
    images = np.ascontiguousarray(images, dtype=np.float32)
    scores: dict[str, np.ndarray] = {}
    for member in manifest.ensemble.members:
        session = load_session(manifest.path_of(member.file), member.sha256)
        scores[member.name] = run_batched(session, images, batch=batch)
    scores[ENSEMBLE] = ensemble_score(scores, models=manifest.ensemble)
    if manifest.ensemble.calibration is not None:
        scores[P_LENS] = lens_probability(
            scores[ENSEMBLE], manifest.ensemble.calibration, prior=prior_lens_rate
        )
    return scores


def ensemble_score(
    member_scores: Mapping[str, np.ndarray], *, models: EnsembleModels
) -> np.ndarray:
    """The ensemble score, float32 (N,): the manifest's combination, else ensemble_mean.

    member_scores: each member's float32 (N,) probabilities, keyed by member name (other keys
    are ignored).
    """
    members = {m.name: member_scores[m.name] for m in models.members}
    if models.combination is None:
        return ensemble_mean(members)
    return combined_score(members, models.combination)


def ensemble_mean(member_scores: Mapping[str, np.ndarray]) -> np.ndarray:
    """The ensemble score: the mean of the members' probabilities, float32 (N,).

    member_scores: each member's float32 (N,) probabilities, all for the same N cutouts.
    """
    stacked = np.stack([np.asarray(v, dtype=np.float32) for v in member_scores.values()])
    mean: np.ndarray = stacked.mean(axis=0).astype(np.float32)
    return mean
