"""Remote inputs: a catalog and image tiles read over HTTP and from S3, as from disk.

Both servers are real and local: python's http.server (with byte ranges, with or without
directory listings) and moto's S3 server, each on 127.0.0.1. S3 credentials come from the
environment, as boto reads them; the config's storage options name only the endpoint.
"""

from __future__ import annotations

import functools
import http.server
import io
import os
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import pytest
from distributed import Client

from lensflow.catalog import CatalogInputs, open_catalog, open_inputs, read_partition
from lensflow.cluster import local_cluster
from lensflow.config import ClusterConfig, ImagesConfig, PlanConfig
from lensflow.cutouts import partition_group, read_cutouts
from lensflow.errors import CatalogError, ImageError
from lensflow.images import build_cutouts, cut_stamps, tile_index
from lensflow.locations import file_size
from lensflow.scan.plan import plan, plan_inputs
from lensflow.simulate.mock_sky import MockSky
from tests.images import Tract, grid_rows, write_tract

moto_server = pytest.importorskip("moto.server")
pytest.importorskip("s3fs")

BUCKET = "sky"


class _Server(http.server.ThreadingHTTPServer):
    listings = True
    requests: list[tuple[str, str, str | None]]
    sent = 0


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Static files with byte ranges (as object stores serve them); listings optional."""

    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def send_head(self) -> Any:
        self.server.requests.append((self.command, self.path, self.headers.get("Range")))
        wanted = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range") or "")
        path = Path(self.translate_path(self.path))
        if wanted is None or not path.is_file():
            return super().send_head()
        data = path.read_bytes()
        start, end = int(wanted[1]), min(int(wanted[2] or len(data) - 1), len(data) - 1)
        self.send_response(206)
        self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        self.send_header("Content-Length", str(end - start + 1))
        self.end_headers()
        return io.BytesIO(data[start : end + 1])

    def list_directory(self, path: str | os.PathLike[str]) -> Any:
        if not self.server.listings:
            self.send_error(404, "no listings here")
            return None
        return super().list_directory(path)

    def copyfile(self, source: Any, outputfile: Any) -> None:
        data = source.read()
        self.server.sent += len(data)
        outputfile.write(data)


def _serve(root: Path, *, listings: bool) -> _Server:
    server = _Server(("127.0.0.1", 0), functools.partial(_Handler, directory=str(root)))
    server.listings, server.requests = listings, []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _url(server: _Server, path: str) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/{path}"


@pytest.fixture(scope="module")
def http_sky(mock_sky: MockSky) -> Iterator[tuple[_Server, _Server]]:
    """The mock sky's folder served over HTTP: with directory listings, and without."""
    listed, bare = _serve(mock_sky.root, listings=True), _serve(mock_sky.root, listings=False)
    yield listed, bare
    for server in (listed, bare):
        server.shutdown()
        server.server_close()


@dataclass(frozen=True)
class S3:
    endpoint: str
    options: dict[str, Any]  # the config's storage options: the endpoint, signed requests
    tract: Tract  # on disk; the same files under s3://sky/tract/


@pytest.fixture(scope="module")
def s3(mock_sky: MockSky, tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3]:
    """moto's S3 on 127.0.0.1 holding the mock sky's catalog and a tract of FITS tiles."""
    tract = write_tract(tmp_path_factory.mktemp("tiles") / "tract", masked=((95, 95, 1),))
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AWS_ACCESS_KEY_ID", "testing")
        env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        env.setenv("AWS_DEFAULT_REGION", "us-east-1")
        server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        fs = fsspec.filesystem("s3", endpoint_url=endpoint, anon=False, skip_instance_cache=True)
        fs.mkdir(BUCKET)
        fs.put(str(mock_sky.catalog), f"{BUCKET}/catalog", recursive=True)
        fs.put(str(tract.folder), f"{BUCKET}/tract", recursive=True)
        try:
            yield S3(endpoint, {"endpoint_url": endpoint, "anon": False}, tract)
        finally:
            server.stop()


@pytest.fixture(scope="module")
def s3_client(s3: S3) -> Iterator[Client]:
    """A one-worker cluster started with the S3 credentials in its environment."""
    with (
        local_cluster(ClusterConfig(n_workers=1, dashboard=False)) as cluster,
        Client(cluster) as client,
    ):
        yield client


def _inputs(mock_sky: MockSky, path: str | None = None, **options: Any) -> CatalogInputs:
    """The sky's config with its catalog at `path` (a URL), validated as a file would be."""
    raw = PlanConfig.from_toml(mock_sky.config).to_toml_dict()
    if path is not None:
        raw["catalog"] |= {"path": path, "storage_options": options}
    config = PlanConfig.from_dict(raw, base=mock_sky.root)
    assert config.catalog.path == (path or mock_sky.catalog)
    return open_inputs(config)


def _same_catalog(remote: CatalogInputs, local: CatalogInputs) -> None:
    assert remote.catalog.pixels == local.catalog.pixels
    assert remote.catalog.schema == local.catalog.schema
    assert replace(remote, catalog=local.catalog) == local
    assert remote.catalog.stray_files == ()


def test_http_catalog_plans_as_on_disk(
    mock_sky: MockSky, http_sky: tuple[_Server, _Server], dask_client: Client
) -> None:
    local = _inputs(mock_sky)
    for server in http_sky:  # with directory listings, and with only the files hats names
        remote = _inputs(mock_sky, _url(server, "catalog"))
        _same_catalog(remote, local)
        assert plan_inputs(remote) == plan_inputs(local)
        assert [file_size(remote.catalog.file_of(p)) for p in local.catalog.pixels] == [
            file_size(local.catalog.file_of(p)) for p in local.catalog.pixels
        ]
    exact = plan_inputs(remote, client=dask_client)  # the workers read the URL themselves
    assert exact == plan_inputs(local, client=dask_client)
    assert all(row.rows_after_cuts is not None for row in exact)


def test_s3_catalog_plans_and_reads_as_on_disk(
    mock_sky: MockSky, s3: S3, s3_client: Client
) -> None:
    local = _inputs(mock_sky)
    remote = _inputs(mock_sky, f"s3://{BUCKET}/catalog", **s3.options)
    _same_catalog(remote, local)
    assert plan_inputs(remote) == plan_inputs(local)
    assert plan(remote.catalog, cut=remote.cut, client=s3_client) == plan(
        local.catalog, cut=local.cut, client=s3_client
    )
    columns = list(local.coordinates)
    for pixel in local.catalog.pixels[:3]:
        got = read_partition(pixel, catalog=remote.catalog, columns=columns, cut=remote.cut)
        expected = read_partition(pixel, catalog=local.catalog, columns=columns, cut=local.cut)
        assert got.rows_read == expected.rows_read
        assert got.table.equals(expected.table)


def test_stray_files_are_listed_on_s3(mock_sky: MockSky, s3: S3) -> None:
    fs = fsspec.filesystem("s3", **s3.options)
    fs.put(str(mock_sky.catalog), f"{BUCKET}/strays", recursive=True)
    fs.pipe(f"{BUCKET}/strays/dataset/Norder=1/Dir=0/stray.parquet", b"PAR1")
    catalog = open_catalog(f"s3://{BUCKET}/strays", storage_options=s3.options)
    assert [str(p) for p in catalog.stray_files] == [
        f"s3://{BUCKET}/strays/dataset/Norder=1/Dir=0/stray.parquet"
    ]


def _images(tiles: str, **changes: Any) -> ImagesConfig:
    raw = {"tiles": tiles, "bands": ["r", "g"], "size": 16, "psf_fwhm_arcsec": {"g": 0.8, "r": 0.7}}
    return ImagesConfig.model_validate({**raw, **changes})


def test_cutouts_from_s3_tiles_equal_those_from_disk(
    s3: S3, s3_client: Client, tmp_path: Path
) -> None:
    rows = grid_rows(s3.tract)
    local = _images(str(s3.tract.folder / "calexp-{band}-*.fits.fz"))
    remote = _images(f"s3://{BUCKET}/tract/calexp-{{band}}-*.fits.fz", storage_options=s3.options)
    reports = {}
    for name, config in (("local", local), ("remote", remote)):
        store = tmp_path / f"{name}.zarr"
        reports[name] = build_cutouts(rows, store=store, config=config, client=s3_client)
        assert not reports[name].failed
    assert reports["remote"].totals() == reports["local"].totals()
    assert reports["local"].totals()["written"] > 0
    for pixel, part in rows.items():
        got = read_cutouts(tmp_path / "remote.zarr", partition_group(pixel), part.ids)
        expected = read_cutouts(tmp_path / "local.zarr", partition_group(pixel), part.ids)
        np.testing.assert_array_equal(got.ids, expected.ids)
        np.testing.assert_array_equal(got.images, expected.images)
    index = tile_index(remote, path=tmp_path / "remote.parquet")
    assert all(str(p).startswith(f"s3://{BUCKET}/tract/") for p in index.path)
    assert tile_index(remote, path=tmp_path / "remote.parquet").signature == index.signature


@pytest.mark.parametrize("layout", ["plain", "blocks"])
def test_stamps_from_uncompressed_and_block_tiled_s3_tiles(
    s3: S3, tmp_path: Path, layout: str
) -> None:
    tract = write_tract(tmp_path / layout, layout=layout, patches=1, patch=60)
    fsspec.filesystem("s3", **s3.options).put(
        str(tract.folder), f"{BUCKET}/{layout}", recursive=True
    )
    rows = [part for part in grid_rows(tract).values()]
    ids, ra, dec = (np.concatenate([getattr(r, k) for r in rows]) for k in ("ids", "ra", "dec"))
    stamps = {}
    for name, tiles, options in (
        ("local", str(tract.folder / "calexp-{band}-*.fits.fz"), {}),
        ("remote", f"s3://{BUCKET}/{layout}/calexp-{{band}}-*.fits.fz", s3.options),
    ):
        config = _images(tiles, storage_options=options)
        index = tile_index(config, path=tmp_path / f"{name}.parquet")
        stamps[name] = cut_stamps(ids, ra, dec, index=index, config=config)
    np.testing.assert_array_equal(stamps["remote"].ids, stamps["local"].ids)
    np.testing.assert_array_equal(stamps["remote"].images, stamps["local"].images)
    assert stamps["local"].ids.size > 0


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_unreachable_or_missing_remote_inputs_are_one_clear_error(s3: S3, tmp_path: Path) -> None:
    down = f"http://127.0.0.1:{_closed_port()}/catalog"
    with pytest.raises(CatalogError, match=rf"^{re.escape(down)}: cannot reach the server"):
        open_catalog(down)
    with pytest.raises(CatalogError, match=r"^s3://no-such-bucket/catalog: bucket 'no-such"):
        open_catalog("s3://no-such-bucket/catalog", storage_options=s3.options)
    with pytest.raises(CatalogError, match=rf"^s3://{BUCKET}/nothing: no HATS catalog here"):
        open_catalog(f"s3://{BUCKET}/nothing", storage_options=s3.options)
    unsigned = {"endpoint_url": s3.endpoint}  # hats reads S3 anonymously unless anon = false
    with pytest.raises(CatalogError, match=rf"^s3://{BUCKET}/catalog: access denied"):
        open_catalog(f"s3://{BUCKET}/catalog", storage_options=unsigned)
    tiles = _images("s3://no-such-bucket/t/{band}.fits", storage_options=s3.options)
    with pytest.raises(ImageError, match="bucket 'no-such-bucket' does not exist"):
        tile_index(tiles, path=tmp_path / "tiles.parquet")
    with pytest.raises(ImageError, match="cannot reach the server"):
        tile_index(_images(f"{down}/{{band}}-*.fits"), path=tmp_path / "tiles.parquet")
