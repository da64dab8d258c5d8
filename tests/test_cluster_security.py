"""Who may talk to a scheduler: loopback or TLS; remote plain TCP only when asked for."""

from __future__ import annotations

from pathlib import Path

import pytest
from distributed.security import Security

from lensflow.cluster_config import TLSConfig
from lensflow.cluster_security import check_scheduler_address, is_loopback, tls_security
from lensflow.errors import ConfigError

pytestmark = pytest.mark.security


@pytest.mark.parametrize(
    "address", ["tcp://10.1.2.3:8786", "tcp://example.org:8786", "10.0.0.1:8786"]
)
def test_remote_plain_tcp_needs_insecure(address: str) -> None:
    with pytest.raises(ConfigError, match="--insecure"):
        check_scheduler_address(address, insecure=False)
    check_scheduler_address(address, insecure=True)


@pytest.mark.parametrize(
    "address", ["tls://10.1.2.3:8786", "tcp://127.0.0.1:8786", "tcp://localhost:1"]
)
def test_tls_and_loopback_are_allowed(address: str) -> None:
    check_scheduler_address(address, insecure=False)


@pytest.mark.parametrize(
    ("address", "loopback"),
    [
        ("tcp://127.0.0.1:8786", True),
        ("tcp://127.8.9.10:1", True),
        ("localhost:8786", True),
        ("tcp://[::1]:8786", True),
        ("tcp://10.0.0.1:8786", False),
        ("tcp://192.0.2.1:8786", False),
        ("tcp://no-such-host.invalid:8786", False),
    ],
)
def test_loopback_addresses_are_recognised(address: str, loopback: bool) -> None:
    assert is_loopback(address) is loopback


@pytest.mark.parametrize("address", ["http://127.0.0.1:8786", "ws://10.0.0.1:1"])
def test_other_schemes_are_refused(address: str) -> None:
    with pytest.raises(ConfigError, match="use tcp://HOST:PORT or tls://HOST:PORT"):
        check_scheduler_address(address, insecure=True)


def test_the_tls_section_becomes_one_certificate_for_every_role(tmp_path: Path) -> None:
    temporary = Security.temporary()
    (tmp_path / "ca.pem").write_text(temporary.tls_ca_file)
    (tmp_path / "me.pem").write_text(temporary.tls_client_cert + temporary.tls_client_key)
    security = tls_security(TLSConfig(ca_file=tmp_path / "ca.pem", cert_file=tmp_path / "me.pem"))
    assert security.require_encryption is True
    assert security.tls_ca_file == str(tmp_path / "ca.pem")
    for role in ("client", "scheduler", "worker"):
        assert security.get_tls_config_for_role(role)["cert"] == str(tmp_path / "me.pem")
        assert security.get_connection_args(role)["ssl_context"] is not None  # the PEMs load
    with pytest.raises(ConfigError, match=r"cert_file .*gone\.pem: no such file"):
        tls_security(TLSConfig(ca_file=tmp_path / "ca.pem", cert_file=tmp_path / "gone.pem"))
