"""The photometry gate: an ONNX MLP on catalog columns that keeps lens-like colours and shapes.

The model takes the catalog columns the manifest's `features` name, in that order, by their
column-map names: AB magnitudes (`mag_<band>`), and where the gate uses morphology PSF
magnitudes (`psfmag_<band>`), PSF-corrected sizes in arcsec (`size_<band>`) or `extendedness`.
It makes its colours, PSF-minus-model differences and normalisation inside the graph, so any
catalog mapped to those names can be scored. Rows with a missing or non-finite feature cannot
be scored and are counted apart.
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
    """Stack the named feature columns into float32 (N, F), in the model's feature order."""
    return np.stack([np.asarray(columns[name], dtype=np.float32) for name in features], axis=1)


def score_photometry(features: np.ndarray, *, manifest: ModelManifest) -> np.ndarray:
    """Lens probability per row from features float32 (N, F); NaN where a feature is not finite."""
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
