"""The training loop: deterministic resume from checkpoints, refused checkpoints, time budgets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lensflow.errors import TrainingError
from lensflow.surveys import survey_profile
from lensflow.train.loop import FitSettings, fit
from lensflow.train.models import build_cnn
from tests.train.helpers import noise_cutouts

LSST = survey_profile("lsst")


def _run(folder: Path, images: np.ndarray, is_lens: np.ndarray, *, tag: str) -> None:
    """Two epochs of the attention member on 24 cutouts, validated on the rest."""
    model = build_cnn("attention", LSST)
    settings = FitSettings(
        epochs=2, patience=5, batch_size=8, lr=1e-3, weight_decay=1e-4, seed=3, augment=True
    )
    fit(
        model,
        (images[:24], is_lens[:24]),
        (images[24:], is_lens[24:]),
        settings=settings,
        device=torch.device("cpu"),
        checkpoints=folder,
        tag=tag,
    )


def _fit(folder: Path, images: np.ndarray, is_lens: np.ndarray) -> dict[str, Any]:
    torch.manual_seed(0)
    _run(folder, images, is_lens, tag="t")
    state = torch.load(folder / "epoch-002.pt", weights_only=True)
    assert state["stopped"]
    return dict(state["model"])


def test_a_resumed_run_ends_with_the_weights_of_an_uninterrupted_one(tmp_path: Path) -> None:
    images, is_lens = noise_cutouts(32, seed=0)
    straight = _fit(tmp_path / "straight", images, is_lens)
    interrupted = tmp_path / "interrupted"
    _fit(interrupted, images, is_lens)
    (interrupted / "epoch-002.pt").unlink()  # as if stopped after the first epoch
    resumed = _fit(interrupted, images, is_lens)
    assert straight.keys() == resumed.keys()
    for name in straight:
        torch.testing.assert_close(resumed[name], straight[name], rtol=0, atol=0)
    first = torch.load(interrupted / "epoch-001.pt", weights_only=True)["model"]
    assert any(not torch.equal(first[k], straight[k]) for k in straight)


def test_a_checkpoint_of_another_config_is_refused(tmp_path: Path) -> None:
    images, is_lens = noise_cutouts(32, seed=0)
    _fit(tmp_path, images, is_lens)
    with pytest.raises(TrainingError, match="checkpoint of another config"):
        _run(tmp_path, images, is_lens, tag="other")


def test_a_time_budget_sets_the_epochs_and_a_run_past_it_resumes(tmp_path: Path) -> None:
    images, is_lens = noise_cutouts(32, seed=0)
    settings = FitSettings(
        epochs=3, patience=5, batch_size=8, lr=1e-3, weight_decay=1e-4, seed=3, augment=True
    )
    train, val = (images[:24], is_lens[:24]), (images[24:], is_lens[24:])
    cpu = torch.device("cpu")

    def run(folder: Path, max_seconds: float | None) -> Any:
        model = build_cnn("attention", LSST)
        return fit(
            model,
            train,
            val,
            settings=settings,
            device=cpu,
            checkpoints=folder,
            tag="t",
            max_seconds=max_seconds,
        )

    budget = run(tmp_path / "budget", 1e-6)  # one epoch fits: the schedule ends after it
    assert (budget.epochs_run, budget.stopped_by) == (1, "budget")
    state = torch.load(tmp_path / "budget" / "epoch-001.pt", weights_only=True)
    assert state["stopped"] and state["schedule"]["T_max"] == 1
    assert budget.images_per_second > 0

    folder = tmp_path / "late"
    run(folder, None)
    for epoch in (2, 3):
        (folder / f"epoch-00{epoch}.pt").unlink()  # as if stopped after the first epoch
    late = run(folder, 1e-6)  # the second epoch passes the time: stopped, resumable
    assert (late.resumed_at, late.epochs_run, late.stopped_by) == (1, 2, "time")
    assert not torch.load(folder / "epoch-002.pt", weights_only=True)["stopped"]
    rest = run(folder, None)
    assert (rest.resumed_at, rest.epochs_run, rest.stopped_by) == (2, 3, "epochs")
    assert [h["epoch"] for h in rest.history] == [1.0, 2.0, 3.0]
