"""An independent check set: labelled cutouts rendered by lenstronomy, with their own population.

lensflow's models are trained on lensflow's own simulator; this package renders lenses and
non-lenses with another code (lenstronomy: EPL + shear deflectors, Sersic, shapelet and
INTERPOL light, lens-equation solutions for quasars) and other population choices (each
documented where it is drawn), so every model version can be reported on a set it has not been
shaped by. It never imports lensflow.simulate.
"""

from lensflow.independent.check_set import CheckSet, check_output, make_check_set, plan_classes
from lensflow.independent.gallery import make_check_gallery
from lensflow.independent.lenses import DETECTABLE, LENS_PARAMS, Detectability
from lensflow.independent.scenes import CLASSES, NON_LENS_CLASSES, make_cutout
from lensflow.independent.seds import check_bands

__all__ = [
    "CLASSES",
    "DETECTABLE",
    "LENS_PARAMS",
    "NON_LENS_CLASSES",
    "CheckSet",
    "Detectability",
    "check_bands",
    "check_output",
    "make_check_gallery",
    "make_check_set",
    "make_cutout",
    "plan_classes",
]
