"""The photometry gate: an ONNX MLP on catalog magnitudes that keeps lens-like colours.

The model takes AB magnitudes in the manifest's feature order (g, r, i, z by default) and makes
its colours and normalisation inside the graph, so any catalog mapped to those bands can be
scored. Rows with a missing or non-finite magnitude cannot be scored and are counted apart.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np

from lensflow.registry import ModelManifest
from lensflow.sessions import load_session, run_batched

logger = logging.getLogger(__name__)

PHOTOMETRY_BATCH = 65_536


def photometry_features(columns: Mapping[str, np.ndarray], features: tuple[str, ...]) -> np.ndarray:
    """Stack the named magnitude columns into float32 (N, F), in the model's feature order."""
    return np.stack([np.asarray(columns[name], dtype=np.float32) for name in features], axis=1)


def score_photometry(features: np.ndarray, *, manifest: ModelManifest) -> np.ndarray:
    """Lens probability per row from magnitudes float32 (N, F); NaN where a magnitude is not finite."""
    model = manifest.photometry
    session = load_session(manifest.path_of(model.file), model.sha256)
    features = np.ascontiguousarray(features, dtype=np.float32)
    finite = np.isfinite(features).all(axis=1)
    if finite.all():
        return run_batched(session, features, batch=PHOTOMETRY_BATCH)
    scores = np.full(features.shape[0], np.nan, dtype=np.float32)
    if finite.any():
        scores[finite] = run_batched(session, features[finite], batch=PHOTOMETRY_BATCH)
    return scores
