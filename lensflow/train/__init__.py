"""Training (the [train] extra): the photometry MLP, the CNN ensemble and the lens-modelling
networks, exported to ONNX.

Importing this package needs no torch; `train_photometry` and `train_ensemble` import it when
called and say how to install it when it is absent.
"""

from __future__ import annotations

from pathlib import Path

from lensflow.errors import TrainingError
from lensflow.train.config import PhotometryConfig, TrainConfig
from lensflow.train.modelling_config import ModellingConfig

__all__ = [
    "PhotometryConfig",
    "TrainConfig",
    "TrainingError",
    "train_ensemble",
    "train_modelling",
    "train_photometry",
]


def _require_torch() -> None:
    try:
        import torch  # noqa: F401
    except ImportError as exc:
        raise TrainingError(f"training needs torch ({exc}): pip install 'lensflow[train]'") from exc


def train_photometry(config: PhotometryConfig | Path) -> Path:
    """Train and export the photometry gate (config object or TOML path); returns the manifest."""
    _require_torch()
    from lensflow.train import photometry

    return photometry.train_photometry(config)


def train_ensemble(config: TrainConfig | Path) -> Path:
    """Train, export and evaluate the CNN members (config object or TOML path); the manifest."""
    _require_torch()
    from lensflow.train import ensemble

    return ensemble.train_ensemble(config)


def train_modelling(config: ModellingConfig | Path) -> Path:
    """Train, calibrate, export and evaluate the lens-modelling networks; the manifest."""
    _require_torch()
    from lensflow.train import modelling

    return modelling.train_modelling(config)
