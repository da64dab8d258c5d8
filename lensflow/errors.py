"""One family of errors: every failure lensflow reports is a LensflowError saying what to fix."""

from __future__ import annotations


class LensflowError(Exception):
    """Base of every error lensflow raises on purpose."""


class ConfigError(LensflowError):
    """The scan or training config is invalid (unknown key, bad value, missing file)."""


class CutExpressionError(LensflowError):
    """A cut expression does not parse, names an unknown column or mixes types."""


class PixelError(LensflowError):
    """A HEALPix pixel name or number is invalid or not in the catalog."""


class CatalogError(LensflowError):
    """A catalog or one of its partition files is malformed (layout, metadata, rows)."""


class MissingColumnError(CatalogError):
    """A column the config maps or the cut names is not in a partition file."""


class SchemaError(CatalogError):
    """A partition file's schema differs from the catalog's (drifted, mistyped, duplicated)."""


class CutoutError(LensflowError):
    """A cutout store or group is missing, misshapen or does not match the models."""


class ModelMismatchError(LensflowError):
    """A model's file, hash or input spec does not match the manifest or the cutouts."""


class OutputError(LensflowError):
    """An output folder cannot be made or written (missing parent, read-only, full disk)."""


class ScanStateError(LensflowError):
    """A scan directory cannot be resumed (changed fingerprint, corrupt marker or manifest)."""


class SimulationError(LensflowError):
    """A simulation was asked for something it cannot make (unknown class, bad parameters)."""


class EvaluationError(LensflowError):
    """Scores and labels cannot be evaluated (one class absent, ids unmatched, bad labels)."""


class TrainingError(LensflowError):
    """Training cannot run or resume (torch absent, checkpoint from another config)."""


class ImageError(CutoutError):
    """A coadd image tile or its settings cannot be used (unreadable file, missing HDU, no WCS).

    `reason` is a short code (e.g. "missing_hdu", "no_celestial_wcs", "truncated") that build
    reports count tiles and rows by.
    """

    def __init__(self, message: str, *, reason: str = "invalid") -> None:
        super().__init__(message)
        self.reason = reason

    def __reduce__(self) -> tuple[type[ImageError], tuple[str], dict[str, str]]:
        return (type(self), (str(self),), {"reason": self.reason})
