"""The web app's routes through Flask's client: candidates, images, grades, and what it refuses."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from flask.testing import FlaskClient
from PIL import Image

from lensflow.inspect.app import HOST, create_app, serve_in_thread
from lensflow.inspect.grades import GradeBook
from lensflow.inspect.ranked import ScanCandidates


@pytest.fixture
def book(tmp_path: Path) -> GradeBook:
    return GradeBook(f"sqlite:///{tmp_path / 'grades.sqlite'}")


@pytest.fixture
def client(candidates: ScanCandidates, book: GradeBook) -> FlaskClient:
    return create_app(candidates, book).test_client()


def test_candidates_come_ranked_with_exact_ids(
    client: FlaskClient, candidates: ScanCandidates
) -> None:
    data = client.get("/api/candidates").get_json()
    assert [c["id"] for c in data["candidates"]] == [str(i) for i in candidates.ids]
    assert data["members"] == list(candidates.members)
    first = data["candidates"][0]
    assert set(first["members"]) == set(candidates.members)
    assert first["scores"]["ensemble_score"] == pytest.approx(
        float(candidates.table["ensemble_score"][0].as_py())
    )


def test_images_are_pngs_of_the_cutout_size(
    client: FlaskClient, candidates: ScanCandidates
) -> None:
    size = candidates.store.cutout_size
    first = candidates.ids[0]
    rgb = client.get(f"/image/{first}/rgb.png")
    assert rgb.status_code == 200 and rgb.mimetype == "image/png"
    assert np.asarray(Image.open(io.BytesIO(rgb.data))).shape == (size, size, 3)
    for band in candidates.store.bands:
        one = client.get(f"/image/{first}/band/{band}.png")
        assert np.asarray(Image.open(io.BytesIO(one.data))).shape == (size, size)


@pytest.mark.parametrize(
    "path",
    [
        "/image/12345/rgb.png",  # an id not inspected
        "/image/abc/rgb.png",  # not an integer
        "/image/1e5/rgb.png",
        "/image/99999999999999999999999/rgb.png",  # past int64
        "/image/{first}/band/x.png",  # not a band of the store
        "/image/{first}/band/..%2F..%2Fscan.toml.png",
        "/static/../scan.toml",
    ],
)
def test_nothing_but_inspected_ids_and_store_bands_is_served(
    client: FlaskClient, candidates: ScanCandidates, path: str
) -> None:
    assert client.get(path.format(first=candidates.ids[0])).status_code == 404


def test_grades_go_through_json_only(
    client: FlaskClient, candidates: ScanCandidates, book: GradeBook
) -> None:
    first = str(candidates.ids[0])
    form = client.post("/api/grade", data={"id": first, "grade": "A", "grader": "ann"})
    assert form.status_code == 415  # a cross-site form post cannot grade
    assert (
        client.post("/api/grade", json={"id": "12345", "grade": "A", "grader": "ann"}).status_code
        == 404
    )
    assert (
        client.post("/api/grade", json={"id": first, "grade": "Z", "grader": "ann"}).status_code
        == 400
    )
    assert (
        client.post("/api/grade", json={"id": first, "grade": "A", "grader": ""}).status_code == 400
    )
    assert book.history() == []
    stored = client.post("/api/grade", json={"id": first, "grade": "A", "grader": "ann"}).get_json()
    assert stored["grade"] == "A" and stored["consensus"]["graders"] == 1
    assert [(g.candidate_id, g.letter) for g in book.history()] == [(candidates.ids[0], "A")]
    mine = client.get("/api/grades?grader=ann").get_json()
    assert mine["grades"] == {first: "A"}
    undone = client.post("/api/undo", json={"grader": "ann"}).get_json()
    assert (undone["id"], undone["removed"], undone["grade"]) == (first, "A", None)
    assert client.post("/api/undo", json={"grader": "ann"}).get_json() == {"id": None}


def test_only_loopback_host_names_are_answered(client: FlaskClient) -> None:
    assert client.get("/", headers={"Host": "127.0.0.1:8000"}).status_code == 200
    assert client.get("/", headers={"Host": "localhost:8000"}).status_code == 200
    assert client.get("/", headers={"Host": "attacker.example:8000"}).status_code == 400


def test_the_server_listens_on_loopback_only(candidates: ScanCandidates, book: GradeBook) -> None:
    server = serve_in_thread(create_app(candidates, book))
    try:
        assert server.server.server_address[0] == HOST
        assert server.url.startswith(f"http://{HOST}:")
    finally:
        server.stop()


def test_candidates_carry_their_lens_model_with_errors(
    client: FlaskClient, candidates: ScanCandidates
) -> None:
    assert candidates.lens_model[:3] == ("theta_E", "e1", "e2")
    rows = client.get("/api/candidates").get_json()["candidates"]
    by_id = {str(r["id"]): r for r in candidates.rows()}
    modelled = [c for c in rows if c["lens_model"]]
    assert modelled and len(modelled) < len(rows), "the scan models only rows above min_score"
    for c in modelled:
        assert set(c["lens_model"]) == set(candidates.lens_model)
        theta = c["lens_model"]["theta_E"]
        assert theta["value"] == pytest.approx(by_id[c["id"]]["theta_E"])
        assert theta["err"] == pytest.approx(by_id[c["id"]]["theta_E_err"]) and theta["err"] > 0
        assert not {"theta_E", "theta_E_err"} & set(c["extra"])
    assert all(c["lens_model"] == {} for c in rows if c["scores"]["ensemble_score"] < 0.5)


def test_the_lens_model_route_gives_the_critical_curve_in_display_pixels(
    client: FlaskClient, candidates: ScanCandidates
) -> None:
    rows = {int(r["id"]): r for r in candidates.rows()}
    modelled = [i for i, r in rows.items() if r.get("theta_E") is not None]
    size = candidates.store.cutout_size
    drawn = 0
    for candidate_id in modelled[:5]:
        data = client.get(f"/api/lens_model/{candidate_id}").get_json()
        assert data["id"] == str(candidate_id) and data["size"] == size
        assert data["parameters"]["theta_E"]["value"] == pytest.approx(
            rows[candidate_id]["theta_E"]
        )
        for line in data["critical_curve"] or []:
            points = np.asarray(line)
            assert points.ndim == 2 and points.shape[1] == 2
            assert np.all((points >= 0) & (points <= size))
            drawn += 1
    assert drawn, "some modelled candidate should have a critical curve inside its cutout"
    unmodelled = next(i for i, r in rows.items() if r.get("theta_E") is None)
    data = client.get(f"/api/lens_model/{unmodelled}").get_json()
    assert data["parameters"] == {} and data["critical_curve"] is None
    assert client.get("/api/lens_model/12345").status_code == 404


def test_the_page_has_the_critical_curve_overlay(client: FlaskClient) -> None:
    page = client.get("/").get_data(as_text=True)
    assert 'id="zoom-curve"' in page and "<svg" in page
    script = client.get("/static/inspect.js").get_data(as_text=True)
    assert "/api/lens_model/" in script and "polyline" in script
