"""Scan state on disk: markers, the fingerprint that refuses a changed scan, the manifest."""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
from distributed import Client

from lensflow.catalog import open_catalog
from lensflow.config import ScanConfig
from lensflow.cutouts import open_store
from lensflow.errors import OutputError, ScanStateError
from lensflow.layout import leaf_path
from lensflow.registry import load_manifest
from lensflow.scan import run_scan
from lensflow.scan.state import (
    CONFIG_FILE,
    FINGERPRINT_FILE,
    MANIFEST_FILE,
    Marker,
    describe_changes,
    fingerprint_parts,
    funnel_totals,
    load_scan_config,
    marker_path,
    prepare_scan_dir,
    read_fingerprint,
    read_marker,
    read_markers,
    write_manifest,
    write_marker,
)
from lensflow.simulate.mock_sky import MockSky
from lensflow.sky import HealpixPixel, pixel_key
from lensflow.testing import leaf_inodes, sky_config

pytestmark = pytest.mark.bad_input


def _config(tmp_path: Path, **cuts: str) -> ScanConfig:
    """A scan config naming files under tmp_path (state functions never open them)."""
    columns = {"id": "objID", "ra": "ra", "dec": "dec"} | {f"mag_{b}": b for b in "griz"}
    return ScanConfig.from_dict(
        {
            "catalog": {"path": "catalog", "columns": columns},
            "cuts": cuts,
            "cutouts": {"path": "cutouts.zarr"},
            "output": {"path": "scan"},
        },
        base=tmp_path,
    )


def _marker(pixel: str, status: str = "done", **fields: object) -> Marker:
    return Marker(pixel=pixel, status=status, fingerprint="f" * 64, **fields)  # type: ignore[arg-type]


def test_changed_config_is_refused_with_the_difference(
    scanned: Path, mock_sky: MockSky, dask_client: Client
) -> None:
    config = sky_config(mock_sky, scanned, cuts={"expression": "rKronMag < 21"})
    with pytest.raises(
        ScanStateError, match=r"cuts\.expression: was .*rKronMag < 22\.5.*now 'rKronMag < 21'"
    ):
        run_scan(config, client=dask_client)


def test_a_corrupt_marker_reruns_only_its_pixel(
    scanned: Path, mock_sky: MockSky, dask_client: Client
) -> None:
    victim = mock_sky.pixels[2]
    marker_path(scanned, victim).write_text('{"pixel": "3/1", "status": ')
    before = leaf_inodes(scanned, mock_sky.pixels)
    outcome = run_scan(sky_config(mock_sky, scanned), client=dask_client)
    assert outcome.ran == 1 and outcome.skipped == len(mock_sky.pixels) - 1
    after = leaf_inodes(scanned, mock_sky.pixels)
    changed = {k for k in before if before[k] != after[k]}
    assert changed == {pixel_key(victim)}
    assert {m.pixel: m.status for m in read_markers(scanned)}[pixel_key(victim)] == "done"


def test_markers_round_trip_and_sort_by_order_then_pixel(tmp_path: Path) -> None:
    written = [
        _marker(
            "10/4000",
            rows_read=50,
            rows_after_cuts=20,
            rows_after_photometry=5,
            candidates=1,
            rejected={"missing_cutout": 2},
            seconds={"select": 0.5, "classify": 1.25},
            attempts=2,
            output="dataset/Norder=10/Dir=0/Npix=4000.parquet",
            sha256="a" * 64,
            worker="tcp://127.0.0.1:4567",
        ),
        _marker("9/100", "failed", error="pixel 9/100: disk full", error_kind="io"),
        _marker("9/3"),
    ]
    for marker in written:
        write_marker(tmp_path, marker)
    assert read_marker(tmp_path, HealpixPixel(10, 4000)) == written[0]
    assert read_marker(tmp_path, HealpixPixel(9, 100)) == written[1]
    assert read_marker(tmp_path, HealpixPixel(9, 4)) is None
    assert [m.pixel for m in read_markers(tmp_path)] == ["9/3", "9/100", "10/4000"]
    assert marker_path(tmp_path, HealpixPixel(9, 3)) == (
        tmp_path / "markers" / "Norder=9" / "Npix=3.json"
    )


@pytest.mark.parametrize(
    "text", ['{"pixel": "3/1", "status": ', '{"pixel": "3/1", "colour": "red"}', "\udcff"]
)
def test_a_corrupt_marker_counts_as_absent(tmp_path: Path, text: str) -> None:
    write_marker(tmp_path, _marker("3/2"))
    path = marker_path(tmp_path, HealpixPixel(3, 1))
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    assert read_marker(tmp_path, HealpixPixel(3, 1)) is None
    assert [m.pixel for m in read_markers(tmp_path)] == ["3/2"]


def test_a_scan_folder_is_claimed_once_and_refuses_a_changed_fingerprint(tmp_path: Path) -> None:
    config = _config(tmp_path, expression="r < 22")
    old_models, new_models = {"m": "1" * 64}, {"m": "2" * 64}
    parts = {"cuts": "r < 22", "models": old_models, "catalog_files": "c" * 64}
    root = tmp_path / "scan"
    prepare_scan_dir(root, config, parts)
    assert load_scan_config(root) == config
    record = read_fingerprint(root)
    assert record is not None and record["parts"] == parts
    prepare_scan_dir(root, _config(tmp_path, expression="r < 21"), dict(parts))  # same parts
    assert load_scan_config(root) == config, "a resume keeps the first config"
    write_marker(root, _marker("3/1", "failed"))  # a partition has run: the config is fixed
    changed = {**parts, "cuts": "r < 21", "models": new_models}
    with pytest.raises(ScanStateError) as caught:
        prepare_scan_dir(root, config, changed)
    message = str(caught.value)
    assert str(root) in message
    assert "cuts.expression: was 'r < 22', now 'r < 21'" in message
    assert "model 'm' changed (its sha256)" in message
    assert "1" * 64 not in message and "catalog_files" not in message
    assert read_fingerprint(root) == record


def test_a_folder_where_nothing_ran_accepts_a_changed_config(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "scan"
    prepare_scan_dir(root, _config(tmp_path, expression="r < 22"), {"cuts": "r < 22"})
    fixed = _config(tmp_path, expression="r < 21")
    with caplog.at_level("WARNING", logger="lensflow.scan.state"):
        prepare_scan_dir(root, fixed, {"cuts": "r < 21"})
    assert "no partition has run yet" in caplog.text
    assert load_scan_config(root) == fixed
    record = read_fingerprint(root)
    assert record is not None and record["parts"] == {"cuts": "r < 21"}


def test_an_older_scan_folder_is_refused_clearly(tmp_path: Path) -> None:
    root = tmp_path / "scan"
    root.mkdir()
    old = {"fingerprint": "9" * 64, "parts": {"cuts": "r < 22", "catalog_files": "9" * 64}}
    (root / FINGERPRINT_FILE).write_text(json.dumps(old))
    write_marker(root, _marker("3/1"))
    with pytest.raises(ScanStateError, match=r"earlier lensflow.*new --output folder"):
        prepare_scan_dir(root, _config(tmp_path, expression="r < 22"), {"cuts": "r < 22"})
    assert read_fingerprint(root) == old, "status and export still read it"


def test_a_folder_that_cannot_be_made_is_refused_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    root = tmp_path / "a-file" / "scan"
    with pytest.raises(OutputError, match=r"cannot write the scan folder .*writable folder"):
        prepare_scan_dir(root, _config(tmp_path, expression="r < 22"), {"cuts": "r < 22"})


def test_a_corrupt_fingerprint_is_refused_by_name(tmp_path: Path) -> None:
    (tmp_path / FINGERPRINT_FILE).write_text('{"fingerprint": ')
    with pytest.raises(ScanStateError, match=rf"{FINGERPRINT_FILE}: corrupt fingerprint"):
        read_fingerprint(tmp_path)
    (tmp_path / FINGERPRINT_FILE).write_text('["not", "a", "record"]')
    with pytest.raises(ScanStateError, match="not a fingerprint record"):
        read_fingerprint(tmp_path)
    assert read_fingerprint(tmp_path / "new") is None


def test_a_folder_without_a_config_is_not_a_scan(tmp_path: Path) -> None:
    with pytest.raises(ScanStateError, match=rf"not a scan folder \(no {CONFIG_FILE}\)"):
        load_scan_config(tmp_path)


def test_the_manifest_sums_the_markers(tmp_path: Path) -> None:
    markers = [
        _marker(
            "2/1",
            rows_read=100,
            rows_after_cuts=40,
            rows_after_photometry=9,
            candidates=2,
            rejected={"missing_cutout": 3, "bad_coordinates": 1},
        ),
        _marker(
            "2/2",
            rows_read=60,
            rows_after_cuts=10,
            rows_after_photometry=4,
            candidates=0,
            rejected={"missing_cutout": 1},
        ),
        _marker("2/3", "failed", error="boom", error_kind="bad_input"),
    ]
    expected = {
        "partitions": 3,
        "done": 2,
        "failed": 1,
        "rows_read": 160,
        "rows_after_cuts": 50,
        "rows_after_photometry": 13,
        "candidates": 2,
        "rejected": {"missing_cutout": 4, "bad_coordinates": 1},
    }
    assert funnel_totals(markers) == expected
    written = write_manifest(tmp_path, markers)
    assert json.loads((tmp_path / MANIFEST_FILE).read_text()) == written
    assert written["totals"] == expected
    assert written["partitions"] == [asdict(m) for m in markers]


def test_the_fingerprint_covers_results_not_how_the_scan_runs(
    mock_sky: MockSky, tmp_path: Path
) -> None:
    catalog_dir = Path(shutil.copytree(mock_sky.catalog, tmp_path / "catalog"))
    config = sky_config(mock_sky, tmp_path / "scan")
    manifest = load_manifest(config.models.manifest)
    store = open_store(config.cutouts.path)

    def parts(config: ScanConfig) -> dict[str, Any]:
        return fingerprint_parts(
            config,
            catalog=open_catalog(catalog_dir),
            manifest=manifest,
            store=store,
            photometry_threshold=0.1,
            ensemble_threshold=0.5,
        )

    base = parts(config)
    assert base["cuts"] == config.cuts.expression
    assert base["catalog_partitions"] == len(mock_sky.pixels)
    assert set(base["models"]) == {
        manifest.photometry.name,
        *(m.name for m in manifest.ensemble.members),
    }
    elsewhere = config.model_copy(
        update={
            "cluster": config.cluster.model_copy(update={"n_workers": 7, "max_in_flight": 3}),
            "output": config.output.model_copy(update={"path": tmp_path / "other"}),
        }
    )
    assert parts(elsewhere) == base
    cut = sky_config(mock_sky, tmp_path / "scan", cuts={"expression": "rKronMag < 20"})
    assert {k for k, v in parts(cut).items() if base[k] != v} == {"cuts"}
    assert base["catalog_files"] == sorted(
        str(leaf_path(Path(), p)).removeprefix("dataset/") for p in mock_sky.pixels
    ), "files are named; their contents are digested in the record beside the parts"
    with leaf_path(catalog_dir, mock_sky.pixels[0]).open("ab") as f:
        f.write(b"\0")
    assert parts(config) == base


def test_turning_the_modelling_networks_on_or_off_is_a_named_change() -> None:
    old = {"cuts": "true"}
    new = {**old, "modelling_models": {"modelling_0": "a" * 64}, "modelling_min_score": 0.5}
    lines = describe_changes(old, new)
    assert "  the lens-modelling networks added" in lines
    assert "  modelling.min_score: was None, now 0.5" in lines
    assert "  the lens-modelling networks removed" in describe_changes(new, old)
    changed = {**new, "modelling_models": {"modelling_0": "b" * 64}}
    assert describe_changes(new, changed) == ["  the lens-modelling networks changed"]
