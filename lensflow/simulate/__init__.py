"""Lens physics, scenes (lenses and the non-lenses that fool lens finders), training sets."""

from lensflow.simulate.draw import check_survey, draw_scene, simulate_cutouts
from lensflow.simulate.gallery import make_gallery
from lensflow.simulate.photometry import observe_magnitudes
from lensflow.simulate.scene import (
    CLASSES,
    DEFAULT_CRITERIA,
    LENS_PARAMS,
    NATURAL_MIX,
    NON_LENS_CLASSES,
    TRAINING_MIX,
    LensCriteria,
    Scene,
    noiseless_image,
    render_scene,
)
from lensflow.simulate.training_set import TrainingSet, make_training_set
from lensflow.surveys import Survey, survey_profile

__all__ = [
    "CLASSES",
    "DEFAULT_CRITERIA",
    "LENS_PARAMS",
    "NATURAL_MIX",
    "NON_LENS_CLASSES",
    "TRAINING_MIX",
    "LensCriteria",
    "Scene",
    "Survey",
    "TrainingSet",
    "check_survey",
    "draw_scene",
    "make_gallery",
    "make_training_set",
    "noiseless_image",
    "observe_magnitudes",
    "render_scene",
    "simulate_cutouts",
    "survey_profile",
]
