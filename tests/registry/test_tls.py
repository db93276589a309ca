"""TLS trust: which CA bundle and certs directory apply, SSL_CERT_FILE against the real TLS registry, and a\nclient certificate from certs.d presented to a real registry that demands one."""

from __future__ import annotations

import io
import ssl
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from imagekit.digest import Digest
from imagekit.errors import TLSError
from imagekit.registry import tls
from imagekit.registry.client import Repository
from imagekit.registry.retry import NO_RETRY
from imagekit.registry.transport import Transport
from tests.registry.auth_servers import AuthRegistry, make_test_ca
from tests.registry.registry_server import RegistryServer, start_registry


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


def test_a_certs_dir_adds_to_requests_ca_bundle_and_never_brings_the_system_store_back(
    tls_registry: AuthRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """REQUESTS_CA_BUNDLE replaces the system store; a certs directory for the host adds its CAs to that bundle,
    not to the system store (which OpenSSL takes from SSL_CERT_FILE, here the CA that signed the registry)."""
    other_ca, _, _ = make_test_ca(tmp_path / "other")
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(other_ca))
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_registry.ca_path))
    (tmp_path / "certs.d" / tls_registry.host).mkdir(parents=True)
    (tmp_path / "certs.d" / tls_registry.host / "ca.crt").write_bytes(other_ca.read_bytes())
    with pytest.raises(TLSError, match=f"TLS verification of {tls_registry.host} failed"):
        Transport(tls_registry.host, certs_dir=tmp_path / "certs.d", retry=NO_RETRY).request("GET", "/v2/")


def test_wrong_ca_in_certs_dir_is_refused(tls_registry: AuthRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"):
        monkeypatch.delenv(name, raising=False)
    other_ca, _, _ = make_test_ca(tmp_path / "other")
    (tmp_path / "certs.d" / tls_registry.host).mkdir(parents=True)
    (tmp_path / "certs.d" / tls_registry.host / "ca.crt").write_bytes(other_ca.read_bytes())
    with pytest.raises(TLSError, match=f"TLS verification of {tls_registry.host} failed: certificate signature failure"):
        Transport(tls_registry.host, certs_dir=tmp_path / "certs.d").request("GET", "/v2/")


@pytest.fixture(scope="module")
def mtls_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RegistryServer, Path, Path]]:
    """A real registry that demands a client certificate signed by its client CA (`http.tls.clientcas`).

    Yields (server, its CA, a directory holding a client certificate pair from the client CA).
    """
    work = tmp_path_factory.mktemp("registry-mtls")
    ca, cert, key = make_test_ca(work / "server-pki")
    client_ca, client_cert, client_key = make_test_ca(work / "client-pki")  # its "server" pair serves as the client's
    tls_config = {"certificate": str(cert), "key": str(key), "clientcas": [str(client_ca)]}
    server = start_registry(work / "registry", {"http": {"tls": tls_config}}, scheme="https")
    yield server, ca, client_cert.parent
    server.stop()


def _certs_d(base: Path, host: str, ca: Path, client: Path | None) -> Path:
    """certs.d/HOST with the registry's CA and, when given, client.cert + client.key (Docker's layout)."""
    directory = base / "certs.d" / host
    directory.mkdir(parents=True)
    (directory / "ca.crt").write_bytes(ca.read_bytes())
    if client is not None:
        (directory / "client.cert").write_bytes((client / "server.crt").read_bytes())
        (directory / "client.key").write_bytes((client / "server.key").read_bytes())
    return base / "certs.d"


def test_client_certificate_from_certs_d_is_presented_to_a_registry_that_demands_one(
    mtls_registry: tuple[RegistryServer, Path, Path], tmp_path: Path
) -> None:
    server, ca, client = mtls_registry
    transport = Transport(server.host, certs_dir=_certs_d(tmp_path, server.host, ca, client))
    assert transport.base_url == f"https://{server.host}"
    repo = Repository(transport, f"test/{uuid.uuid4().hex[:12]}")
    data = b"over mutual TLS"
    repo.upload_blob(io.BytesIO(data), Digest.of_bytes(data), len(data))  # type: ignore[arg-type]
    with repo.get_blob(Digest.of_bytes(data)) as response:
        assert response.raw.read() == data


def test_without_the_client_certificate_the_registry_refuses_and_is_never_reached_over_http(
    mtls_registry: tuple[RegistryServer, Path, Path], tmp_path: Path
) -> None:
    """The control (the same CA, no client pair) fails, so the test above proves the pair was sent; and
    a server that ends the handshake with an alert speaks TLS, so a loopback host does not fall back to http."""
    server, ca, _ = mtls_registry
    with pytest.raises(TLSError, match=f"TLS handshake with {server.host} failed: .*ALERT.*client certificate"):
        Transport(server.host, certs_dir=_certs_d(tmp_path, server.host, ca, None), retry=NO_RETRY).request("GET", "/v2/")
