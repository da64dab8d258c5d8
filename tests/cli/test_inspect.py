"""inspect, gallery and grades export from the command line, on a scan of the mock sky."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from distributed import Client
from typer.testing import CliRunner

from lensflow.cli import app
from lensflow.errors import EXIT_CONFIG, EXIT_DATA
from lensflow.inspect.grades import DEFAULT_DB, GradeBook, database_url
from lensflow.inspect.ranked import ScanCandidates
from lensflow.scan import run_scan
from lensflow.simulate.mock_sky import MockSky
from lensflow.testing import sky_config

runner = CliRunner()


@pytest.fixture(scope="module")
def scan(mock_sky: MockSky, dask_client: Client, tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("cli-inspect") / "scan"
    assert run_scan(sky_config(mock_sky, output), client=dask_client).exit_status == 0
    return output


def post(url: str, payload: dict[str, str]) -> dict[str, object]:
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return dict(json.load(response))


def test_inspect_serves_on_loopback_and_keeps_grades_after_ctrl_c(
    scan: Path, tmp_path: Path
) -> None:
    db = f"sqlite:///{tmp_path / 'grades.sqlite'}"
    command = [sys.executable, "-c", "from lensflow.cli import main; main()", "inspect", str(scan),
               "--top", "3", "--port", "0", "--db", db, "--grader", "ann"]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(2)]
        assert lines[0].startswith("3 candidates of ")
        url = lines[1].split()[2]
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url, timeout=30) as page:
            assert "lensflow inspect" in page.read().decode()
        with urllib.request.urlopen(url + "api/candidates", timeout=30) as listing:
            ids = [c["id"] for c in json.load(listing)["candidates"]]
        assert ids == [str(i) for i in ScanCandidates(scan, top=3, min_score=0.0).ids]
        assert (
            post(url + "api/grade", {"id": ids[0], "grade": "B", "grader": "ann"})["grade"] == "B"
        )
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "grades are kept" in out
    assert [(str(g.candidate_id), g.letter) for g in GradeBook(db).history()] == [(ids[0], "B")]


def test_gallery_writes_one_html_file(scan: Path, tmp_path: Path) -> None:
    out = tmp_path / "share.html"
    result = runner.invoke(app, ["gallery", str(scan), str(out), "--top", "4"])
    assert result.exit_code == 0, result.output
    assert "gallery of 4 candidates" in result.output
    assert out.read_text().count('class="card"') == 4


def test_grades_export_writes_the_table_and_a_zooniverse_set(scan: Path, tmp_path: Path) -> None:
    book = GradeBook(database_url(scan))  # the scan folder's own grades.sqlite
    best = ScanCandidates(scan).ids
    book.add(best[0], grader="ann", grade="A")
    book.add(best[0], grader="bob", grade="A")
    book.add(best[1], grader="bob", grade="0")
    assert (scan / DEFAULT_DB).is_file()
    out, subjects = tmp_path / "graded.parquet", tmp_path / "zoo"
    result = runner.invoke(
        app, ["grades", "export", str(scan), str(out), "--zooniverse", str(subjects), "--top", "5"]
    )
    assert result.exit_code == 0, result.output
    table = pq.read_table(out)
    assert table["id"].to_pylist() == best[:2]
    assert table["grade_mean"].to_pylist() == [3.0, 0.0]
    assert len(list(subjects.glob("*.png"))) == 5
    again = runner.invoke(app, ["grades", "export", str(scan), str(out)])
    assert again.exit_code != 0 and "--overwrite" in again.output


def test_mistakes_are_one_line(scan: Path, tmp_path: Path) -> None:
    nothing = runner.invoke(app, ["grades", "export", str(scan)])
    assert nothing.exit_code == EXIT_CONFIG
    assert "--zooniverse FOLDER" in nothing.output and "Traceback" not in nothing.output
    not_a_scan = runner.invoke(app, ["gallery", str(tmp_path), str(tmp_path / "g.html")])
    assert not_a_scan.exit_code == EXIT_DATA and "not a scan folder" in not_a_scan.output
    bad_db = runner.invoke(
        app, ["grades", "export", str(scan), "--zooniverse", str(tmp_path / "z"), "--db", "nope"]
    )
    assert bad_db.exit_code == EXIT_CONFIG and "not a database URL" in bad_db.output
