"""TLS trust: which CA bundle and certs directory apply, and SSL_CERT_FILE against the real TLS registry."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from imagekit.registry import tls
from imagekit.registry.transport import Transport
from tests.registry.auth_servers import AuthRegistry, make_test_ca


def test_ca_bundle_precedence(tmp_path: Path) -> None:
    assert tls.ca_bundle({"REQUESTS_CA_BUNDLE": "/r", "CURL_CA_BUNDLE": "/c", "SSL_CERT_FILE": "/s"}) == "/r"
    assert tls.ca_bundle({"CURL_CA_BUNDLE": "/c", "SSL_CERT_FILE": "/s"}) == "/c"
    assert tls.ca_bundle({"SSL_CERT_FILE": "/s"}) == "/s"
    system = tls.ca_bundle({})
    assert system is True or Path(str(system)).exists()


def test_certs_dirs_precedence(tmp_path: Path) -> None:
    assert tls.certs_dirs(tmp_path, {"IMAGEKIT_CERTS_D": "/env"}) == (tmp_path,)
    assert tls.certs_dirs(None, {"IMAGEKIT_CERTS_D": "/env"}) == (Path("/env"),)
    assert tls.certs_dirs(None, {}) == (Path("/etc/docker/certs.d"), Path("/etc/containers/certs.d"))


def test_host_context_loads_cas_and_client_certificate(tmp_path: Path) -> None:
    ca, cert, key = make_test_ca(tmp_path / "pki")
    host_dir = tmp_path / "certs.d" / "reg.example:5000"
    host_dir.mkdir(parents=True)
    (host_dir / "ca.crt").write_bytes(ca.read_bytes())
    (host_dir / "client.cert").write_bytes(cert.read_bytes())
    (host_dir / "client.key").write_bytes(key.read_bytes())
    context = tls.host_context("reg.example:5000", (tmp_path / "certs.d",), True)
    assert isinstance(context, ssl.SSLContext)
    assert any(c["subject"] == ((("commonName", "imagekit test CA"),),) for c in context.get_ca_certs())
    assert tls.host_context("other.example", (tmp_path / "certs.d",), True) is None


def test_tls_registry_verified_with_ssl_cert_file(tls_registry: AuthRegistry, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_registry.ca_path))
    assert Transport(tls_registry.host, certs_dir=tmp_path).request("GET", "/v2/").status_code == 200


def test_wrong_ca_in_certs_dir_is_refused(tls_registry: AuthRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"):
        monkeypatch.delenv(name, raising=False)
    other_ca, _, _ = make_test_ca(tmp_path / "other")
    (tmp_path / "certs.d" / tls_registry.host).mkdir(parents=True)
    (tmp_path / "certs.d" / tls_registry.host / "ca.crt").write_bytes(other_ca.read_bytes())
    from imagekit.errors import TLSError

    with pytest.raises(TLSError, match=f"TLS verification of {tls_registry.host} failed: certificate signature failure"):
        Transport(tls_registry.host, certs_dir=tmp_path / "certs.d").request("GET", "/v2/")
