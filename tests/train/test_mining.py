"""Hard-negative mining: the top of a pool by score, read back by id, the pool of a round."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lensflow.cutouts import list_groups, read_group
from lensflow.train.config import CutoutSet, MemberConfig, TrainConfig
from lensflow.train.mining import pool_set, read_rows, top_scoring
from lensflow.train.models import ProbabilityModel
from lensflow.train.options import MiningConfig
from tests.train.helpers import write_labelled_store


class MeanPixel(ProbabilityModel):
    """A stand-in member whose logit is a cutout's mean pixel (nJy) over 10."""

    def __init__(self) -> None:
        super().__init__()
        self.unused = torch.nn.Parameter(torch.zeros(()))

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(1, 2, 3)) / 10.0 + 0.0 * self.unused


def test_the_top_of_a_pool_is_its_highest_scores_across_groups(tmp_path: Path) -> None:
    store = write_labelled_store(tmp_path, 40, seed=5)
    assert len(list_groups(store)) == 2
    ids = np.concatenate([read_group(store, g)[0] for g in list_groups(store)])
    images = np.concatenate([read_group(store, g)[1] for g in list_groups(store)])
    means = images.mean(axis=(1, 2, 3), dtype=np.float64)
    top = top_scoring(MeanPixel(), store, keep=7, device=torch.device("cpu"), batch=8)
    expected = ids[np.argsort(-means)[:7]]
    np.testing.assert_array_equal(top.ids, expected)
    assert np.all(np.diff(top.scores) <= 0)
    assert (top.scored, top.above_half) == (40, int((means >= 0).sum()))
    np.testing.assert_allclose(top.scores, 1 / (1 + np.exp(-means[np.argsort(-means)[:7]] / 10)))
    np.testing.assert_array_equal(top.images, read_rows(store, top.ids))


def test_rows_are_read_back_in_the_order_asked(tmp_path: Path) -> None:
    store = write_labelled_store(tmp_path, 12, seed=6)
    ids, images = read_group(store, "b")
    wanted = ids[[3, 0, 5]]
    np.testing.assert_array_equal(read_rows(store, wanted), images[[3, 0, 5]])
    with pytest.raises(ValueError, match="not found"):
        read_rows(store, np.array([7], dtype=np.int64))


def test_a_rounds_pool_is_non_lenses_in_the_training_mix_and_population() -> None:
    config = TrainConfig(
        members=(MemberConfig(name="m", architecture="resnet"),),
        training_set=CutoutSet(mix="natural", population="wide", seed=3),
        mining=MiningConfig(pool=50, keep=5, seed=70),
    )
    pool = pool_set(config, 71)
    assert (pool.n_lenses, pool.n_non_lenses, pool.seed) == (0, 50, 71)
    assert pool.spec() == {
        "n_lenses": 0,
        "n_non_lenses": 50,
        "seed": 71,
        "mix": "natural",
        "population": "wide",
    }
