"""The transport against real registries: token dance, Basic auth, TLS trust, scheme choice.

The token registry is Debian's docker-registry verifying JWTs from tests/registry/auth_servers.py's
token server, so scopes, expiry and refusals are the real registry's decisions, not ours.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time

import pytest

from imagekit.errors import AuthError, RegistryError, TLSError
from imagekit.registry.challenges import pull_scope, push_scope
from imagekit.registry.credentials import Credentials
from imagekit.registry.retry import RetryPolicy
from imagekit.registry.transport import Transport, is_loopback
from tests.registry.auth_servers import OTHER_USER, PASSWORD, PUBLIC_NAMESPACE, SHORT_PASSWORD, SHORT_USER, AuthRegistry, make_test_ca
from tests.registry.registry_server import RegistryServer
from tests.registry.serving import serve, serving, shut

FAST = RetryPolicy(attempts=2, base=0.01)


def push_blob(transport: Transport, repository: str, blob: bytes, scopes: list[str] | None = None) -> str:
    """Monolithic upload (POST + PUT ?digest=); returns the digest."""
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    scopes = scopes if scopes is not None else [push_scope(repository)]
    started = transport.request("POST", f"/v2/{repository}/blobs/uploads/", scopes=scopes, expected=(202,))
    transport.request("PUT", started.headers["Location"], scopes=scopes, params={"digest": digest}, data=blob, expected=(201,))
    return digest


def unique(name: str) -> str:
    return f"{name}{time.monotonic_ns()}"


# -- scheme and TLS ---------------------------------------------------------------------------------


def test_plain_http_off_loopback_is_refused_unless_the_registry_is_insecure() -> None:
    """Asking for http:// is refused before anything is sent, unless the registry is listed as insecure (no
    request is made: registry.test is never looked up)."""
    with pytest.raises(RegistryError, match=r"^plain HTTP to registry\.test:5000 is not allowed"):
        Transport("registry.test:5000", scheme="http")
    assert Transport("registry.test:5000", scheme="http", insecure=True).insecure


def test_loopback_without_tls_uses_plain_http(open_registry: RegistryServer) -> None:
    transport = Transport(open_registry.host)
    assert transport.base_url == f"http://{open_registry.host}"
    assert transport.ping() == ()


def test_remote_hosts_default_to_https_without_probing() -> None:
    assert Transport("registry.example:5000").base_url == "https://registry.example:5000"
    assert Transport("registry.example", insecure=True).tls_verify is False
    assert is_loopback("localhost:5000") and is_loopback("127.1.2.3") and is_loopback("[::1]:5000")
    assert not is_loopback("10.0.0.1:5000") and not is_loopback("localhost.example")


def test_tls_registry_verified_with_certs_dir(tls_registry: AuthRegistry) -> None:
    transport = tls_registry.transport()
    assert transport.base_url == f"https://{tls_registry.host}"
    assert transport.request("GET", "/v2/").status_code == 200


def test_tls_registry_verified_with_requests_ca_bundle(tls_registry: AuthRegistry, monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls_registry.ca_path))
    transport = Transport(tls_registry.host, certs_dir=tmp_path)
    assert transport.request("GET", "/v2/").status_code == 200


def test_tls_registry_verified_with_imagekit_certs_d(tls_registry: AuthRegistry, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGEKIT_CERTS_D", str(tls_registry.certs_dir))
    assert Transport(tls_registry.host).request("GET", "/v2/").status_code == 200


def test_unknown_ca_is_refused_in_one_line_never_downgraded(tls_registry: AuthRegistry, tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "IMAGEKIT_CERTS_D"):
        monkeypatch.delenv(name, raising=False)
    transport = Transport(tls_registry.host, certs_dir=tmp_path, retry=FAST)
    with pytest.raises(TLSError) as caught:
        transport.request("GET", "/v2/")
    message = str(caught.value)
    assert "\n" not in message
    assert f"TLS verification of {tls_registry.host} failed" in message and "certificate" in message
    assert not caught.value.temporary
    # Had it fallen back to http, the TLS server would have answered 400 and base_url would be http.
    assert transport._scheme is None


def test_tls_verification_off_only_on_request(tls_registry: AuthRegistry, tmp_path) -> None:
    assert Transport(tls_registry.host, certs_dir=tmp_path, tls_verify=False).request("GET", "/v2/").status_code == 200
    assert Transport(tls_registry.host, certs_dir=tmp_path, insecure=True).request("GET", "/v2/").status_code == 200
    # a certs directory for the host, holding a CA that did not sign its certificate, is not used either
    other_ca, _, _ = make_test_ca(tmp_path / "other-pki")
    (tmp_path / "certs.d" / tls_registry.host).mkdir(parents=True)
    (tmp_path / "certs.d" / tls_registry.host / "ca.crt").write_bytes(other_ca.read_bytes())
    unverified = Transport(tls_registry.host, certs_dir=tmp_path / "certs.d", tls_verify=False, retry=FAST)
    assert unverified.request("GET", "/v2/").status_code == 200


def test_unverified_tls_is_said_once_for_the_transport_and_only_when_asked(caplog: pytest.LogCaptureFixture) -> None:
    """One warning when the transport is made (urllib3's own, one per request, is silenced); none when verifying."""
    with caplog.at_level(logging.WARNING, logger="imagekit.registry"):
        Transport("registry.example:5000")
        Transport("registry.example:5000", tls_verify=False)
        Transport("registry.example:5000", insecure=True)
    assert [r.getMessage() for r in caplog.records] == ["TLS certificates of registry.example:5000 are not verified"] * 2


def test_connection_refused_is_temporary_and_retried(tmp_path) -> None:
    from tests.registry.registry_server import free_port

    waits: list[float] = []
    transport = Transport(f"127.0.0.1:{free_port()}", retry=RetryPolicy(attempts=3, base=0.01, sleep=waits.append))
    with pytest.raises(RegistryError, match="cannot reach 127.0.0.1:.*connection refused") as caught:
        transport.request("GET", "/v2/")
    assert caught.value.temporary and len(waits) == 2


# -- Basic ------------------------------------------------------------------------------------------


def test_basic_registry_with_credentials(basic_registry: AuthRegistry) -> None:
    transport = basic_registry.transport()
    assert [c.scheme for c in transport.ping()] == ["basic"]
    transport.authenticate()
    repository = f"{basic_registry.namespace}/{unique('basic')}"
    digest = push_blob(transport, repository, b"basic blob")
    got = transport.request("GET", f"/v2/{repository}/blobs/{digest}", scopes=[pull_scope(repository)])
    assert got.content == b"basic blob"


def test_basic_registry_anonymous_and_wrong_password(basic_registry: AuthRegistry) -> None:
    with pytest.raises(AuthError, match=f"log in with `imagekit login {basic_registry.host}`") as caught:
        basic_registry.transport(credentials=None).request("GET", "/v2/_catalog")
    assert caught.value.status == 401
    wrong = Credentials(basic_registry.user or "", "not-" + PASSWORD)
    with pytest.raises(AuthError) as caught:
        basic_registry.transport(credentials=wrong).authenticate()
    assert "\n" not in str(caught.value) and "not-" + PASSWORD not in str(caught.value)


# -- token auth -------------------------------------------------------------------------------------


def test_anonymous_pull_token_for_public_repositories(token_registry: AuthRegistry) -> None:
    tokens = token_registry.token_server
    assert tokens is not None
    transport = token_registry.transport(credentials=None)
    before = len(tokens.requests)
    public = f"{PUBLIC_NAMESPACE}/{unique('anon')}"
    # Authorized but empty: the registry says NAME_UNKNOWN (404), not 401.
    with pytest.raises(RegistryError, match="NAME_UNKNOWN") as caught:
        transport.request("GET", f"/v2/{public}/tags/list", scopes=[pull_scope(public)])
    assert caught.value.status == 404
    record = tokens.requests[before]
    assert record.account is None and record.method == "GET" and record.scopes == [pull_scope(public)]
    # Private repositories stay closed to anonymous users: one re-authentication, then AuthError.
    private = f"{token_registry.namespace}/{unique('priv')}"
    with pytest.raises(AuthError, match="HTTP 401 UNAUTHORIZED") as caught:
        transport.request("GET", f"/v2/{private}/tags/list", scopes=[pull_scope(private)])
    assert "log in with" in str(caught.value)
    assert [r.scopes for r in tokens.requests[before + 1 :]] == [[pull_scope(private)]] * 2


def test_authenticated_push_and_pull_with_cached_token(token_registry: AuthRegistry) -> None:
    tokens = token_registry.token_server
    assert tokens is not None
    transport = token_registry.transport()
    repository = f"{token_registry.namespace}/{unique('push')}"
    before = len(tokens.requests)
    digest = push_blob(transport, repository, b"token blob")
    # The push token (pull,push) covers the pull: no new token request.
    assert transport.request("GET", f"/v2/{repository}/blobs/{digest}", scopes=[pull_scope(repository)]).content == b"token blob"
    asked = tokens.requests[before:]
    assert [(r.account, r.scopes) for r in asked] == [(token_registry.user, [push_scope(repository)])]


def test_new_scope_from_challenge_reauthenticates_once(token_registry: AuthRegistry) -> None:
    tokens = token_registry.token_server
    assert tokens is not None
    transport = token_registry.transport()
    repository = f"{token_registry.namespace}/{unique('scope')}"
    before = len(tokens.requests)
    # The caller asks only for pull; the registry's insufficient_scope challenge names pull,push.
    response = transport.request("POST", f"/v2/{repository}/blobs/uploads/", scopes=[pull_scope(repository)], expected=(202,))
    assert response.status_code == 202
    assert [r.scopes for r in tokens.requests[before:]] == [[pull_scope(repository)], [push_scope(repository)]]


def test_insufficient_scope_is_an_auth_error(token_registry: AuthRegistry) -> None:
    transport = token_registry.transport()
    foreign = f"{OTHER_USER}/{unique('theirs')}"
    with pytest.raises(AuthError) as caught:
        transport.request("POST", f"/v2/{foreign}/blobs/uploads/", scopes=[push_scope(foreign)], expected=(202,))
    assert caught.value.status == 401 and "\n" not in str(caught.value)


def test_mount_asks_for_both_repositories_in_one_token(token_registry: AuthRegistry) -> None:
    tokens = token_registry.token_server
    assert tokens is not None
    transport = token_registry.transport()
    source = f"{token_registry.namespace}/{unique('src')}"
    target = f"{token_registry.namespace}/{unique('dst')}"
    digest = push_blob(transport, source, b"mounted blob")
    before = len(tokens.requests)
    mounted = transport.request(
        "POST",
        f"/v2/{target}/blobs/uploads/",
        scopes=[push_scope(target), pull_scope(source)],
        params={"mount": digest, "from": source},
        expected=(201,),
    )
    assert mounted.headers["Docker-Content-Digest"] == digest
    (record,) = tokens.requests[before:]
    assert sorted(record.scopes) == sorted([pull_scope(source), push_scope(target)])


def test_wrong_password_is_one_line_auth_error_without_secret(token_registry: AuthRegistry) -> None:
    wrong = "wrong-" + PASSWORD
    transport = token_registry.transport(credentials=Credentials(token_registry.user or "", wrong))
    with pytest.raises(AuthError) as caught:
        transport.request("GET", f"/v2/{token_registry.namespace}/x/tags/list", scopes=[pull_scope(f"{token_registry.namespace}/x")])
    message = str(caught.value)
    assert "refused the credentials" in message and "incorrect username or password" in message
    assert "\n" not in message and wrong not in message and caught.value.status == 401


def test_expired_token_is_refreshed(token_registry: AuthRegistry) -> None:
    tokens = token_registry.token_server
    assert tokens is not None
    transport = token_registry.transport(credentials=Credentials(SHORT_USER, SHORT_PASSWORD))
    public = f"{PUBLIC_NAMESPACE}/{unique('exp')}"

    def tags() -> None:
        with pytest.raises(RegistryError, match="NAME_UNKNOWN"):
            transport.request("GET", f"/v2/{public}/tags/list", scopes=[pull_scope(public)])

    before = len(tokens.requests)
    tags()
    tags()
    assert len(tokens.requests) - before == 1  # cached while fresh
    time.sleep(0.5)  # SHORT_USER's tokens live 0.5 s (kept 0.45 s: refreshed a tenth early)
    tags()
    assert len(tokens.requests) - before == 2


def test_identity_token_uses_the_oauth_refresh_grant(token_registry: AuthRegistry) -> None:
    tokens = token_registry.token_server
    assert tokens is not None
    refresh = tokens.issue_refresh_token(token_registry.user or "")
    transport = token_registry.transport(credentials=Credentials(identity_token=refresh))
    repository = f"{token_registry.namespace}/{unique('oauth')}"
    before = len(tokens.requests)
    push_blob(transport, repository, b"oauth blob")
    (record,) = tokens.requests[before:]
    assert (record.method, record.account, record.scopes) == ("POST", token_registry.user, [push_scope(repository)])


def test_plain_python_http_server_on_loopback_is_reached_over_http(caplog: pytest.LogCaptureFixture) -> None:
    """A ClientHello sent to a stdlib http.server (like a test proxy) must not wedge the scheme probe.

    Judged by what happened, not by the clock: the server answered the ClientHello (as a bad request),
    the probe failed on the TLS handshake rather than on its timeout, and then plain GETs followed.
    """
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
            seen.append(f"answered {int(code)}")
            super().send_error(code, message, explain)

        def do_GET(self) -> None:
            seen.append(f"GET {self.path}")
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

    with serving(ThreadingHTTPServer(("127.0.0.1", 0), Handler)) as httpd:
        with caplog.at_level(logging.DEBUG, logger="imagekit.registry"):
            transport = Transport(f"127.0.0.1:{httpd.server_address[1]}", debug=True)
            assert transport.base_url.startswith("http://")
            assert transport.request("GET", "/v2/").content == b"{}"
    assert seen == ["answered 400", "GET /v2/", "GET /v2/"]
    (probe,) = [r.getMessage() for r in caplog.records if "no TLS" in r.getMessage()]
    assert "TLS handshake" in probe and "timed out" not in probe, probe


def test_proxy_environment_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    """HTTP(S)_PROXY work as in requests: the request for an insecure registry goes to the proxy."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    seen: list[str] = []

    class Proxy(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_CONNECT(self) -> None:
            seen.append(f"CONNECT {self.path}")
            self.send_error(405)

        def do_GET(self) -> None:
            seen.append(f"GET {self.path}")
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

    with serving(ThreadingHTTPServer(("127.0.0.1", 0), Proxy)) as httpd:
        proxy = f"http://127.0.0.1:{httpd.server_address[1]}"
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
            monkeypatch.setenv(name, proxy)
        for name in ("NO_PROXY", "no_proxy"):
            monkeypatch.delenv(name, raising=False)
        transport = Transport("registry.test:5000", insecure=True, retry=FAST)
        assert transport.request("GET", "/v2/").content == b"{}"
    assert "GET http://registry.test:5000/v2/" in seen


def test_one_transport_shared_by_threads_fetches_one_token(token_registry: AuthRegistry) -> None:
    """Parallel blob downloads share a Transport: one ping, one token, every request authorized."""
    from concurrent.futures import ThreadPoolExecutor

    tokens = token_registry.token_server
    assert tokens is not None
    setup = token_registry.transport()
    repository = f"{token_registry.namespace}/{unique('threads')}"
    digests = [push_blob(setup, repository, f"blob {i}".encode()) for i in range(4)]
    transport = token_registry.transport()
    before = len(tokens.requests)

    def fetch(digest: str) -> bytes:
        return transport.request("GET", f"/v2/{repository}/blobs/{digest}", scopes=[pull_scope(repository)]).content

    with ThreadPoolExecutor(4) as pool:
        bodies = list(pool.map(fetch, digests * 3))
    assert bodies == [f"blob {i}".encode() for i in range(4)] * 3
    assert len(tokens.requests) - before == 1


def test_push_and_pull_a_blob_on_every_registry_flavour(any_registry: AuthRegistry) -> None:
    repository = f"{any_registry.namespace}/{unique('any')}"
    with any_registry.transport() as transport:
        digest = push_blob(transport, repository, b"same everywhere")
        got = transport.request("GET", f"/v2/{repository}/blobs/{digest}", scopes=[pull_scope(repository)])
        assert got.content == b"same everywhere"
        head = transport.request("HEAD", f"/v2/{repository}/blobs/{digest}", scopes=[pull_scope(repository)])
        assert head.headers["Docker-Content-Digest"] == digest


class _EchoingRegistry:
    """A hostile registry on loopback: a Bearer challenge with `realm`, a token that contains the password,
    and error bodies that echo the password and the token back."""

    def __init__(self, password: str, realm_host: str = "127.0.0.1", realm_path: str = "/token") -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.password = password
        self.token = "a-" + password + "-z"  # one secret inside another: the longer one must go first
        registry = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _answer(self, status: int, body: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for key, value in {**headers, "Content-Length": str(len(body))}.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                port = self.server.server_address[1]
                if self.path.startswith("/v2/forbidden/"):
                    self._answer(403, b'{"errors": [{"code": "DENIED"}]}', {"Content-Type": "application/json"})
                elif self.path.startswith("/v2/endless/"):
                    self._endless(404)
                elif self.path.startswith("/endless-token"):
                    self._endless(200)
                elif self.path.startswith("/token"):
                    self._answer(200, json.dumps({"token": registry.token}).encode(), {"Content-Type": "application/json"})
                elif self.headers.get("Authorization") != f"Bearer {registry.token}":
                    realm = f'Bearer realm="http://{realm_host}:{port}{realm_path}",service="echo"'
                    self._answer(401, b"{}", {"WWW-Authenticate": realm})
                else:
                    echo = {"errors": [{"code": "MANIFEST_UNKNOWN", "message": f"you sent {password} and {registry.token}"}]}
                    self._answer(404, json.dumps(echo).encode(), {"Content-Type": "application/json"})

            def _endless(self, status: int) -> None:
                """A JSON body that never ends (up to a ceiling, so a client that reads it all still ends)."""
                self.protocol_version = "HTTP/1.1"
                self.send_response(status)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                chunk = b'{"errors": [{"message": "' + b"x" * 8192
                try:
                    while registry.sent < 64 << 20:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                        registry.sent += len(chunk)
                        chunk = b"x" * 8192
                    self.wfile.write(b'4\r\n"}]}\r\n0\r\n\r\n')
                except OSError:
                    pass  # the client hung up: what we want
                self.close_connection = True

        self.sent = 0
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.httpd.server_address[1]}"
        serve(self.httpd)

    def close(self) -> None:
        shut(self.httpd)


def test_errors_never_show_the_password_or_an_issued_token_even_one_inside_the_other() -> None:
    registry = _EchoingRegistry("pw-" + unique("s"))
    try:
        transport = Transport(registry.host, credentials=Credentials("user", registry.password), retry=FAST)
        with pytest.raises(RegistryError) as caught:
            transport.request("GET", "/v2/r/manifests/t", scopes=[pull_scope("r")])
    finally:
        registry.close()
    assert str(caught.value) == "GET /v2/r/manifests/t: HTTP 404 MANIFEST_UNKNOWN: you sent *** and ***"
    assert type(caught.value) is RegistryError  # not an AuthError: a 404 is no refusal


def test_a_403_is_an_auth_error_and_an_endless_error_body_is_cut_short() -> None:
    registry = _EchoingRegistry("pw-y")
    try:
        transport = Transport(registry.host, credentials=Credentials("user", "pw-y"), retry=FAST)
        with pytest.raises(AuthError, match=r"^GET /v2/forbidden/manifests/t: HTTP 403 DENIED: DENIED$"):
            transport.request("GET", "/v2/forbidden/manifests/t", scopes=[pull_scope("forbidden")])
        # streamed, as manifests and blobs are fetched: no JSON within 64 KiB, so no detail, and no more read
        with pytest.raises(RegistryError, match=r"^GET /v2/endless/manifests/t: HTTP 404$"):
            transport.request("GET", "/v2/endless/manifests/t", scopes=[pull_scope("endless")], stream=True)
    finally:
        registry.close()
    assert registry.sent < 32 << 20  # the rest of the body was never read (what the kernel buffered at most)


@pytest.mark.parametrize("what", ["error body", "token"])
def test_a_body_that_is_not_streamed_is_capped_too(what: str) -> None:
    """Requests that want the whole body (the token, the ping, tag lists; errors of any of them) read it with a cap:
    an endless one is refused after TRANSPORT_BODY_LIMIT bytes instead of being read without end."""
    registry = _EchoingRegistry("pw-z", realm_path="/endless-token" if what == "token" else "/token")
    try:
        transport = Transport(registry.host, credentials=Credentials("user", "pw-z"), retry=FAST)
        path = "/v2/endless/manifests/t" if what == "error body" else "/v2/r/tags/list"
        with pytest.raises(RegistryError, match=r"response body is over the 16777216-byte limit$"):
            transport.request("GET", path, scopes=[pull_scope("r")])
    finally:
        registry.close()
    assert registry.sent < 48 << 20  # cut at the limit (and what the kernel buffered), not the server's 64 MiB


def test_credentials_never_go_to_a_plain_http_realm_on_another_host_even_when_insecure() -> None:
    # 0.0.0.0 reaches this machine but is not loopback by name: the realm's host differs from the registry's
    registry = _EchoingRegistry("pw-x", realm_host="0.0.0.0")
    try:
        transport = Transport(registry.host, insecure=True, credentials=Credentials("user", "pw-x"), retry=FAST)
        with pytest.raises(AuthError, match=rf"^refusing to send credentials for {registry.host} to a plain-HTTP token realm \(0\.0\.0\.0:\d+\)$"):
            transport.request("GET", "/v2/r/manifests/t", scopes=[pull_scope("r")])
    finally:
        registry.close()
