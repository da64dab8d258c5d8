"""The command line as a whole: help, one-line errors and exit statuses, quiet logs."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from lensflow.cli import app
from lensflow.errors import MissingInputError, ScanStateError
from lensflow.simulate.mock_sky import MockSky

runner = CliRunner()


def test_help_explains_every_command() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("scan", "rerun", "plan", "status", "export", "demo", "simulate", "train"):
        assert command in result.output


def test_an_error_is_one_line_on_stderr_with_its_exit_status(tmp_path: Path) -> None:
    not_a_scan = tmp_path / ("a-folder-with-a-long-name-" * 4) / "[scan]"
    not_a_scan.mkdir(parents=True)
    result = runner.invoke(app, ["status", str(not_a_scan)])
    assert result.exit_code == ScanStateError.exit_code == 65
    assert result.stdout == ""
    assert result.stderr.startswith("error: ")
    assert result.stderr.count("\n") == 1, "one line, never wrapped"
    assert f"{not_a_scan}: not a scan folder" in result.stderr


@pytest.mark.parametrize("command", [["status"], ["export"], ["gallery"]])
def test_a_scan_folder_that_is_not_there_is_missing_input(
    tmp_path: Path, command: list[str]
) -> None:
    absent = tmp_path / "scna"  # a typo
    extra = {"export": [str(tmp_path / "c.parquet")], "gallery": [str(tmp_path / "g.html")]}
    result = runner.invoke(app, [*command, str(absent), *extra.get(command[0], [])])
    assert result.exit_code == MissingInputError.exit_code == 66, result.output
    assert f"{absent}: no such folder" in result.stderr and "Traceback" not in result.output


@pytest.mark.parametrize(
    ("args", "status"),
    [
        (["plan", "{missing}"], 64),  # a missing argument file: a usage error
        (["scan", "{bad}"], 78),
        (["rerun", "{missing}", "--pixels", "0/1"], 66),  # no such scan folder: missing input
        (["export", "{missing}", "{missing}.parquet"], 66),
        (["evaluate", "{missing}", "{missing}.parquet"], 65),
        (["train", "photometry", "--config", "{bad}"], 78),
    ],
)
def test_every_command_reports_bad_input_the_same_way(
    tmp_path: Path, args: list[str], status: int
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("misspelt_key = 1\n")
    paths = {"missing": str(tmp_path / "missing"), "bad": str(bad)}
    result = runner.invoke(app, [a.format(**paths) for a in args])
    assert result.exit_code == status, result.output
    assert isinstance(result.exception, SystemExit), "a LensflowError never escapes"
    assert result.stdout == ""
    assert result.stderr.startswith("error: ")
    assert str(tmp_path) in result.stderr or "misspelt_key" in result.stderr


def test_a_command_prints_no_cluster_log_lines(mock_sky: MockSky) -> None:
    import subprocess
    import sys

    command = [str(Path(sys.executable).with_name("lensflow")), "plan", str(mock_sky.config)]
    result = subprocess.run(
        [*command, "--exact", "--workers", "1"],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "total" in result.stdout
    assert " INFO " not in result.stderr, result.stderr


def test_remote_plain_tcp_scheduler_needs_insecure(mock_sky: MockSky, tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "scan",
            str(mock_sky.config),
            "--output",
            str(tmp_path / "s"),
            "--scheduler",
            "tcp://192.0.2.1:8786",
        ],
    )
    assert result.exit_code == 78
    assert "--insecure" in result.output


@pytest.mark.parametrize(
    "args",
    [["scan", "--bogus"], ["export"], ["status", "a", "b"], ["nonsense"], []],
)
def test_usage_errors_exit_64_not_the_partial_scans_2(args: list[str]) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 64, result.output
    if args:
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
        assert "--help" in result.stderr and "Traceback" not in result.output


def test_a_config_folder_is_a_usage_error(tmp_path: Path) -> None:
    for command in ("plan", "scan"):
        result = runner.invoke(app, [command, str(tmp_path)])
        assert result.exit_code == 64, result.output
        assert "is a directory" in result.stderr and result.stderr.count("\n") == 1


def test_an_unreachable_tls_scheduler_is_one_line(mock_sky: MockSky, tmp_path: Path) -> None:
    """The README's own `--scheduler tls://scheduler:8786`: no host of that name here."""
    result = runner.invoke(
        app,
        [
            "scan",
            str(mock_sky.config),
            "--output",
            str(tmp_path / "s"),
            "--scheduler",
            "tls://scheduler:8786",
        ],
    )
    assert result.exit_code in (69, 78), result.output
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert "tls://scheduler:8786" in result.stderr
    assert isinstance(result.exception, SystemExit)
