"""Why a network said lens: occlusion maps of a cutout under the CNN ensemble.

A square patch (`patch` px on a side, all bands) slides over the cutout in steps of `stride`
px and is replaced by 0 nJy, the sky level of a sky-subtracted cutout; every occluded copy is
scored by the ensemble (ONNX, batched, the scan's own sessions), and each position's drop is
the score of the cutout as it is minus the score of that copy. A pixel's drop is the mean over
the positions whose patch covers it, so the map (H, W) says which light the score rests on:
large where hiding the pixels makes the cutout less lens-like, about zero where nothing there
matters. Drops are in units of the ensemble score (0-1).

`Occlusions` computes a candidate's map once (on demand, in the inspection app) and keeps it.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from lensflow.config import Precision
from lensflow.ensemble import ENSEMBLE, score_cutouts
from lensflow.errors import ConfigError, ModelMismatchError
from lensflow.registry import ModelManifest, default_manifest_path, load_manifest

if TYPE_CHECKING:
    from lensflow.inspect.ranked import ScanCandidates

logger = logging.getLogger(__name__)

PATCH = 8
"""Side of the occluding patch, px (1.6 arcsec at the LSST-like 0.2"/px: an arc's width)."""
STRIDE = 4
"""Step between patch positions, px."""
FILL = 0.0
"""The value an occluded pixel takes, nJy: the sky level of a sky-subtracted cutout."""
CACHED_MAPS = 256
"""Maps kept per app (one is a few tens of kB)."""

Scorer = Callable[[npt.NDArray[np.float32]], npt.NDArray[np.float32]]
"""Ensemble scores float32 (N,) of cutouts float32 (N, bands, H, W)."""


@dataclass(frozen=True)
class OcclusionMap:
    """A cutout's occlusion map.

    score: the ensemble score of the cutout as it is; drops float32 (H, W), the mean score drop
    of the patches covering each pixel; positions int (P, 2), each patch's (row, column) of its lower-left corner; position_drops
    float32 (P,), each patch's score drop. Row 0 is the cutout's first row (y up when shown).
    """

    score: float
    drops: npt.NDArray[np.float32]
    positions: npt.NDArray[np.int64]
    position_drops: npt.NDArray[np.float32]
    patch: int
    stride: int

    @property
    def peak(self) -> tuple[int, int]:
        """(row, column) of the pixel whose occlusion lowers the score most."""
        row, column = np.unravel_index(int(np.argmax(self.drops)), self.drops.shape)
        return int(row), int(column)

    @property
    def max_drop(self) -> float:
        """The largest drop of any one patch, in ensemble score."""
        return float(self.position_drops.max()) if self.position_drops.size else 0.0


def patch_starts(size: int, *, patch: int, stride: int) -> list[int]:
    """First pixels of the patch positions along an axis of `size` px, the last at the edge."""
    if not 1 <= patch <= size or stride < 1:
        raise ConfigError(
            f"occlusion patch {patch} px, stride {stride} px: give 1 <= patch <= the cutout's "
            f"{size} px and a positive stride"
        )
    starts = list(range(0, size - patch + 1, stride))
    if starts[-1] != size - patch:
        starts.append(size - patch)
    return starts


def occluded_copies(
    cutout: npt.NDArray[np.floating],
    *,
    patch: int = PATCH,
    stride: int = STRIDE,
    fill: float = FILL,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """Every occluded copy (P, bands, H, W) of a cutout (bands, H, W) and the patches' corners."""
    image = np.asarray(cutout, dtype=np.float32)
    _, height, width = image.shape
    rows = patch_starts(height, patch=patch, stride=stride)
    columns = patch_starts(width, patch=patch, stride=stride)
    positions = np.array([(r, c) for r in rows for c in columns], dtype=np.int64)
    copies = np.repeat(image[None], len(positions), axis=0)
    for k, (r, c) in enumerate(positions):
        copies[k, :, r : r + patch, c : c + patch] = fill
    return copies, positions


def occlusion_map(
    cutout: npt.NDArray[np.floating],
    *,
    scorer: Scorer,
    patch: int = PATCH,
    stride: int = STRIDE,
    fill: float = FILL,
) -> OcclusionMap:
    """The occlusion map of one cutout (bands, H, W) in nJy under `scorer` (see ensemble_scorer).

    The cutout and its P occluded copies are scored in one batch; NaN pixels count as sky.
    """
    image = np.nan_to_num(np.asarray(cutout, dtype=np.float32), nan=fill)
    copies, positions = occluded_copies(image, patch=patch, stride=stride, fill=fill)
    scores = np.asarray(scorer(np.concatenate([image[None], copies])), dtype=np.float64)
    base, occluded = scores[0], scores[1:]
    drop = base - occluded
    total = np.zeros(image.shape[1:])
    covered = np.zeros(image.shape[1:])
    for (r, c), d in zip(positions, drop, strict=True):
        total[r : r + patch, c : c + patch] += d
        covered[r : r + patch, c : c + patch] += 1.0
    return OcclusionMap(
        score=float(base),
        drops=(total / covered).astype(np.float32),
        positions=positions,
        position_drops=drop.astype(np.float32),
        patch=patch,
        stride=stride,
    )


def ensemble_scorer(manifest: ModelManifest) -> Scorer:
    """Score cutouts with the manifest's ensemble (its members' sessions, batched)."""

    def score(images: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        return np.asarray(score_cutouts(images, manifest=manifest)[ENSEMBLE], dtype=np.float32)

    return score


def scan_manifest(
    manifest_path: Path | None, model_hashes: dict[str, str], *, precision: Precision = "float32"
) -> ModelManifest:
    """The models a scan ran with (its config's manifest at its precision, else the shipped
    one), checked against the hashes its fingerprint recorded, so a map explains the scores."""
    manifest = load_manifest(manifest_path, precision=precision)
    now = {m.name: m.sha256 for m in manifest.ensemble.members}
    changed = sorted(name for name, sha in now.items() if model_hashes.get(name) != sha)
    if changed:
        raise ModelMismatchError(
            f"{manifest_path or default_manifest_path()}: members {changed} are not the models "
            "the scan ran with; point [models] manifest at those, or rerun the scan"
        )
    return manifest


class Occlusions:
    """Occlusion maps of candidates, computed on first request and kept (least recent dropped).

    cutout_of: a candidate id -> its cutout (bands, H, W); scorer: see ensemble_scorer.
    """

    def __init__(
        self,
        cutout_of: Callable[[int], npt.NDArray[np.floating]],
        scorer: Scorer,
        *,
        patch: int = PATCH,
        stride: int = STRIDE,
    ) -> None:
        self._cutout_of = cutout_of
        self._scorer = scorer
        self.patch, self.stride = patch, stride
        self._maps: OrderedDict[int, OcclusionMap] = OrderedDict()
        self._lock = threading.Lock()  # one map at a time: the sessions use every core

    def __call__(self, candidate_id: int) -> OcclusionMap:
        with self._lock:
            if candidate_id in self._maps:
                self._maps.move_to_end(candidate_id)
                return self._maps[candidate_id]
            found = occlusion_map(
                self._cutout_of(candidate_id),
                scorer=self._scorer,
                patch=self.patch,
                stride=self.stride,
            )
            logger.info("occlusion map of %d: largest drop %.3f", candidate_id, found.max_drop)
            self._maps[candidate_id] = found
            while len(self._maps) > CACHED_MAPS:
                self._maps.popitem(last=False)
            return found


def heat_overlay(
    composite: npt.NDArray[np.uint8], drops: npt.NDArray[np.floating], *, floor: float
) -> npt.NDArray[np.uint8]:
    """The composite (H, W, 3), +y up, under a heat map of positive drops (H, W), row 0 first.

    Colour and opacity grow with the drop over max(its largest value, floor), so a map with
    nothing in it stays dark rather than showing its noise at full scale.
    """
    from matplotlib import colormaps

    values = np.clip(np.asarray(drops, dtype=np.float64), 0.0, None)[::-1]
    scale = max(float(values.max()) if values.size else 0.0, floor)
    level = values / scale if scale > 0 else np.zeros_like(values)
    heat = colormaps["inferno"](level)[..., :3]
    alpha = 0.25 + 0.6 * level[..., None]
    mixed = (1.0 - alpha) * (composite.astype(np.float64) / 255.0) * 0.6 + alpha * heat
    return np.asarray(np.round(np.clip(mixed, 0.0, 1.0) * 255.0), dtype=np.uint8)


HEAT_FLOOR = 0.05
"""The smallest drop (ensemble score) a heat map is scaled to: weaker maps stay dim."""


def scan_occlusions(
    candidates: ScanCandidates, *, patch: int = PATCH, stride: int = STRIDE
) -> Occlusions:
    """Occlusion maps of a scan's candidates under the ensemble the scan ran with."""
    from lensflow.scan.state import load_scan_config, read_fingerprint

    config = load_scan_config(candidates.scan_dir)
    record = read_fingerprint(candidates.scan_dir) or {}
    hashes = dict(record.get("parts", {}).get("models", {}))
    manifest = scan_manifest(config.models.manifest, hashes, precision=config.ensemble.precision)
    return Occlusions(candidates.cutout, ensemble_scorer(manifest), patch=patch, stride=stride)
