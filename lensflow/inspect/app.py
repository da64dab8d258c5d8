"""The inspection web app (Flask): a grid of ranked candidates, a zoomed view, keyboard grades.

Routes: `/` the page; `/api/candidates` the selected candidates (ids as strings: int64 does not
survive a JavaScript number); `/api/grades?grader=NAME` that grader's grades and everyone's
consensus; `/image/ID/rgb.png` and `/image/ID/band/BAND.png` the composite and one band;
`POST /api/grade` {id, grade, grader} and `POST /api/undo` {grader};
`/api/occlusion/ID` and `/image/ID/occlusion.png` the candidate's occlusion map (why the
ensemble said lens; see `occlusion`), computed on first request and kept; `/api/lens_model/ID`
its lens-model parameters with their errors and the critical curve of that SIE + shear model in
the cutout's display pixels (see `critical`), empty where the scan did not model it. Ids in URLs are integers
(Flask's converter) and must be among the selected candidates; bands must be the store's; no
request names a file. The server binds 127.0.0.1 only, answers only Host 127.0.0.1 or localhost
(a page elsewhere cannot rebind a name to it), and takes grades only as JSON, which a page of
another origin cannot send without a CORS preflight this app never grants.
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass
from typing import Any

from flask import Flask, Response, abort, jsonify, render_template, request
from werkzeug.serving import BaseWSGIServer, make_server

from lensflow.errors import LensflowError
from lensflow.inspect.consensus import Consensus, consensus
from lensflow.inspect.critical import critical_curve
from lensflow.inspect.grades import GRADES, LETTERS, GradeBook, check_grader
from lensflow.inspect.images import band_image, png_bytes, rgb_image
from lensflow.inspect.occlusion import (
    HEAT_FLOOR,
    OcclusionMap,
    Occlusions,
    heat_overlay,
    scan_occlusions,
)
from lensflow.inspect.ranked import ScanCandidates
from lensflow.modelling import ERR_SUFFIX

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
"""The only address the app listens on."""
INT64 = 2**63
SHOWN_SCORES = ("ensemble_score", "p_lens", "photometry_score")
"""Scores the page shows first, in this order, where the table has them."""
NOT_EXTRA = {"id", "ra", "dec", *SHOWN_SCORES}


def create_app(
    candidates: ScanCandidates,
    book: GradeBook,
    *,
    grader: str | None = None,
    occlusions: Occlusions | None = None,
) -> Flask:
    """The Flask app over a scan's selected candidates and a grades database.

    grader: a name the page starts with (else it asks once and keeps the answer); occlusions:
    the maps' maker (default: the scan's own ensemble, loaded on the first map asked for).
    """
    app = Flask(__name__)
    app.config["TRUSTED_HOSTS"] = [HOST, "localhost"]
    app.json.sort_keys = False  # type: ignore[attr-defined]
    preset = check_grader(grader) if grader else None
    explainer: list[Occlusions] = [occlusions] if occlusions is not None else []
    explainer_lock = threading.Lock()
    curves: dict[int, list[list[list[float]]] | None] = {}
    curves_lock = threading.Lock()
    rows_by_id: dict[int, dict[str, Any]] = {}

    def row_of(candidate_id: int) -> dict[str, Any]:
        with curves_lock:
            if not rows_by_id:
                rows_by_id.update((int(row["id"]), row) for row in candidates.rows())
        return rows_by_id[selected(candidate_id)]

    def curve_of(candidate_id: int) -> list[list[list[float]]] | None:
        with curves_lock:
            if candidate_id in curves:
                return curves[candidate_id]
        found = critical_curve(
            row_of(candidate_id),
            size=candidates.store.cutout_size,
            pixel_scale_arcsec=candidates.store.pixel_scale_arcsec,
        )
        lines = None if found is None else found.as_lists()
        with curves_lock:
            curves[candidate_id] = lines
        return lines

    def occlusion_of(candidate_id: int) -> OcclusionMap:
        with explainer_lock:
            if not explainer:
                explainer.append(scan_occlusions(candidates))
        return explainer[0](selected(candidate_id))

    def selected(candidate_id: int) -> int:
        if not -INT64 <= candidate_id < INT64 or candidate_id not in candidates:
            abort(404, description=f"candidate {candidate_id} is not among those inspected")
        return candidate_id

    def body() -> dict[str, Any]:
        if not request.is_json:
            abort(415, description="send JSON (Content-Type: application/json)")
        data = request.get_json(silent=True)
        if not isinstance(data, dict):
            abort(400, description="send a JSON object")
        return data

    def grader_of(data: dict[str, Any]) -> str:
        try:
            return check_grader(str(data.get("grader", "")))
        except LensflowError as exc:
            abort(400, description=str(exc))

    @app.errorhandler(LensflowError)
    def lensflow_error(exc: LensflowError) -> tuple[Response, int]:
        return jsonify(error=str(exc)), 400

    @app.get("/")
    def page() -> str:
        return render_template(
            "inspect.html",
            scan=str(candidates.scan_dir),
            count=len(candidates),
            min_score=candidates.min_score,
            grader=preset or "",
            bands=list(candidates.store.bands),
            grades=list(GRADES),
        )

    @app.get("/api/candidates")
    def candidate_list() -> Response:
        rows = [
            _row_json(row, candidates.members, lens_model=candidates.lens_model)
            for row in candidates.rows()
        ]
        return jsonify(
            candidates=rows,
            bands=list(candidates.store.bands),
            rgb=list(candidates.rgb),
            members=list(candidates.members),
        )

    @app.get("/api/grades")
    def grades() -> Response:
        name = grader_of({"grader": request.args.get("grader", "")})
        mine = {str(cid): LETTERS[g.grade] for (cid, _), g in book.latest(grader=name).items()}
        agreed = consensus(book.history())
        return jsonify(
            grader=name,
            grades=mine,
            consensus={str(k): _consensus_json(v) for k, v in agreed.items() if k in candidates},
        )

    @app.post("/api/grade")
    def grade() -> Response:
        data = body()
        name = grader_of(data)
        try:
            candidate_id = selected(int(str(data.get("id", ""))))
        except ValueError:
            abort(400, description="id must be a candidate id (an integer)")
        stored = book.add(candidate_id, grader=name, grade=str(data.get("grade", "")))
        return jsonify(
            id=str(candidate_id),
            grade=stored.letter,
            consensus=_consensus_json(_consensus_of(book, candidate_id)),
        )

    @app.post("/api/undo")
    def undo() -> Response:
        name = grader_of(body())
        removed = book.undo(grader=name)
        if removed is None:
            return jsonify(id=None)
        candidate_id = removed.candidate_id
        now = book.latest(grader=name).get((candidate_id, name))
        return jsonify(
            id=str(candidate_id),
            removed=removed.letter,
            grade=now.letter if now else None,
            consensus=_consensus_json(_consensus_of(book, candidate_id)),
        )

    @app.get("/image/<int(signed=True):candidate_id>/rgb.png")
    def rgb_png(candidate_id: int) -> Response:
        cutout = candidates.cutout(selected(candidate_id))
        pixels = rgb_image(cutout, bands=candidates.store.bands, rgb=candidates.rgb)
        return _png(png_bytes(pixels))

    @app.get("/image/<int(signed=True):candidate_id>/band/<band>.png")
    def band_png(candidate_id: int, band: str) -> Response:
        if band not in candidates.store.bands:
            abort(404, description=f"no band {band!r}; the cutouts hold {candidates.store.bands}")
        cutout = candidates.cutout(selected(candidate_id))
        return _png(png_bytes(band_image(cutout, bands=candidates.store.bands, band=band)))

    @app.get("/api/occlusion/<int(signed=True):candidate_id>")
    def occlusion_json(candidate_id: int) -> Response:
        found = occlusion_of(candidate_id)
        row, column = found.peak
        return jsonify(
            id=str(candidate_id),
            score=found.score,
            max_drop=found.max_drop,
            peak={"x": column, "y": row},
            patch=found.patch,
            stride=found.stride,
        )

    @app.get("/api/lens_model/<int(signed=True):candidate_id>")
    def lens_model_json(candidate_id: int) -> Response:
        row = row_of(candidate_id)
        return jsonify(
            id=str(candidate_id),
            parameters=_lens_model_json(row, candidates.lens_model),
            critical_curve=curve_of(candidate_id),
            size=candidates.store.cutout_size,
            pixel_scale_arcsec=candidates.store.pixel_scale_arcsec,
        )

    @app.get("/image/<int(signed=True):candidate_id>/occlusion.png")
    def occlusion_png(candidate_id: int) -> Response:
        found = occlusion_of(candidate_id)
        composite = rgb_image(
            candidates.cutout(candidate_id), bands=candidates.store.bands, rgb=candidates.rgb
        )
        return _png(png_bytes(heat_overlay(composite, found.drops, floor=HEAT_FLOOR)))

    return app


def _png(data: bytes) -> Response:
    response = Response(data, mimetype="image/png")
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response


def _number(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number


def _lens_model_json(row: dict[str, Any], names: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """{name: {value, err}} of the lens-model parameters a row has (none where not modelled)."""
    values = {name: _number(row.get(name)) for name in names}
    return {
        name: {"value": value, "err": _number(row.get(name + ERR_SUFFIX))}
        for name, value in values.items()
        if value is not None
    }


def _row_json(
    row: dict[str, Any], members: tuple[str, ...], *, lens_model: tuple[str, ...] = ()
) -> dict[str, Any]:
    """A candidate for the page: id as a string, scores, the lens model's parameters with their
    errors (`lens_model`: the parameter names) and other numeric columns by name."""
    scores = {name: _number(row[name]) for name in SHOWN_SCORES if name in row}
    member_scores = {m: _number(row.get(f"score_{m}")) for m in members}
    modelled = {*lens_model, *(name + ERR_SUFFIX for name in lens_model)}
    extra = {
        key: _number(value)
        for key, value in row.items()
        if key not in NOT_EXTRA
        and key not in modelled
        and not key.startswith("score_")
        and isinstance(value, int | float)
        and not isinstance(value, bool)
    }
    return {
        "id": str(row["id"]),
        "ra": _number(row.get("ra")),
        "dec": _number(row.get("dec")),
        "scores": scores,
        "members": member_scores,
        "lens_model": _lens_model_json(row, lens_model),
        "extra": extra,
    }


def _consensus_of(book: GradeBook, candidate_id: int) -> Consensus | None:
    history = [g for g in book.history() if g.candidate_id == candidate_id]
    return consensus(history).get(candidate_id)


def _consensus_json(agreed: Consensus | None) -> dict[str, Any] | None:
    if agreed is None:
        return None
    return {
        "mean": agreed.mean,
        "graders": agreed.graders,
        "spread": agreed.spread,
        "grade_class": agreed.grade_class,
        "grades": {name: LETTERS[value] for name, value in agreed.grades.items()},
    }


@dataclass
class Server:
    """A running app: its URL, and `stop` to shut it down (serving in a thread)."""

    url: str
    server: BaseWSGIServer
    thread: threading.Thread | None = None

    def stop(self) -> None:
        if self.thread is not None:
            self.server.shutdown()
            self.thread.join(timeout=10)
        self.server.server_close()


def make_app_server(app: Flask, *, port: int = 0) -> Server:
    """A server for the app on 127.0.0.1:port (0: any free port), not yet serving."""
    server = make_server(HOST, port, app, threaded=True)
    return Server(url=f"http://{HOST}:{server.server_port}/", server=server)


def serve_in_thread(app: Flask, *, port: int = 0) -> Server:
    """Serve the app on 127.0.0.1 from a daemon thread; `stop()` ends it."""
    running = make_app_server(app, port=port)
    thread = threading.Thread(target=running.server.serve_forever, daemon=True)
    thread.start()
    running.thread = thread
    return running
