"""The optional tables of a training config: off by default, ranges and seeds checked."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from lensflow.train.config import (
    CombinationConfig,
    CutoutSet,
    EvaluationSet,
    MemberConfig,
    TrainConfig,
)
from lensflow.train.options import MiningConfig, RandomiseConfig, SelectionConfig

CONFIGS = Path(__file__).parents[2] / "configs" / "train"
MEMBERS = (
    MemberConfig(name="a", architecture="resnet"),
    MemberConfig(name="b", architecture="mobilenet"),
)


def test_a_config_without_the_tables_has_them_off() -> None:
    config = TrainConfig.from_toml(CONFIGS / "ensemble-smoke.toml")
    assert not config.randomise.active
    assert (config.mining, config.selection, config.combination) == (None, None, None)


def test_randomise_ranges_are_checked() -> None:
    assert RandomiseConfig(depth_mag=0.2).active
    assert not RandomiseConfig(depth_mag=0.2, probability=0.0).active
    with pytest.raises(ValidationError, match="lo <= hi"):
        RandomiseConfig(psf_sigma_px=(1.0, 0.5))
    with pytest.raises(ValidationError, match="blurs"):
        RandomiseConfig(psf_sigma_px=(0.0, 5.0))


def test_mining_keeps_at_most_its_pool_and_seeds_each_round() -> None:
    assert MiningConfig(rounds=3, seed=50).seeds() == [51, 52, 53]
    with pytest.raises(ValidationError, match="exceeds pool"):
        MiningConfig(pool=10, keep=11)


def test_selection_needs_a_combination_set_and_enough_members() -> None:
    natural = CombinationConfig(set=CutoutSet(mix="natural", seed=77))
    TrainConfig(members=MEMBERS, selection=SelectionConfig(size=1), combination=natural)
    with pytest.raises(ValidationError, match="add one"):
        TrainConfig(members=MEMBERS, selection=SelectionConfig(size=1))
    with pytest.raises(ValidationError, match="exceeds the 2 members"):
        TrainConfig(members=MEMBERS, selection=SelectionConfig(size=3), combination=natural)


def test_pools_and_the_combination_set_never_take_a_held_out_seed() -> None:
    test = CutoutSet(seed=5)
    with pytest.raises(ValidationError, match="seed 5, like a held-out set"):
        TrainConfig(members=MEMBERS, test_set=test, mining=MiningConfig(seed=4))
    shifted = EvaluationSet(name="shifted", seed=8, seeing_factor=1.3)
    with pytest.raises(ValidationError, match="seed 8, like a held-out set"):
        TrainConfig(
            members=MEMBERS,
            test_set=test,
            evaluation_sets=(shifted,),
            combination=CombinationConfig(set=CutoutSet(seed=8, mix="natural")),
        )
    with pytest.raises(ValidationError, match="training set's seed"):
        TrainConfig(members=MEMBERS, mining=MiningConfig(seed=0))  # training seed 1


@pytest.mark.parametrize("name", ["smoke", "cpu", "gpu"])
def test_the_wide_configs_use_every_table(name: str) -> None:
    config = TrainConfig.from_toml(CONFIGS / f"ensemble-wide-{name}.toml")
    assert config.training_set.population == "wide"
    assert config.randomise.active
    assert config.mining is not None
    assert config.selection is not None
    assert config.selection.size < len(config.members)
    assert config.combination is not None
    assert config.combination.set.mix == "natural"
    assert config.combination.set.population == "wide"
    independent = [s for s in config.evaluation_sets if s.simulator == "independent"]
    assert len(independent) == 1
    assert config.work.is_absolute()
