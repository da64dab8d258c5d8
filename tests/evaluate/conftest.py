"""Fixtures of the evaluation tests: a labelled two-group store and ONNX members of known scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lensflow.evaluate import EvaluationReport, evaluate_store
from tests.evaluate.helpers import write_models, write_store


@pytest.fixture
def labelled_store(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A 2-group store: 4 lenses (mean +2), 3 spirals (mean +1), 5 rings (mean -3); manifest."""
    manifest = write_models(tmp_path / "models", {"a": 1.0, "b": 0.5})
    classes = ["lens"] * 4 + ["spiral"] * 3 + ["ring"] * 5
    level = {"lens": 2.0, "spiral": 1.0, "ring": -3.0}
    store, labels = write_store(tmp_path, np.array([level[c] for c in classes]), classes)
    return store, labels, manifest


@pytest.fixture
def evaluated(labelled_store: tuple[Path, Path, Path]) -> EvaluationReport:
    """The labelled store scored by its two members in batches of 3."""
    store, labels, manifest = labelled_store
    return evaluate_store(store, labels, manifest=manifest, batch=3)
