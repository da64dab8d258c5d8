"""Occlusion maps: the geometry of the patches, the cache, the app's routes, and that the map of
the shipped ensemble points at a simulated lens's arc and stays flat on empty sky."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from lensflow.errors import ConfigError, ModelMismatchError
from lensflow.inspect.app import create_app
from lensflow.inspect.grades import GradeBook
from lensflow.inspect.occlusion import (
    PATCH,
    Occlusions,
    ensemble_scorer,
    heat_overlay,
    occluded_copies,
    occlusion_map,
    patch_starts,
    scan_manifest,
)
from lensflow.inspect.ranked import ScanCandidates
from lensflow.registry import ModelManifest
from lensflow.simulate import draw_scene, render_scene
from lensflow.simulate.scene import scene_signal
from lensflow.surveys import survey_profile

SURVEY = survey_profile()
SIZE = SURVEY.cutout_size
BANDS = len(SURVEY.bands)


def square_scorer(rows: slice, columns: slice):  # type: ignore[no-untyped-def]
    """A stand-in network: a lens score that rests on the light inside one square."""

    def score(images: np.ndarray) -> np.ndarray:
        light = images[:, :, rows, columns].sum(axis=(1, 2, 3))
        return (1.0 - np.exp(-light / 1000.0)).astype(np.float32)

    return score


def test_patch_positions_cover_the_cutout_to_its_edge() -> None:
    assert patch_starts(64, patch=8, stride=4) == list(range(0, 57, 4))
    assert patch_starts(10, patch=8, stride=4) == [0, 2]  # the last patch ends at the edge
    assert patch_starts(8, patch=8, stride=4) == [0]
    with pytest.raises(ConfigError, match="patch 9 px"):
        patch_starts(8, patch=9, stride=4)
    with pytest.raises(ConfigError, match="stride 0"):
        patch_starts(64, patch=8, stride=0)


def test_each_copy_hides_one_patch_in_every_band() -> None:
    cutout = np.arange(BANDS * 16 * 16, dtype=np.float32).reshape(BANDS, 16, 16) + 1.0
    copies, positions = occluded_copies(cutout, patch=8, stride=4)
    assert copies.shape == (9, BANDS, 16, 16) and positions.tolist()[4] == [4, 4]
    for copy, (r, c) in zip(copies, positions, strict=True):
        hidden = np.zeros((16, 16), dtype=bool)
        hidden[r : r + 8, c : c + 8] = True
        assert np.all(copy[:, hidden] == 0.0)
        assert np.array_equal(copy[:, ~hidden], cutout[:, ~hidden])


def test_the_map_lies_where_the_score_rests() -> None:
    cutout = np.full((BANDS, SIZE, SIZE), 50.0, dtype=np.float32)
    found = occlusion_map(cutout, scorer=square_scorer(slice(40, 48), slice(8, 16)))
    row, column = found.peak
    assert 40 <= row < 48 and 8 <= column < 16
    assert found.drops[:28, 28:].max() == 0.0  # no patch over there touches the square
    assert found.max_drop > 0.3 and found.score == pytest.approx(1 - np.exp(-9.6), rel=1e-5)


def test_maps_are_computed_once_per_candidate() -> None:
    calls: list[int] = []
    inner = square_scorer(slice(0, 8), slice(0, 8))

    def counting(images: np.ndarray) -> np.ndarray:
        calls.append(len(images))
        return inner(images)

    maps = Occlusions(lambda _: np.ones((BANDS, SIZE, SIZE), np.float32), counting)
    first = maps(7)
    assert maps(7) is first and len(calls) == 1 and calls[0] == 1 + 15 * 15
    maps(8)
    assert len(calls) == 2


def test_the_heat_map_is_drawn_y_up_and_stays_dim_when_flat() -> None:
    composite = np.full((SIZE, SIZE, 3), 128, dtype=np.uint8)
    drops = np.zeros((SIZE, SIZE), dtype=np.float32)
    drops[:8, :8] = 0.5  # the cutout's first rows: the bottom of the picture
    hot = heat_overlay(composite, drops, floor=0.05)
    assert hot.shape == (SIZE, SIZE, 3) and hot.dtype == np.uint8
    assert hot[-4, 4].sum() > 2 * hot[4, 4].sum()
    flat = heat_overlay(composite, np.full_like(drops, 0.001), floor=0.05)
    assert flat.max() < hot.max() and np.ptp(flat.reshape(-1, 3), axis=0).max() == 0


def one_sided_lenses(n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Simulated lenses whose arc lies on one side (its light's centroid >= 6 px off the lens
    centre): each cutout and its arc's noiseless light (summed over bands)."""
    centre = (SIZE - 1) / 2
    yy, xx = np.mgrid[:SIZE, :SIZE] - centre
    found = []
    for k in range(200):
        scene = draw_scene("lens", seed=(5, k), survey=SURVEY)
        arcs = scene_signal([c for c in scene.components if c.lensed], [], scene, SURVEY).sum(0)
        weight = arcs / arcs.sum()
        if np.hypot((weight * xx).sum(), (weight * yy).sum()) >= 6.0:
            found.append((render_scene(scene, survey=SURVEY), arcs))
        if len(found) == n:
            return found
    raise AssertionError(f"fewer than {n} one-sided lenses in 200 draws")


def test_the_ensembles_map_points_at_the_arc(shipped_manifest: ModelManifest) -> None:
    scorer = ensemble_scorer(shipped_manifest)
    lenses = one_sided_lenses(6)
    near_arc, arc_over_rest = [], []
    for cutout, arcs in lenses:
        found = occlusion_map(cutout, scorer=scorer)
        assert found.score >= 0.5  # the ensemble calls it a lens, else there is nothing to explain
        arc = arcs > 0.2 * arcs.max()
        distance = ndimage.distance_transform_edt(~arc)
        row, column = found.peak
        near_arc.append(distance[row, column] <= PATCH / 2)  # a patch there covers arc light
        arc_over_rest.append(found.drops[arc].mean() / max(found.drops[~arc].mean(), 1e-6))
    assert sum(near_arc) >= 4, near_arc  # at least two in three; the lens light matters too
    assert min(arc_over_rest) > 2.0, arc_over_rest


def test_the_map_of_empty_sky_is_flat(shipped_manifest: ModelManifest) -> None:
    rng = np.random.default_rng(3)
    sigma = np.array([SURVEY.sky_sigma_njy[b] for b in SURVEY.bands])[:, None, None]
    sky = (rng.normal(size=(BANDS, SIZE, SIZE)) * sigma).astype(np.float32)
    found = occlusion_map(sky, scorer=ensemble_scorer(shipped_manifest))
    assert found.score < 0.1
    assert np.abs(found.drops).max() < 0.01 and abs(found.max_drop) < 0.01


def test_a_changed_model_is_refused(shipped_manifest: ModelManifest) -> None:
    hashes = {m.name: m.sha256 for m in shipped_manifest.ensemble.members}
    assert scan_manifest(None, hashes).ensemble.members == shipped_manifest.ensemble.members
    first = shipped_manifest.ensemble.members[0].name
    with pytest.raises(ModelMismatchError, match=first):
        scan_manifest(None, {**hashes, first: "0" * 64})


def test_the_app_serves_a_candidates_map(candidates: ScanCandidates, tmp_path: Path) -> None:
    book = GradeBook(f"sqlite:///{tmp_path / 'grades.sqlite'}")
    client = create_app(candidates, book).test_client()  # the scan's own ensemble
    best = candidates.ids[0]
    answer = client.get(f"/api/occlusion/{best}", headers={"Host": "127.0.0.1"})
    assert answer.status_code == 200, answer.get_data(as_text=True)
    data = answer.get_json()
    assert data["id"] == str(best) and (data["patch"], data["stride"]) == (8, 4)
    assert 0.0 <= data["max_drop"] <= data["score"] <= 1.0
    assert 0 <= data["peak"]["x"] < SIZE and 0 <= data["peak"]["y"] < SIZE
    png = client.get(f"/image/{best}/occlusion.png", headers={"Host": "127.0.0.1"})
    assert png.status_code == 200 and png.mimetype == "image/png"
    assert Image.open(io.BytesIO(png.data)).size == (SIZE, SIZE)
    missing = client.get("/api/occlusion/12345", headers={"Host": "127.0.0.1"})
    assert missing.status_code == 404
    book.close()
