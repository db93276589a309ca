"""Authorization never follows a redirect off the registry: real servers on two loopback hosts, and a
same-host redirect from https down to http.

- Cross-host: a real registry with Basic or token auth behind the fault proxy on 127.0.0.1, whose blob
  GETs answer 307 to a "CDN" on 127.0.0.2 (and on another port of 127.0.0.1). The proxy records that
  the credentials reached the registry's host; the CDN records that they went no further.
- Downgrade: one port speaking TLS and plain HTTP (the first byte tells a ClientHello), Basic auth over
  TLS, redirecting blob GETs to `http://` on the very same host and port; and the other way, a plain-http
  registry redirecting up to `https://` on its own port, which keeps Authorization.
"""

from __future__ import annotations

import base64
import io
import socket
import ssl
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from imagekit.digest import Digest
from imagekit.registry.client import Repository
from imagekit.registry.credentials import Credentials
from imagekit.errors import RegistryError
from imagekit.registry.transport import MAX_REDIRECTS, Transport
from tests.registry.auth_servers import AuthRegistry, make_test_ca
from tests.registry.fault_proxy import Fault, FaultProxy
from tests.registry.serving import serving

BLOB = b"layer bytes served by a CDN\n"
USER, PASSWORD = "carol", "carol-Secret-pw-1234"


class Recorder(ThreadingHTTPServer):
    """A threaded HTTP server that keeps (scheme, path, headers) of every request it answers."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self.seen: list[tuple[str, str, dict[str, str]]] = []

    @property
    def host(self) -> str:
        return f"{self.server_address[0]}:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Recorder

    def log_message(self, *args: object) -> None:
        pass

    def record(self) -> None:
        scheme = "https" if isinstance(self.connection, ssl.SSLSocket) else "http"
        self.server.seen.append((scheme, self.path, dict(self.headers.items())))

    def answer(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _CDN(_Handler):
    def do_GET(self) -> None:
        self.record()
        self.answer(200, BLOB, {"Content-Type": "application/octet-stream"})


@pytest.fixture(params=["127.0.0.2", "127.0.0.1"], ids=["other-address", "other-port"])
def cdn(request: pytest.FixtureRequest) -> Iterator[Recorder]:
    with serving(Recorder((request.param, 0), _CDN)) as server:
        yield server


@pytest.fixture(params=["basic", "token"])
def guarded(request: pytest.FixtureRequest) -> Iterator[tuple[AuthRegistry, FaultProxy]]:
    """A registry that demands credentials, behind a proxy that can answer its blob GETs with a redirect."""
    registry: AuthRegistry = request.getfixturevalue(f"{request.param}_registry")
    proxy = FaultProxy(registry.host)
    yield registry, proxy
    proxy.stop()


def test_a_redirect_to_another_host_carries_no_authorization(guarded: tuple[AuthRegistry, FaultProxy], cdn: Recorder) -> None:
    registry, proxy = guarded
    repo = Repository(Transport(proxy.host, credentials=registry.credentials), f"{registry.namespace}/{uuid.uuid4().hex[:12]}")
    digest = Digest.of_bytes(BLOB)
    repo.upload_blob(io.BytesIO(BLOB), digest, len(BLOB))  # type: ignore[arg-type]
    proxy.inject(Fault("replace", f"/blobs/{digest}", status=307, headers={"Location": f"http://{cdn.host}/cdn/{digest.encoded}?sig=1"}))
    with repo.get_blob(digest) as response:
        assert response.raw.read() == BLOB
    (to_registry,) = [h for m, p, h in proxy.requests if m == "GET" and f"/blobs/{digest}" in p]
    assert to_registry["Authorization"].split()[0] in ("Basic", "Bearer")  # the credentials were there to leak
    ((scheme, path, headers),) = cdn.seen
    assert path == f"/cdn/{digest.encoded}?sig=1"
    assert "Authorization" not in headers, headers


class _DualHandler(_Handler):
    """/v2/ and blob GETs need Basic auth over TLS; a blob GET is redirected to http:// on this same port."""

    def do_GET(self) -> None:
        self.record()
        tls = isinstance(self.connection, ssl.SSLSocket)
        if not tls:
            self.answer(200, BLOB, {"Content-Type": "application/octet-stream"})
        elif self.headers.get("Authorization") != _basic(USER, PASSWORD):
            self.answer(401, b"{}", {"WWW-Authenticate": 'Basic realm="dual"', "Content-Type": "application/json"})
        elif "/blobs/" in self.path:
            self.answer(307, b"", {"Location": f"http://{self.server.host}{self.path}"})
        else:
            self.answer(200, b"{}", {"Content-Type": "application/json"})


class _UpHandler(_Handler):
    """A plain-http registry with Basic auth whose blob GETs are redirected up to https:// on this same port."""

    def do_GET(self) -> None:
        self.record()
        if self.headers.get("Authorization") != _basic(USER, PASSWORD):
            self.answer(401, b"{}", {"WWW-Authenticate": 'Basic realm="dual"', "Content-Type": "application/json"})
        elif "/blobs/" not in self.path:
            self.answer(200, b"{}", {"Content-Type": "application/json"})
        elif isinstance(self.connection, ssl.SSLSocket):
            self.answer(200, BLOB, {"Content-Type": "application/octet-stream"})
        else:
            self.answer(307, b"", {"Location": f"https://{self.server.host}{self.path}"})


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class DualServer(Recorder):
    """TLS and plain HTTP on one port: a connection whose first byte is 0x16 (a TLS record) is wrapped."""

    def __init__(self, context: ssl.SSLContext, handler: type[_Handler] = _DualHandler) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.context = context

    def get_request(self) -> tuple[Any, Any]:
        sock, address = super().get_request()
        sock.settimeout(10)
        if sock.recv(1, socket.MSG_PEEK) == b"\x16":
            sock = self.context.wrap_socket(sock, server_side=True)
        return sock, address


@pytest.fixture
def dual(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[DualServer, Path]]:
    """A DualServer (answering as _DualHandler, or the handler the test names with indirect parametrization) and
    a certs directory trusting it."""
    ca, cert, key = make_test_ca(tmp_path / "pki")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = DualServer(context, getattr(request, "param", _DualHandler))
    certs_d = tmp_path / "certs.d"
    (certs_d / server.host).mkdir(parents=True)
    (certs_d / server.host / "ca.crt").write_bytes(ca.read_bytes())
    with serving(server) as running:
        yield running, certs_d


def test_a_same_host_redirect_from_https_to_http_carries_no_authorization(dual: tuple[DualServer, Path]) -> None:
    server, certs_d = dual
    transport = Transport(server.host, credentials=Credentials(USER, PASSWORD), certs_dir=certs_d)
    assert transport.base_url == f"https://{server.host}"
    digest = Digest.of_bytes(BLOB)
    with Repository(transport, "team/app").get_blob(digest) as response:
        assert response.raw.read() == BLOB
    blob_requests = [(scheme, headers) for scheme, path, headers in server.seen if "/blobs/" in path]
    assert [scheme for scheme, _ in blob_requests] == ["https", "http"]
    assert blob_requests[0][1].get("Authorization") == _basic(USER, PASSWORD)  # the credentials were there to leak
    assert "Authorization" not in blob_requests[1][1], blob_requests[1][1]


@pytest.mark.parametrize("dual", [_UpHandler], ids=["up-to-https"], indirect=True)
def test_a_same_host_redirect_from_http_up_to_https_keeps_authorization(dual: tuple[DualServer, Path]) -> None:
    """A registry that speaks plain http may send its blobs over https on its own host: no downgrade, the
    credentials go along (the https hop wants them too)."""
    server, certs_d = dual
    transport = Transport(server.host, scheme="http", credentials=Credentials(USER, PASSWORD), certs_dir=certs_d)
    with Repository(transport, "team/app").get_blob(Digest.of_bytes(BLOB)) as response:
        assert response.raw.read() == BLOB
    blob_requests = [(scheme, headers.get("Authorization")) for scheme, path, headers in server.seen if "/blobs/" in path]
    assert blob_requests == [("http", _basic(USER, PASSWORD)), ("https", _basic(USER, PASSWORD))]


class _Hops(_Handler):
    """`/v2/` answers; /v2/<status> redirects to /v2/done with that status; /v2/hops/N redirects to
    /v2/hops/N-1 until 0. Records (method, path, body)."""

    def route(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.seen.append((self.command, self.path, {"body": body.decode()}))
        path = self.path.split("?")[0]
        last = path.rsplit("/", 1)[1]
        if path.startswith("/v2/hops/") and int(last) > 0:
            self.answer(302, headers={"Location": f"/v2/hops/{int(last) - 1}"})
        elif last.isdigit() and not path.startswith("/v2/hops/"):
            self.answer(int(last), headers={"Location": "/v2/done"})
        else:
            self.answer(200, b"" if self.command == "HEAD" else b"{}")

    do_GET = do_HEAD = do_POST = do_PUT = route


def test_redirects_turn_a_post_or_put_into_a_get_without_body_or_query_and_stop_after_ten() -> None:
    """As browsers and requests do: 303, and 301/302 of anything but GET and HEAD, continue as a GET without
    the body, 307 and a GET's or HEAD's 302 keep the method; the query is the Location's; a chain of
    MAX_REDIRECTS is followed, one more is an error."""
    with serving(Recorder(("127.0.0.1", 0), _Hops)) as server:
        transport = Transport(server.host, scheme="http")
        transport.ping()
        for method, status, then in (("POST", 303, "GET"), ("PUT", 301, "GET"), ("POST", 302, "GET"), ("POST", 307, "POST"),
                                     ("GET", 302, "GET"), ("HEAD", 302, "HEAD")):
            server.seen.clear()
            body = "payload" if method in ("POST", "PUT") else ""
            transport.request(method, f"/v2/{status}", params={"q": "1"}, data=body.encode() or None)
            assert server.seen == [(method, f"/v2/{status}?q=1", {"body": body}), (then, "/v2/done", {"body": body if then == method else ""})]
        server.seen.clear()
        transport.request("GET", f"/v2/hops/{MAX_REDIRECTS}")
        assert len(server.seen) == MAX_REDIRECTS + 1
        with pytest.raises(RegistryError, match=f"more than {MAX_REDIRECTS} redirects"):
            transport.request("GET", f"/v2/hops/{MAX_REDIRECTS + 1}")
