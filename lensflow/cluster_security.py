"""Who may talk to a scheduler: loopback or TLS, plain TCP to another host only on request.

Dask unpickles what clients send, so a remote scheduler is reached over TLS, with
certificates from [cluster.tls] (one certificate for every role, encryption required) or from
Dask's own distributed.comm.tls config; plain TCP to a host other than this one needs an
explicit `insecure=True` (`--insecure`).
"""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from distributed.security import Security

from lensflow.cluster_config import ClusterConfig, TLSConfig
from lensflow.errors import ConfigError


def is_loopback(address: str) -> bool:
    """True when a scheduler address names this machine's loopback interface."""
    host = urlsplit(address if "://" in address else f"tcp://{address}").hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        try:
            return ipaddress.ip_address(socket.gethostbyname(host)).is_loopback
        except OSError:
            return False


def scheme_of(address: str) -> str:
    """The protocol of a scheduler address ("tcp" when none is written)."""
    return urlsplit(address).scheme if "://" in address else "tcp"


def check_scheduler_address(address: str, *, insecure: bool) -> None:
    """Refuse plain TCP to a remote scheduler unless the user asked for it."""
    scheme = scheme_of(address)
    if scheme == "tls":
        return
    if scheme not in ("tcp", "inproc", "ucx"):
        raise ConfigError(f"scheduler address {address!r}: use tcp://HOST:PORT or tls://HOST:PORT")
    if not is_loopback(address) and not insecure:
        raise ConfigError(
            f"scheduler {address} is remote over plain TCP, where anyone on the network can run "
            "code on it; use tls:// (Dask's TLS settings) or pass --insecure on a trusted network"
        )


def tls_security(tls: TLSConfig, *, check: bool = True) -> Security:
    """Dask's Security from [cluster.tls]: one certificate for every role, encryption required.

    check: refuse a file that is not there (off where the files are only named, not read).
    """
    for key in ("ca_file", "cert_file", "key_file"):
        path: Path | None = getattr(tls, key)
        if check and path is not None and not path.is_file():
            raise ConfigError(f"[cluster.tls] {key} {path}: no such file; give a PEM file")
    cert, key_file = str(tls.cert_file), None if tls.key_file is None else str(tls.key_file)
    roles: dict[str, Any] = {}
    for role in ("client", "scheduler", "worker"):
        roles[f"tls_{role}_cert"] = cert
        roles[f"tls_{role}_key"] = key_file
    return Security(tls_ca_file=str(tls.ca_file), require_encryption=True, **roles)


def client_security(cluster: ClusterConfig, address: str) -> Security:
    """The Security a client joins `address` with: [cluster.tls], else Dask's own config."""
    scheme = scheme_of(address)
    if cluster.tls is not None:
        if scheme != "tls":
            raise ConfigError(
                f"[cluster.tls] is set but the scheduler {address} is {scheme}://; "
                "write it tls://HOST:PORT"
            )
        return tls_security(cluster.tls)
    security = Security()  # distributed.comm.tls.* from Dask's config and environment
    if scheme == "tls" and (security.tls_ca_file is None or security.tls_client_cert is None):
        raise ConfigError(
            f"scheduler {address} is tls:// but no certificates are set: give [cluster.tls] "
            "ca_file, cert_file (and key_file), or Dask's distributed.comm.tls.ca-file and "
            "distributed.comm.tls.client.cert (.key)"
        )
    return security
