"""closeloop.temporal: TLS from settings and the /readyz reachability check."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from temporalio.service import TLSConfig

from closeloop.settings import Settings
from closeloop.temporal import temporal_reachable, tls_config
from tests.support.workflows import free_port


def test_no_certificates_means_plain_connection() -> None:
    plain = Settings(temporal_tls_ca=None, temporal_tls_cert=None, temporal_tls_key=None)
    assert tls_config(plain) is False


def test_mtls_reads_the_files(tmp_path: Path) -> None:
    for name in ("ca.pem", "cert.pem", "key.pem"):
        (tmp_path / name).write_bytes(f"--{name}--".encode())
    config = tls_config(
        Settings(
            temporal_tls_ca=tmp_path / "ca.pem",
            temporal_tls_cert=tmp_path / "cert.pem",
            temporal_tls_key=tmp_path / "key.pem",
        )
    )
    assert isinstance(config, TLSConfig)
    assert config.server_root_ca_cert == b"--ca.pem--"
    assert config.client_private_key == b"--key.pem--"


def test_a_certificate_without_its_key_is_refused(tmp_path: Path) -> None:
    (tmp_path / "cert.pem").write_bytes(b"x")
    with pytest.raises(ValueError, match="TLS_KEY"):
        tls_config(Settings(temporal_tls_cert=tmp_path / "cert.pem"))


def test_an_unreachable_server_is_reported_not_raised() -> None:
    started = time.monotonic()
    assert temporal_reachable(Settings(temporal_address=f"127.0.0.1:{free_port()}"), 1.0) is False
    assert time.monotonic() - started < 5
