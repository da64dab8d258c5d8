"""Score cutouts with the CNN ensemble: ONNX members, batched, CUDA when present, else CPU.

Each worker process loads each member once (the session cache in `lensflow.sessions`) and keeps
it for every partition it scores. A member returns one lens probability per cutout; the
ensemble score is the mean over members.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np

from lensflow.cutouts import StoreInfo
from lensflow.errors import ModelMismatchError
from lensflow.registry import ModelManifest
from lensflow.sessions import load_session, run_batched

logger = logging.getLogger(__name__)

DEFAULT_BATCH = 256
"""Cutouts per ONNX Runtime run."""

ENSEMBLE = "ensemble"
"""The key of the members' mean score, beside the members' names."""


def check_ensemble_inputs(manifest: ModelManifest, store: StoreInfo) -> None:
    """Refuse, before a scan starts, members whose input spec or graph does not fit the store."""
    for member in manifest.ensemble.members:
        want = (member.bands, member.size, member.pixel_scale_arcsec, member.units)
        have = (store.bands, store.cutout_size, store.pixel_scale_arcsec, store.units)
        if (
            tuple(want[0]) != tuple(have[0])
            or want[1] != have[1]
            or not np.isclose(want[2], have[2])
            or want[3] != have[3]
        ):
            raise ModelMismatchError(
                f"model {member.name!r} ({member.file}) expects bands {list(want[0])}, "
                f'{want[1]}x{want[1]} px at {want[2]}"/px in {want[3]}; cutout store '
                f'{store.path} has bands {list(have[0])}, {have[1]}x{have[1]} px at {have[2]}"/px '
                f"in {have[3]}"
            )
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
    images: np.ndarray, *, manifest: ModelManifest, batch: int = DEFAULT_BATCH
) -> Mapping[str, np.ndarray]:
    """Each member's lens probability for each cutout, and their mean under "ensemble".

    images float32 (N, bands, H, W) in the store's units. Returns float32 (N,) arrays keyed by
    member name, plus ENSEMBLE ("ensemble", see ensemble_mean).
    """
    images = np.ascontiguousarray(images, dtype=np.float32)
    scores: dict[str, np.ndarray] = {}
    for member in manifest.ensemble.members:
        session = load_session(manifest.path_of(member.file), member.sha256)
        scores[member.name] = run_batched(session, images, batch=batch)
    scores[ENSEMBLE] = ensemble_mean(scores)
    return scores


def ensemble_mean(member_scores: Mapping[str, np.ndarray]) -> np.ndarray:
    """The ensemble score: the mean of the members' probabilities, float32 (N,).

    member_scores: each member's float32 (N,) probabilities, all for the same N cutouts.
    """
    stacked = np.stack([np.asarray(v, dtype=np.float32) for v in member_scores.values()])
    mean: np.ndarray = stacked.mean(axis=0).astype(np.float32)
    return mean
