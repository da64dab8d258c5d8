"""The two stages of a partition's chain: select (cuts, photometry gate) and classify (ensemble)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from distributed import Client

from lensflow.catalog import PartitionRead, open_catalog, read_partition
from lensflow.cutouts import partition_group, read_cutouts
from lensflow.errors import CatalogError
from lensflow.layout import healpix_29, leaf_path
from lensflow.modelling import ModellingModels, load_modelling, model_lenses, modelling_columns
from lensflow.photometry import score_photometry
from lensflow.scan import stages
from lensflow.scan.run import build_context
from lensflow.scan.stages import (
    Failure,
    ScanContext,
    Survivors,
    classify_partition,
    feature_values,
    select_partition,
)
from lensflow.scan.state import read_marker, read_markers
from lensflow.simulate.mock_sky import MockSky
from lensflow.sky import HealpixPixel, pixel_key
from lensflow.testing import sky_config


@pytest.fixture(scope="module")
def context(mock_sky: MockSky, tmp_path_factory: pytest.TempPathFactory) -> ScanContext:
    """A scan context of the mock sky writing to a folder of this module's own."""
    return build_context(
        sky_config(mock_sky, tmp_path_factory.mktemp("stages") / "scan"), lock=False
    )


def _survivors(result: Survivors | Failure) -> Survivors:
    assert isinstance(result, Survivors), result
    return result


def test_candidate_files_hold_every_scored_row(scanned: Path, mock_sky: MockSky) -> None:
    catalog = open_catalog(mock_sky.catalog)
    for marker in read_markers(scanned):
        table = pq.read_table(scanned / marker.output)
        assert table.num_rows == marker.rows_after_photometry - marker.rejected.get(
            "missing_cutout", 0
        )
        assert {"id", "ra", "dec", "_healpix_29", "photometry_score", "ensemble_score"} <= set(
            table.column_names
        )
        members = [c for c in table.column_names if c.startswith("score_")]
        assert len(members) >= 2
        if table.num_rows:
            mean = np.mean([table[c].to_numpy() for c in members], axis=0)
            assert np.allclose(mean, table["ensemble_score"].to_numpy(), atol=1e-6)
            assert set(table["config_fingerprint"].to_pylist()) == {marker.fingerprint}
    assert catalog.pixels == tuple(sorted(mock_sky.pixels))


def test_candidate_ids_are_catalog_ids(scanned: Path, mock_sky: MockSky) -> None:
    truth = pq.read_table(mock_sky.truth, columns=["id"])["id"].to_numpy()
    ids = np.concatenate(
        [
            pq.read_table(leaf_path(scanned, p), columns=["id"])["id"].to_numpy()
            for p in mock_sky.pixels
        ]
    )
    assert ids.dtype == np.int64 and np.isin(ids, truth).all()


@pytest.mark.faults
def test_the_same_pixel_classified_twice_at_once_writes_one_file(
    scanned: Path, mock_sky: MockSky, dask_client: Client
) -> None:
    """A task may run twice (a retry after a worker death): both runs write the same bytes."""
    context = build_context(sky_config(mock_sky, scanned), lock=False)
    pixel = mock_sky.pixels[0]
    expected = {m.pixel: m.sha256 for m in read_markers(scanned)}[pixel_key(pixel)]
    survivors = select_partition(pixel, context=context)
    [shared] = dask_client.scatter([context], broadcast=True, hash=False)
    twins = [
        dask_client.submit(classify_partition, survivors, context=shared, pure=False)
        for _ in range(2)
    ]
    results = dask_client.gather(twins)
    assert all(r.ok for r in results)
    assert {r.marker.sha256 for r in results} == {expected}
    assert not list(scanned.rglob("*.tmp"))


def test_select_keeps_the_rows_that_pass_the_cut_and_the_gate(context: ScanContext) -> None:
    columns = context.config.catalog.columns
    mags = [getattr(columns, feature) for feature in context.manifest.photometry.features]
    kept_somewhere = False
    for pixel in context.catalog.pixels:
        survivors = _survivors(select_partition(pixel, context=context))
        read = read_partition(
            pixel, catalog=context.catalog, columns=[columns.id, *mags], cut=context.cut
        )
        assert (survivors.rows_read, survivors.rows_after_cuts) == (
            read.rows_read,
            read.table.num_rows,
        )
        features = np.stack(
            [read.table[m].to_numpy(zero_copy_only=False) for m in mags], axis=1
        ).astype(np.float32)
        scores = score_photometry(features, manifest=context.manifest)
        passed = scores >= context.photometry_threshold
        ids = read.table[columns.id].to_numpy()
        assert survivors.table["id"].to_pylist() == ids[passed].tolist()
        np.testing.assert_allclose(
            survivors.table["photometry_score"].to_numpy(), scores[passed], rtol=1e-6
        )
        assert survivors.table.schema.field("id").type == pa.int64()
        kept_somewhere |= bool(passed.any())
    assert kept_somewhere, "the gate should keep some rows of the mock sky"


def _read_of(table: pa.Table, *, rows_read: int) -> Callable[..., PartitionRead]:
    """A stand-in for read_partition that returns `table` for any pixel."""

    def read(pixel: HealpixPixel, **_: object) -> PartitionRead:
        return PartitionRead(pixel, table, rows_read)

    return read


@pytest.mark.bad_input
def test_unusable_rows_are_counted_by_reason(
    context: ScanContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """NaN or impossible coordinates, then null or non-finite magnitudes: counted, not scored."""
    nan, inf = float("nan"), float("inf")
    rows = [  # ra, dec, g, z
        (150.0, 2.0, 21.0, 20.0),
        (150.1, 2.1, 21.5, 20.2),
        (nan, 2.0, 21.0, 20.0),
        (150.0, 95.0, 21.0, 20.0),
        (nan, 2.0, None, 20.0),
        (150.0, 2.0, None, 20.0),
        (150.0, 2.0, 21.0, inf),
        (330.0, -2.0, 21.0, 20.0),  # usable, but outside the partition's pixel
    ]
    ids = (1 << 60) + np.arange(len(rows), dtype=np.int64)
    table = pa.table(
        {
            "objID": pa.array(ids, pa.int64()),
            "raStack": [r[0] for r in rows],
            "decStack": [r[1] for r in rows],
            "gKronMag": pa.array([r[2] for r in rows], pa.float64()),
            "rKronMag": [20.5] * len(rows),
            "iKronMag": [20.2] * len(rows),
            "zKronMag": [r[3] for r in rows],
            **{f"{b}PSFMag": [21.3] * len(rows) for b in "griz"},
            **{f"{b}MomentRadius": [0.6] * len(rows) for b in "griz"},
            "_healpix_29": pa.array(np.arange(len(rows)), pa.int64()),
        }
    )
    monkeypatch.setattr(stages, "read_partition", _read_of(table, rows_read=10))
    order = context.catalog.pixels[0].order
    pixel = HealpixPixel(
        order, int(healpix_29(np.array([150.0]), np.array([2.0]))[0]) >> 2 * (29 - order)
    )
    survivors = _survivors(select_partition(pixel, context=context))
    assert (survivors.rows_read, survivors.rows_after_cuts) == (10, len(rows))
    assert survivors.rejected == {"bad_coordinates": 3, "missing_magnitude": 2, "outside_pixel": 1}
    assert set(survivors.table["id"].to_pylist()) <= set(ids[:2].tolist())
    assert np.isfinite(survivors.table["photometry_score"].to_numpy()).all()


def test_feature_columns_become_float32_with_nan_for_nulls() -> None:
    chunked = [
        pa.chunked_array([pa.array([1.5, None], pa.float64()), pa.array([2.25], pa.float64())]),
        pa.chunked_array([pa.array([3, None, 7], pa.int32())]),
        pa.chunked_array([pa.array([True, None, False])]),
        pa.chunked_array([pa.array(["0.5", None, "4"])]),
    ]
    for column in chunked:
        values = feature_values(column)
        expected = pc.fill_null(column.cast(pa.float32()), np.nan).to_numpy()
        assert values.dtype == np.float32
        np.testing.assert_array_equal(values, expected)
    assert np.isnan(feature_values(chunked[1])[1]), "a null integer is NaN, not 0"
    assert feature_values(pa.chunked_array([], pa.float32())).shape == (0,)


@pytest.mark.faults
def test_a_transient_read_error_is_retried(
    context: ScanContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    pixel = context.catalog.pixels[0]
    clean = _survivors(select_partition(pixel, context=context))
    calls: list[HealpixPixel] = []

    def flaky(pixel: HealpixPixel, **kwargs: object) -> PartitionRead:
        calls.append(pixel)
        if len(calls) == 1:
            raise OSError("transient read error")
        return read_partition(pixel, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(stages, "read_partition", flaky)
    retried = _survivors(select_partition(pixel, context=context))
    assert len(calls) == 2 and retried.attempts == 2
    assert retried.table.equals(clean.table)


@pytest.mark.faults
def test_a_lasting_read_error_fails_the_pixel_after_its_retries(
    context: ScanContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[HealpixPixel] = []

    def broken(pixel: HealpixPixel, **_: object) -> PartitionRead:
        calls.append(pixel)
        raise OSError("no such device")

    monkeypatch.setattr(stages, "read_partition", broken)
    pixel = context.catalog.pixels[0]
    result = select_partition(pixel, context=context)
    assert isinstance(result, Failure) and result.kind == "io"
    assert pixel_key(pixel) in result.error and "no such device" in result.error
    assert len(calls) == 1 + context.config.cluster.io_retries


@pytest.mark.bad_input
def test_bad_input_is_not_retried(context: ScanContext, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[HealpixPixel] = []

    def corrupt(pixel: HealpixPixel, **_: object) -> PartitionRead:
        calls.append(pixel)
        raise CatalogError(f"pixel {pixel_key(pixel)}: Npix.parquet is not Parquet")

    monkeypatch.setattr(stages, "read_partition", corrupt)
    result = select_partition(context.catalog.pixels[0], context=context)
    assert isinstance(result, Failure) and result.kind == "bad_input"
    assert "is not Parquet" in result.error
    assert len(calls) == 1


@pytest.mark.faults
def test_a_failure_travels_down_the_chain_to_a_failed_marker(context: ScanContext) -> None:
    pixel = context.catalog.pixels[-1]
    failure = Failure(pixel, f"pixel {pixel_key(pixel)}: disk full", "io", attempts=3)
    result = classify_partition(failure, context=context)
    assert not result.ok and result.pixel == pixel
    marker = result.marker
    assert (marker.status, marker.error_kind, marker.attempts) == ("failed", "io", 3)
    assert marker.error == failure.error and marker.fingerprint == context.fingerprint
    assert marker.output is None
    assert read_marker(context.output, pixel) == marker


def _modelled(table: pa.Table, names: tuple[str, ...]) -> np.ndarray:
    """Rows with every modelling column set; refuses rows with only some of them."""
    present = np.array([table[n].is_valid().to_numpy(zero_copy_only=False) for n in names])
    assert np.all(present == present[0]), "a row has some modelling columns but not all"
    return np.asarray(present[0], dtype=bool)


def test_the_scan_models_the_candidates_above_min_score(scanned: Path) -> None:
    """The shipped manifest has [modelling]: by default the scan models every candidate at or
    above the ensemble threshold (0.5) and leaves the others null."""
    names = modelling_columns(load_modelling())
    tables = [pq.read_table(scanned / m.output) for m in read_markers(scanned)]
    for table in tables:
        assert set(names) <= set(table.column_names)
        assert all(table.schema.field(n).type == pa.float64() for n in names)
    scores = np.concatenate([t["ensemble_score"].to_numpy() for t in tables])
    modelled = np.concatenate([_modelled(t, names) for t in tables])
    assert np.array_equal(modelled, scores >= np.float32(0.5))
    assert modelled.any() and (~modelled).any()
    theta = np.concatenate([t["theta_E"].to_numpy(zero_copy_only=False) for t in tables])
    err = np.concatenate([t["theta_E_err"].to_numpy(zero_copy_only=False) for t in tables])
    assert np.all(theta[modelled] > 0) and np.all(err[modelled] > 0)


def test_min_score_picks_the_rows_modelled_with_the_networks_values(
    context: ScanContext,
) -> None:
    modelling = context.modelling
    assert isinstance(modelling, ModellingModels)
    pixel = max(
        context.catalog.pixels,
        key=lambda p: _survivors(select_partition(p, context=context)).table.num_rows,
    )
    survivors = _survivors(select_partition(pixel, context=context))
    scores = classify_partition(survivors, context=replace(context, modelling=None))
    plain = pq.read_table(context.output / scores.marker.output)
    assert not set(modelling_columns(modelling)) & set(plain.column_names)
    min_score = float(np.median(plain["ensemble_score"].to_numpy()))
    result = classify_partition(survivors, context=replace(context, modelling_min_score=min_score))
    assert result.ok and "modelling" in result.marker.seconds
    table = pq.read_table(context.output / result.marker.output)
    above = table["ensemble_score"].to_numpy() >= np.float32(min_score)
    assert np.array_equal(_modelled(table, modelling_columns(modelling)), above)
    assert above.any() and (~above).any()
    ids = table["id"].to_numpy()[above]
    cutouts = read_cutouts(context.config.cutouts.path, partition_group(pixel), np.sort(ids))
    expected = model_lenses(cutouts.images, modelling=modelling)
    order = np.argsort(ids)
    for name in modelling_columns(modelling):
        got = table[name].to_numpy(zero_copy_only=False)[above][order]
        np.testing.assert_allclose(got, expected[name].to_numpy(), rtol=1e-6)


def test_the_config_sets_min_score_and_may_turn_the_networks_off(
    mock_sky: MockSky, tmp_path: Path
) -> None:
    default = build_context(sky_config(mock_sky, tmp_path / "a"), lock=False)
    assert default.modelling is not None
    assert default.modelling_min_score == default.ensemble_threshold
    shipped = default.stages().modelling
    assert shipped is not None and shipped.metrics == {} and shipped.training == {}
    assert [(m.file, m.sha256) for m in shipped.members] == [
        (m.file, m.sha256) for m in default.modelling.members
    ]
    config = sky_config(mock_sky, tmp_path / "b", modelling={"min_score": 0.25})
    chosen = build_context(config, lock=False)
    assert chosen.stages().modelling_min_score == 0.25
    assert chosen.fingerprint != default.fingerprint
    off = build_context(
        sky_config(mock_sky, tmp_path / "c", modelling={"enabled": False}), lock=False
    )
    assert off.modelling is None and off.stages().modelling is None


def test_survivors_scored_in_blocks_read_ahead_match_one_block(
    context: ScanContext, tmp_path: Path
) -> None:
    everyone = replace(context.stages(), photometry_threshold=0.0)  # every row after the cuts
    pixel = max(
        context.catalog.pixels,
        key=lambda p: _survivors(select_partition(p, context=everyone)).table.num_rows,
    )
    survivors = _survivors(select_partition(pixel, context=everyone))
    assert survivors.table.num_rows > 8, "blocks of 4 x 1 cutouts: several blocks"
    whole = replace(context.stages(), output=tmp_path / "whole", batch_size=4096)
    blocked = replace(context.stages(), output=tmp_path / "blocks", batch_size=1)
    results = [classify_partition(survivors, context=c) for c in (whole, blocked)]
    tables = [
        pq.read_table(c.output / r.marker.output)
        for c, r in zip((whole, blocked), results, strict=True)
    ]
    assert tables[0].num_rows == survivors.table.num_rows - sum(results[0].marker.rejected.values())
    assert tables[0].column_names == tables[1].column_names
    for name in tables[0].column_names:
        a, b = (t[name].to_numpy(zero_copy_only=False) for t in tables)
        if a.dtype.kind == "f":
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, equal_nan=True)
        else:
            assert np.array_equal(a, b), name
    assert results[0].marker.rejected == results[1].marker.rejected


def test_precision_int8_runs_the_members_variants_under_their_own_fingerprint(
    mock_sky: MockSky, context: ScanContext, tmp_path: Path
) -> None:
    config = sky_config(mock_sky, tmp_path / "int8", ensemble={"precision": "int8"})
    chosen = build_context(config, lock=False)
    files = [m.file for m in chosen.manifest.ensemble.members]
    assert files and all(f.endswith(".int8.onnx") for f in files)
    assert chosen.fingerprint != context.fingerprint
    pixel = max(
        context.catalog.pixels,
        key=lambda p: _survivors(select_partition(p, context=context)).table.num_rows,
    )
    survivors = _survivors(select_partition(pixel, context=chosen))
    result = classify_partition(survivors, context=chosen)
    assert result.ok
    versions = pq.read_table(chosen.output / result.marker.output)["model_versions"].to_pylist()
    assert versions, "the pixel with the most survivors has candidates"
    for member in chosen.manifest.ensemble.members:
        assert f"{member.name}@{member.sha256[:12]}" in versions[0]
