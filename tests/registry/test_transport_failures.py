"""The transport against registries and token servers that fail, stall or answer oddly: a token server's 5xx
and 429 are retried, a registry that never answers times out, ~/.netrc never supplies credentials, a body cut
off is retried and one at the cap is read whole, an endless one cut at the cap, rate-limit headers are read as
far as they go; where credentials and tokens go (another host's 401, two services of one realm, a /v2/ that is
open though it names a challenge); the ping (its path, its body read with the cap, its connection kept, a TLS
registry's bad /v2/ body never a reason for plain http, the https probe's own short timeout).

The servers are the stdlib's http.server on loopback (over TLS when a test asks), scripted per path, so each
test decides exactly what a misbehaving registry sends; the one against Debian's docker-registry is
test_transport_auth.py.
"""

from __future__ import annotations

import json
import re
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest

from imagekit.errors import AuthError, RegistryError
from imagekit.registry.credentials import Credentials
from imagekit.registry.retry import NO_RETRY, RetryPolicy
from imagekit.registry import transport as transport_module
from imagekit.registry.transport import BODY_LIMIT, RateLimit, Transport
from tests.registry.auth_servers import make_test_ca
from tests.registry.serving import serving

TAGS = json.dumps({"name": "r", "tags": ["1"]}).encode()
BEARER = {"WWW-Authenticate": 'Bearer realm="{root}/token",service="scripted"'}
TOKEN = json.dumps({"token": "scripted-token"}).encode()


#: How much an endless answer sends at most, so that a client reading it all still ends.
ENDLESS = 64 << 20


def answer(status: int, body: bytes = b"", headers: dict[str, str] | None = None, *, cut: int | None = None,
           endless: bool = False) -> dict[str, object]:
    """One scripted answer; `cut`: announce the whole body, send only that many bytes of it and hang up; `endless`:
    announce no length (no Content-Length, no chunks: the body ends when the connection does) and send `body`
    followed by x's until the client hangs up (or ENDLESS bytes went)."""
    return {"status": status, "body": body, "headers": headers or {}, "cut": cut, "endless": endless}


class Scripted:
    """What a scripted server was asked: (path, Authorization header) per request, in order."""

    def __init__(self, host: str, scheme: str = "http") -> None:
        self.host = host
        self.root = f"{scheme}://{host}"
        self.seen: list[tuple[str, str | None]] = []
        self.queries: list[tuple[str, list[tuple[str, str]]]] = []  # (path, query parameters) per request
        self.sent = 0  # bytes of endless bodies written
        self.connections = 0  # connections accepted

    def asked(self, path: str) -> int:
        return sum(1 for seen, _ in self.seen if seen == path)

    def token_scopes(self) -> list[list[str]]:
        """The scopes each token request named, sorted, in the order they were asked."""
        return [sorted(v for k, v in query if k == "scope") for path, query in self.queries if path == "/token"]


@contextmanager
def scripted(script: dict[str, list[dict[str, object]]], context: ssl.SSLContext | None = None, *,
             keep_alive: bool = False, silence: float = 0.0) -> Iterator[Scripted]:
    """A loopback server answering each path from its list of answers in turn (the last one repeats), and 404 to
    a path not in the script (paths are case-sensitive, as distribution's router is); over TLS with `context` (a
    connection whose first byte is not a TLS record's is answered in plain http); with `keep_alive`, HTTP/1.1
    connections stay open for the next request (else one request a connection); `silence`: each connection waits
    that long, in a thread of its own, before it reads anything. `{root}` in a header is the server's own
    scheme://host:port."""
    answers = {path: list(items) for path, items in script.items()}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1" if keep_alive else "HTTP/1.0"

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            with lock:
                record.seen.append((path, self.headers.get("Authorization")))
                record.queries.append((path, parse_qsl(urlsplit(self.path).query)))
                queue = answers.get(path, [answer(404)])
                now = queue.pop(0) if len(queue) > 1 else queue[0]
            body: bytes = now["body"]  # type: ignore[assignment]
            self.send_response(now["status"])  # type: ignore[arg-type]
            length = {} if now["endless"] else {"Content-Length": str(len(body))}
            for name, value in {**now["headers"], **length}.items():  # type: ignore[dict-item]
                self.send_header(name, value.replace("{root}", record.root))
            self.end_headers()
            self.close_connection = not keep_alive or now["endless"] or now["cut"] is not None
            if now["endless"]:
                self._endless(body)
            else:
                self.wfile.write(body if now["cut"] is None else body[: now["cut"]])  # type: ignore[misc]

        def _endless(self, chunk: bytes) -> None:
            chunk += b"x" * (65536 - len(chunk))
            try:
                while record.sent < ENDLESS:
                    self.wfile.write(chunk)
                    record.sent += len(chunk)
                    chunk = b"x" * 65536
            except OSError:
                pass  # the client hung up: what it should do

    class Server(ThreadingHTTPServer):
        def get_request(self) -> tuple[socket.socket, object]:
            sock, address = super().get_request()
            record.connections += 1
            return sock, address

        def finish_request(self, request: socket.socket, client_address: object) -> None:  # type: ignore[override]
            time.sleep(silence)
            if context is not None:
                request.settimeout(10)  # a client that never finishes its handshake holds this thread 10 s at most
                try:
                    if request.recv(1, socket.MSG_PEEK) == b"\x16":
                        request = context.wrap_socket(request, server_side=True)
                except OSError:
                    return  # a client that gave up before the handshake ended
            super().finish_request(request, client_address)

    with serving(Server(("127.0.0.1", 0), Handler)) as httpd:
        record = Scripted(f"127.0.0.1:{httpd.server_address[1]}", "http" if context is None else "https")
        yield record


def transport(host: str, waits: list[float], **kwargs: object) -> Transport:
    """A plain-http transport (no TLS probe) whose retries wait nothing and are counted in `waits`."""
    kwargs.setdefault("retry", RetryPolicy(attempts=3, base=0.0, sleep=waits.append))
    return Transport(host, scheme="http", **kwargs)  # type: ignore[arg-type]


def test_a_token_server_answering_5xx_or_429_is_asked_again_and_one_that_keeps_failing_is_a_temporary_error() -> None:
    waits: list[float] = []
    script = {"/v2/": [answer(401, headers=BEARER)], "/token": [answer(500), answer(429, headers={"Retry-After": "0"}), answer(200, TOKEN)],
              "/v2/r/tags/list": [answer(200, TAGS)]}
    with scripted(script) as server:
        assert transport(server.host, waits).request("GET", "/v2/r/tags/list", scopes=["repository:r:pull"]).content == TAGS
    assert (server.asked("/token"), len(waits)) == (3, 2)
    assert ("/v2/r/tags/list", "Bearer scripted-token") in server.seen

    waits.clear()
    with scripted({"/v2/": [answer(401, headers=BEARER)], "/token": [answer(503)]}) as server:
        with pytest.raises(RegistryError) as caught:
            transport(server.host, waits).request("GET", "/v2/r/tags/list", scopes=["repository:r:pull"], retry=NO_RETRY)
    assert type(caught.value) is RegistryError and caught.value.temporary  # not a refusal: the server is down
    assert (str(caught.value), server.asked("/token"), len(waits)) == ("GET /token: HTTP 503", 3, 2)


def test_a_token_realm_that_is_not_http_is_refused() -> None:
    with scripted({"/v2/": [answer(401, headers={"WWW-Authenticate": 'Bearer realm="ftp://127.0.0.1/token"'})]}) as server:
        with pytest.raises(AuthError, match=r"^127\.0\.0\.1:\d+ sent a Bearer challenge without a usable realm$"):
            transport(server.host, []).request("GET", "/v2/r/tags/list", scopes=["repository:r:pull"])


def test_a_registry_that_never_answers_times_out_as_a_temporary_error() -> None:
    """A listener that never accepts: the kernel completes the connection, nobody answers. The transport's read
    timeout ends each attempt; the listener is closed after 3 s (the test's bound), so a transport without a
    timeout fails on the reset instead of waiting for ever."""
    waits: list[float] = []
    with socket.create_server(("127.0.0.1", 0)) as listener:
        bound = threading.Timer(3, listener.close)
        bound.start()
        try:
            slow = transport(f"127.0.0.1:{listener.getsockname()[1]}", waits, timeout=(2.0, 0.2), retry=RetryPolicy(attempts=2, base=0.0, sleep=waits.append))
            with pytest.raises(RegistryError, match=r"^cannot reach 127\.0\.0\.1:\d+: timed out$") as caught:
                slow.request("GET", "/v2/", retry=NO_RETRY)  # the ping's own retry is the one counted
        finally:
            bound.cancel()
    assert caught.value.temporary and len(waits) == 1


def test_netrc_credentials_reach_neither_the_token_server_nor_the_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """requests fills Authorization from ~/.netrc (or $NETRC) when nobody set one: an anonymous token fetch must
    stay anonymous, whatever the user's netrc says about the host."""
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login netrc-user password netrc-password\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    script = {"/v2/": [answer(401, headers=BEARER)], "/token": [answer(200, TOKEN)], "/v2/r/tags/list": [answer(200, TAGS)]}
    with scripted(script) as server:
        transport(server.host, []).request("GET", "/v2/r/tags/list", scopes=["repository:r:pull"])
    assert server.seen == [("/v2/", None), ("/token", None), ("/v2/r/tags/list", "Bearer scripted-token")]


@pytest.mark.parametrize("first", ["cut off", "500", "502"])
def test_a_body_cut_off_or_a_server_error_is_retried(first: str) -> None:
    waits: list[float] = []
    failing = answer(200, TAGS, cut=10) if first == "cut off" else answer(int(first))
    with scripted({"/v2/": [answer(200)], "/v2/r/tags/list": [failing, answer(200, TAGS)]}) as server:
        assert transport(server.host, waits).request("GET", "/v2/r/tags/list").content == TAGS
    assert (server.asked("/v2/r/tags/list"), len(waits)) == (2, 1)


def test_a_body_of_exactly_the_cap_is_read_whole_and_one_byte_more_is_refused_naming_the_url() -> None:
    script = {"/v2/": [answer(200)], "/v2/r/tags/list": [answer(200, b"x" * BODY_LIMIT), answer(200, b"x" * (BODY_LIMIT + 1))]}
    with scripted(script) as server:
        client = transport(server.host, [])
        assert len(client.request("GET", "/v2/r/tags/list").content) == BODY_LIMIT
        with pytest.raises(RegistryError) as caught:
            client.request("GET", "/v2/r/tags/list")
    assert str(caught.value) == f"GET http://{server.host}/v2/r/tags/list: the response body is over the {BODY_LIMIT}-byte limit"


def test_rate_limit_headers_without_a_window_or_half_there_and_the_allowance_only_on_a_429() -> None:
    script = {
        "/v2/": [answer(200, headers={"ratelimit-limit": "100", "ratelimit-remaining": "99"})],
        "/v2/half/tags/list": [answer(404, headers={"ratelimit-limit": "5;w=60"})],
        "/v2/limited/tags/list": [answer(429, headers={"ratelimit-limit": "5;w=60", "ratelimit-remaining": "0"})],
    }
    with scripted(script) as server:
        client = transport(server.host, [], retry=RetryPolicy(attempts=1))
        client.ping()
        assert client.rate_limit == RateLimit(100, 99, None)
        with pytest.raises(RegistryError) as missing:
            client.request("GET", "/v2/half/tags/list")
        assert client.rate_limit == RateLimit(100, 99, None)  # one header alone says nothing
        with pytest.raises(RegistryError) as limited:
            client.request("GET", "/v2/limited/tags/list")
    assert str(missing.value) == "GET /v2/half/tags/list: HTTP 404"  # the allowance belongs to a 429 only
    assert str(limited.value) == "GET /v2/limited/tags/list: HTTP 429 (0 of 5 pulls left per 60 s)"


def test_a_401_naming_a_malformed_scope_is_one_line_and_blanks_between_scopes_are_one_separator() -> None:
    """The scopes a repository's 401 names are asked for next: one that is not type:name:actions is the registry's
    malformed header (an AuthError naming it), never a ValueError from deep in the scope code; scopes apart by
    two spaces are two scopes, as RFC 6750 means them."""
    def guarded(scope: str) -> dict[str, object]:
        return answer(401, headers={"WWW-Authenticate": f'Bearer realm="{{root}}/token",service="scripted",scope="{scope}"'})

    script = {"/v2/": [answer(401, headers=BEARER)], "/token": [answer(200, TOKEN)], "/v2/r/tags/list": [guarded("garbage")]}
    with scripted(script) as server:
        with pytest.raises(AuthError, match=r"^127\.0\.0\.1:\d+ sent a malformed WWW-Authenticate header: invalid scope 'garbage'"):
            transport(server.host, []).request("GET", "/v2/r/tags/list", scopes=["repository:r:pull"])

    script = {"/v2/": [answer(401, headers=BEARER)], "/token": [answer(200, TOKEN)],
              "/v2/r/tags/list": [guarded("repository:r:pull  repository:s:pull"), answer(200, TAGS)]}
    with scripted(script) as server:
        assert transport(server.host, []).request("GET", "/v2/r/tags/list", scopes=["repository:r:pull"]).content == TAGS
    assert server.asked("/token") == 2 and server.asked("/v2/r/tags/list") == 2
    assert server.token_scopes() == [["repository:r:pull"], ["repository:r:pull", "repository:s:pull"]]


def test_a_401_whose_bearer_challenge_names_no_scope_renews_the_token_for_the_callers_scopes() -> None:
    """A repository's 401 may name no scope at all (only realm and service): the token is asked again for what
    the caller wanted, and the request answered."""
    no_scope = answer(401, headers={"WWW-Authenticate": 'Bearer realm="{root}/token",service="scripted"'})
    script = {"/v2/": [answer(401, headers=BEARER)], "/token": [answer(200, TOKEN)], "/v2/r/tags/list": [no_scope, answer(200, TAGS)]}
    with scripted(script) as server:
        assert transport(server.host, []).request("GET", "/v2/r/tags/list", scopes=["repository:r:pull"]).content == TAGS
    assert server.token_scopes() == [["repository:r:pull"], ["repository:r:pull"]]


@pytest.mark.parametrize(("answered", "error", "line"), [
    (answer(404, b"{}", {"Content-Type": "application/json"}), RegistryError, r"GET /v2/r/manifests/1: HTTP 404"),
    (answer(401), AuthError, r"GET /v2/r/manifests/1: HTTP 401 \(log in with `imagekit login 127\.0\.0\.1:\d+`\)"),
    (answer(307, headers={"Location": "ftp://127.0.0.1/x"}), RegistryError, r"GET ftp://127\.0\.0\.1/x: .+"),
], ids=["error-body-of-an-empty-object", "401-without-a-challenge", "redirect-to-ftp"])
def test_a_registry_answering_oddly_is_one_line_never_a_traceback(answered: dict[str, object], error: type, line: str) -> None:
    """What a hostile or broken registry may answer a manifest request with: an error body without `errors`, a 401
    that names no challenge, a redirect to a scheme requests cannot fetch. Each is one line of the right class."""
    with scripted({"/v2/": [answer(200)], "/v2/r/manifests/1": [answered]}) as server:
        with pytest.raises(RegistryError) as caught:
            transport(server.host, []).request("GET", "/v2/r/manifests/1", scopes=["repository:r:pull"], retry=NO_RETRY)
    assert type(caught.value) is error and "\n" not in str(caught.value)
    assert re.fullmatch(line, str(caught.value))


@pytest.mark.parametrize("streamed", [False, True], ids=["body-capped", "error-body-of-a-stream"])
def test_an_endless_body_of_no_announced_length_is_cut_at_the_cap(streamed: bool) -> None:
    """A body sent with neither Content-Length nor chunks ends when the connection does: an endless one is read up
    to the cap (16 MiB for a body that is not streamed, 64 KiB for an error body), then the connection is closed."""
    failing = answer(404 if streamed else 200, b'{"errors": [{"message": "', endless=True)
    with scripted({"/v2/": [answer(200)], "/v2/r/tags/list": [failing]}) as server:
        with pytest.raises(RegistryError) as caught:
            transport(server.host, []).request("GET", "/v2/r/tags/list", stream=streamed, retry=NO_RETRY)
    if streamed:
        assert str(caught.value) == "GET /v2/r/tags/list: HTTP 404" and server.sent < 32 << 20
    else:
        assert str(caught.value).endswith(f"the response body is over the {BODY_LIMIT}-byte limit") and server.sent < 48 << 20
    # (the rest of the 64 MiB was never read: what the kernel buffered at most went)


def test_a_v2_answering_200_with_a_challenge_is_open() -> None:
    """Only a 401 to /v2/ says the registry wants credentials: a 200 that carries WWW-Authenticate anyway is open."""
    script = {"/v2/": [answer(200, headers=BEARER)], "/token": [answer(200, TOKEN)], "/v2/r/tags/list": [answer(200, TAGS)]}
    with scripted(script) as server:
        client = transport(server.host, [])
        assert client.ping() == ()
        assert client.request("GET", "/v2/r/tags/list", scopes=["repository:r:pull"]).content == TAGS
    assert server.seen == [("/v2/", None), ("/v2/r/tags/list", None)]


def test_tokens_of_two_services_of_one_realm_are_kept_apart() -> None:
    """A token is cached per (realm, service): when a registry's challenges move from one service to another, the
    token the first service issued is not sent to requests the second one guards, whatever its scopes."""
    def challenge(service: str, scope: str = "") -> dict[str, str]:
        return {"WWW-Authenticate": f'Bearer realm="{{root}}/token",service="{service}"' + (f',scope="{scope}"' if scope else "")}

    tokens = [answer(200, json.dumps({"token": f"t{n}"}).encode()) for n in range(1, 5)]
    script = {"/v2/": [answer(401, headers=challenge("a"))], "/token": tokens, "/v2/r/tags/list": [answer(200, TAGS)],
              "/v2/s/tags/list": [answer(401, headers=challenge("b", "repository:s:pull")), answer(200, TAGS)]}
    with scripted(script) as server:
        client = transport(server.host, [])
        for name in ("r", "s", "r"):
            client.request("GET", f"/v2/{name}/tags/list", scopes=[f"repository:{name}:pull"])
    assert server.seen == [("/v2/", None), ("/token", None), ("/v2/r/tags/list", "Bearer t1"),
                           ("/token", None), ("/v2/s/tags/list", "Bearer t2"),  # service a's token for s: refused
                           ("/token", None), ("/v2/s/tags/list", "Bearer t3"),  # service b's
                           ("/token", None), ("/v2/r/tags/list", "Bearer t4")]  # b's for r: t1 is a's
    services = [dict(query).get("service") for path, query in server.queries if path == "/token"]
    assert services == ["a", "a", "b", "b"]


def test_a_401_from_another_host_is_not_answered_with_our_credentials() -> None:
    """A request to an absolute URL on another host (an upload or blob Location elsewhere) that answers 401 with a
    challenge of its own: no token is asked from the realm *that* host names with our credentials; the 401 is the
    caller's AuthError."""
    other_script = {"/v2/r/blobs/uploads/1": [answer(401, headers=BEARER)], "/token": [answer(200, TOKEN)]}
    with scripted({"/v2/": [answer(200)]}) as server, scripted(other_script) as other:
        client = transport(server.host, [], credentials=Credentials("user", "user-Secret-1"))
        with pytest.raises(AuthError, match=r"^GET /v2/r/blobs/uploads/1: HTTP 401$"):
            client.request("GET", f"http://{other.host}/v2/r/blobs/uploads/1", scopes=["repository:r:pull"], retry=NO_RETRY)
    assert other.seen == [("/v2/r/blobs/uploads/1", None)] and server.seen == [("/v2/", None)]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, Path]:
    """A server context for 127.0.0.1 and the CA that signed it."""
    ca, cert, key = make_test_ca(tmp_path_factory.mktemp("scripted-pki"))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context, ca


def trusting(tmp_path: Path, host: str, ca: Path) -> Path:
    """A certs directory whose `host` directory holds `ca`."""
    (tmp_path / "certs.d" / host).mkdir(parents=True)
    (tmp_path / "certs.d" / host / "ca.crt").write_bytes(ca.read_bytes())
    return tmp_path / "certs.d"


def test_a_loopback_tls_registry_is_pinged_at_v2_and_its_first_request_carries_a_token(pki: tuple[ssl.SSLContext, Path], tmp_path: Path) -> None:
    """The https probe of a loopback host is the ping: its answer's challenge is answered up front, so the first
    request carries a token (a streamed body is not sent twice). distribution's router is case-sensitive."""
    context, ca = pki
    script = {"/v2/": [answer(401, headers=BEARER)], "/token": [answer(200, TOKEN)], "/v2/r/tags/list": [answer(200, TAGS)]}
    with scripted(script, context) as server:
        client = Transport(server.host, certs_dir=trusting(tmp_path, server.host, ca), retry=NO_RETRY)
        assert client.request("GET", "/v2/r/tags/list", scopes=["repository:r:pull"]).content == TAGS
        assert client.base_url == f"https://{server.host}"
    assert server.seen == [("/v2/", None), ("/token", None), ("/v2/r/tags/list", "Bearer scripted-token")]


@pytest.mark.parametrize("how", ["http", "probed-http", "https"])
def test_the_ping_reads_its_answer_and_the_next_request_reuses_its_connection(how: str, pki: tuple[ssl.SSLContext, Path], tmp_path: Path) -> None:
    """The ping's body is never used, but it is read (with the cap, as every answer not streamed): urllib3 then
    puts the connection back in its pool, and the requests after the ping go on it instead of a new connection
    (and a new TLS handshake). Probing plain http takes one connection more: the ClientHello's, answered 400."""
    context, ca = pki
    script = {"/v2/": [answer(200, b"{}")], "/v2/r/tags/list": [answer(200, TAGS)]}
    with scripted(script, context if how == "https" else None, keep_alive=True) as server:
        certs_dir = trusting(tmp_path, server.host, ca)
        client = Transport(server.host, scheme="http" if how == "http" else None, certs_dir=certs_dir, retry=NO_RETRY)
        for _ in range(2):
            assert client.request("GET", "/v2/r/tags/list").content == TAGS
        assert client.base_url == f"{'https' if how == 'https' else 'http'}://{server.host}"
        client.close()
    assert server.seen == [("/v2/", None), ("/v2/r/tags/list", None), ("/v2/r/tags/list", None)]
    assert server.connections == (2 if how == "probed-http" else 1)


@pytest.mark.parametrize("how", ["http", "probed-http", "https"])
def test_a_v2_answer_over_the_cap_is_refused(how: str, pki: tuple[ssl.SSLContext, Path], tmp_path: Path) -> None:
    """The ping reads /v2/'s body with the cap of every answer not streamed: an endless one is refused, one line."""
    context, ca = pki
    with scripted({"/v2/": [answer(200, b"{", endless=True)]}, context if how == "https" else None) as server:
        certs_dir = trusting(tmp_path, server.host, ca)
        client = Transport(server.host, scheme="http" if how == "http" else None, certs_dir=certs_dir, retry=NO_RETRY)
        with pytest.raises(RegistryError) as caught:
            client.ping()
    scheme = "https" if how == "https" else "http"
    assert str(caught.value) == f"GET {scheme}://{server.host}/v2/: the response body is over the {BODY_LIMIT}-byte limit"
    assert server.sent < 48 << 20


def test_a_tls_registry_whose_v2_answer_is_cut_off_is_asked_again_over_https(pki: tuple[ssl.SSLContext, Path], tmp_path: Path) -> None:
    """A server that completed a TLS handshake and answered speaks TLS: a body it cut off is a temporary failure
    of that answer (asked again), never a reason to try plain http."""
    context, ca = pki
    with scripted({"/v2/": [answer(200, b"{}" * 100, cut=10), answer(200, b"{}")]}, context) as server:
        waits: list[float] = []
        client = Transport(server.host, certs_dir=trusting(tmp_path, server.host, ca), retry=RetryPolicy(attempts=2, base=0.0, sleep=waits.append))
        assert client.ping() == () and client.base_url == f"https://{server.host}"
    assert server.seen == [("/v2/", None), ("/v2/", None)] and len(waits) == 1
    assert server.connections == 2  # no plain-http attempt in between (this TLS server counts it, never records it)


def test_the_https_probe_gives_up_on_its_own_timeout_not_the_transports(pki: tuple[ssl.SSLContext, Path], tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A loopback port silent to a ClientHello is given up on after the probe's short timeout, whatever the
    transport's own (60 s by default, 3 s here): the port is then asked in plain http. The probe's timeout is cut
    to 0.2 s here (its connect part bounds the TLS handshake) so that the port's silence (1 s) can tell the two apart without a test of many seconds: waiting
    as long as the transport does, the probe would have got the TLS answer that comes after the silence."""
    monkeypatch.setattr(transport_module, "_PROBE_TIMEOUT", (0.2, 0.2))
    context, ca = pki
    with scripted({"/v2/": [answer(200, b"{}")]}, context, silence=1.0) as server:
        client = Transport(server.host, certs_dir=trusting(tmp_path, server.host, ca), retry=NO_RETRY, timeout=(3.0, 3.0))
        assert client.ping() == ()
        assert client.base_url == f"http://{server.host}"
    assert server.seen == [("/v2/", None)] and server.connections == 2
