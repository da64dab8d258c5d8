"""Optional tables of an ensemble run: [randomise], [mining], [selection] ([combination]: config).

Each is off unless given, so a config without them trains as before. Torch-free.

[randomise]: per-batch domain randomisation on top of the rotations and flips, drawn per cutout
and band from the epoch's generator (a resumed epoch draws the same):
- psf_sigma_px = [lo, hi]: a Gaussian blur of sigma U(lo, hi) pixels per band. Real coadds
  differ from the profile's PSF by +-15 % in FWHM per band (DESIGN) and more between surveys:
  at the lsst 0.2''/px and FWHM 0.70-0.85'', sigma 0.6 px widens the FWHM by ~10-15 %, 1.0 px
  by ~25-40 % (added in quadrature: FWHM' = sqrt(FWHM^2 + (2.355 sigma 0.2'')^2)).
- noise_fraction = [lo, hi]: Gaussian noise of sigma U(lo, hi) x the profile's sky sigma per
  band added. 0.4 is about 0.1 mag shallower in the 5-sigma depth (sqrt(1 + 0.4^2) = 1.08),
  1.0 about 0.4 mag: depth varies by that much across a wide survey's footprint.
- depth_mag = a: every band of a cutout multiplied by 10^(-0.4 U(-a, a)), as a zero-point
  error or a shallower coadd's flux scale would; colours kept. 0.3 mag spans the calibration
  offsets between surveys' photometry and the models' normalisation.
- probability: the fraction of cutouts randomised (the rest as simulated, so the nominal
  survey stays in the training distribution).

[mining]: after a member's first fit, `rounds` rounds each simulate a pool of `pool`
non-lenses (the training set's mix and population, seed `seed + round`), score it with the
member, add the `keep` highest scoring to the member's training set and train `epochs_per_round`
more epochs from its weights (lr x lr_scale; max_seconds per round).

[selection]: of the members trained (the candidates), keep the `size` that a greedy forward
selection finds best on the combination set's TPR10 of their fitted combination.

[combination]: the combination (logistic regression on member logits) and isotonic
calibration fitted at training time on `set` (a natural-mix cutout set), written into the
manifest, as `lensflow train calibrate` does.
"""

from __future__ import annotations

from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _range(values: tuple[float, float], what: str) -> None:
    lo, hi = values
    if not 0.0 <= lo <= hi:
        raise ValueError(f"{what} needs 0 <= lo <= hi, got [{lo}, {hi}]")


class RandomiseConfig(_Frozen):
    """Domain randomisation of PSF, noise and flux scale (module docstring); off by default."""

    psf_sigma_px: tuple[float, float] = (0.0, 0.0)
    noise_fraction: tuple[float, float] = (0.0, 0.0)
    depth_mag: float = Field(default=0.0, ge=0.0, le=2.0)
    probability: float = Field(default=1.0, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _ranges(self) -> Self:
        _range(self.psf_sigma_px, "psf_sigma_px")
        _range(self.noise_fraction, "noise_fraction")
        if self.psf_sigma_px[1] > 4.0:
            raise ValueError(f"psf_sigma_px above 4 px blurs a 64 px cutout away: {self}")
        return self

    @property
    def active(self) -> bool:
        """Whether any randomisation is asked for."""
        return self.probability > 0.0 and (
            self.psf_sigma_px[1] > 0.0 or self.noise_fraction[1] > 0.0 or self.depth_mag > 0.0
        )


class MiningConfig(_Frozen):
    """Hard-negative mining rounds after each member's first fit (module docstring)."""

    rounds: int = Field(default=1, gt=0)
    pool: int = Field(default=10_000, gt=0)
    keep: int = Field(default=1_000, gt=0)
    epochs_per_round: int = Field(default=2, gt=0)
    seed: int = 9001
    lr_scale: float = Field(default=0.5, gt=0.0, le=1.0)
    max_seconds: float | None = Field(default=None, gt=0.0)

    @model_validator(mode="after")
    def _keep_fits(self) -> Self:
        if self.keep > self.pool:
            raise ValueError(f"keep ({self.keep}) exceeds pool ({self.pool})")
        return self

    def seeds(self) -> list[int]:
        """The pool seed of each round, 1..rounds."""
        return [self.seed + r for r in range(1, self.rounds + 1)]


class SelectionConfig(_Frozen):
    """How many of the trained members (the candidates) the output keeps."""

    size: int = Field(gt=0)
