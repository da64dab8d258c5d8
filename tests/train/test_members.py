"""A member's settings and checkpoint tag: unchanged for configs without the new tables."""

from __future__ import annotations

import dataclasses

import pytest

torch = pytest.importorskip("torch")

from lensflow.io import canonical_hash
from lensflow.surveys import survey_profile
from lensflow.train.config import MemberConfig, TrainConfig
from lensflow.train.members import augmentation_text, checkpoint_tag, member_settings
from lensflow.train.options import RandomiseConfig

LSST = survey_profile("lsst")
MEMBER = MemberConfig(name="m", architecture="mobilenet", seed=4)


def test_without_randomisation_the_tag_is_that_of_a_run_before_it_existed() -> None:
    config = TrainConfig(members=(MEMBER,))
    settings = member_settings(config, MEMBER, LSST)
    assert settings.randomise is None
    fields = dataclasses.asdict(settings)
    del fields["randomise"]
    legacy = {
        "member": MEMBER.model_dump(),
        "settings": fields,
        "data": config.training_set.spec(),
        "survey": "lsst",
        "validation_fraction": config.validation_fraction,
    }
    assert checkpoint_tag(config, MEMBER, settings, LSST) == canonical_hash(legacy)
    assert augmentation_text(config) == "random 90-degree rotations and flips"


def test_randomisation_takes_the_surveys_sky_sigmas_and_changes_the_tag() -> None:
    plain = TrainConfig(members=(MEMBER,))
    config = TrainConfig(members=(MEMBER,), randomise=RandomiseConfig(noise_fraction=(0, 0.5)))
    settings = member_settings(config, MEMBER, LSST)
    assert settings.randomise is not None
    assert settings.randomise.sky_sigma_njy == tuple(LSST.sky_sigma_njy[b] for b in LSST.bands)
    before = checkpoint_tag(plain, MEMBER, member_settings(plain, MEMBER, LSST), LSST)
    assert checkpoint_tag(config, MEMBER, settings, LSST) != before
    assert "added noise U[0.0, 0.5] x sky sigma" in augmentation_text(config)
