"""Where inputs are read from: local paths and URLs (`https://...`, `s3://...`) through fsspec.

A local path stays a `Path`; a URL becomes a `UPath` made as hats makes it (hats' defaults for
the protocol, then the config's storage options), so hats and lensflow read the same files the
same way. Outputs are always local (`lensflow.io`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import fsspec
from upath import UPath

URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+)://")
"""A URL's scheme, as in s3://bucket/key; a single letter (a Windows drive) is not one."""

LOCAL_SCHEMES = ("file", "local")

CREDENTIAL_WORDS = ("key", "secret", "token", "password", "credential")
"""Storage options naming any of these are credentials: they come from the environment."""


Location = Path | UPath
"""Where an input is read from: a local Path, or a UPath for a URL."""


def url_scheme(location: str | Path | UPath) -> str | None:
    """The scheme of a remote location (s3, https, ...), None for a local path."""
    if isinstance(location, UPath):
        return None if location.protocol in ("", *LOCAL_SCHEMES) else location.protocol
    if isinstance(location, Path):
        return None
    match = URL.match(location)
    return None if match is None or match[1] in LOCAL_SCHEMES else match[1].lower()


def is_url(location: str | Path | UPath) -> bool:
    """True for a remote location (a URL with a scheme other than file://)."""
    return url_scheme(location) is not None


def remote(location: Location) -> UPath | None:
    """The location as a UPath when it is remote, None when it is a local path."""
    return location if isinstance(location, UPath) and is_url(location) else None


def check_url(url: str) -> str:
    """Refuse a URL whose scheme fsspec does not know or cannot open here; returns it."""
    scheme = url_scheme(url)
    if scheme is None:
        return url
    if scheme not in fsspec.available_protocols():
        msg = f"{url!r}: unknown URL scheme {scheme!r} (known: s3, gs, https, http, ...)"
        raise ValueError(msg)
    try:
        fsspec.get_filesystem_class(scheme)
    except ImportError as exc:
        raise ValueError(f"{url!r}: {exc}") from None
    return url


def check_storage_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """Refuse credentials among storage options: they belong in the environment, not a file."""
    secret = sorted(key for key in options if any(word in key.lower() for word in CREDENTIAL_WORDS))
    if secret:
        msg = (
            f"storage_options {', '.join(secret)}: credentials are not read from a config "
            "file; set them in the environment (e.g. AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY "
            "or a profile) as fsspec and boto read them"
        )
        raise ValueError(msg)
    return dict(options)


def location(
    path: str | Path | UPath, storage_options: Mapping[str, Any] | None = None
) -> Location:
    """A local path as a Path; a URL as hats opens it, with the storage options given."""
    if isinstance(path, UPath) and is_url(path) and not storage_options:
        return path
    if not is_url(path):
        text = str(path)
        return Path(text.split("://", 1)[1] if URL.match(text) else text)
    from hats.io.file_io import get_upath  # hats' own settings per protocol (anonymous S3...)

    upath: UPath = get_upath(str(path), **dict(storage_options or {}))
    return upath


def file_size(path: Location) -> int:
    """A file's size in bytes, -1 where it is not a file (a folder, or nothing)."""
    url = remote(path)
    if url is None:
        return path.stat().st_size if path.is_file() else -1
    try:
        info = url.fs.info(url.path)
    except FileNotFoundError:
        return -1
    return int(info["size"]) if info.get("type") == "file" and info.get("size") is not None else -1


def remote_problem(url: str, exc: BaseException) -> str:
    """One line on why a remote read failed: the server unreachable, access denied, or no such
    file, from the first cause in the exception's chain that says more than "not found"."""
    cause: BaseException | None = exc
    seen: list[BaseException] = []
    while cause is not None and len(seen) < 8:
        seen.append(cause)
        cause = cause.__cause__ or cause.__context__
    detail = next((c for c in seen if not isinstance(c, FileNotFoundError)), seen[0])
    name, status = type(detail).__name__, getattr(detail, "status", None)  # HTTP errors
    if "Connect" in name or isinstance(detail, ConnectionError | TimeoutError):
        return f"{url}: cannot reach the server ({name}: {detail})"
    if isinstance(detail, PermissionError) or status in (401, 403) or "Forbidden" in str(detail):
        return (
            f"{url}: access denied ({detail}); for a private bucket set storage_options "
            "anon = false and credentials in the environment"
        )
    if isinstance(detail, FileNotFoundError) or status == 404:
        return f"{url}: not found"
    return f"{url}: cannot read ({name}: {detail})"


BUCKET_PROTOCOLS = ("s3", "s3a", "gs", "gcs", "abfs", "az")


def missing_bucket(path: UPath) -> str | None:
    """The bucket of an object-store location when that bucket does not exist, else None."""
    if path.protocol not in BUCKET_PROTOCOLS:
        return None
    bucket = path.path.split("/", 1)[0]
    try:
        exists = bool(path.fs.exists(bucket))
    except Exception:  # noqa: BLE001  unreachable or denied: the caller's message says which
        return None
    return None if exists else bucket
