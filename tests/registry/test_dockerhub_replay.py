"""Docker Hub as recorded (REGISTRY-PROTOCOL.md §2, §4, §5), replayed with `responses`.

Docker Hub cannot be reached from the test machines; these replays hold the shapes it answers with:
the anonymous token dance against auth.docker.io, the 307 of blobs to a CDN host (which must not see
our Authorization header), rate-limit headers, and 429 with Retry-After.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from imagekit.errors import AuthError, RegistryError
from imagekit.registry.challenges import pull_scope, push_scope
from imagekit.registry.credentials import Credentials
from imagekit.registry.retry import RetryPolicy
from imagekit.registry.transport import RateLimit, Transport

HUB = "https://registry-1.docker.io"
AUTH = "https://auth.docker.io/token"
CDN = "https://production.cloudflare.docker.com"
CHALLENGE = 'Bearer realm="https://auth.docker.io/token",service="registry.docker.io"'
TOKEN = "eyJhbGciOiJSUzI1NiJ9.hub-anonymous-token.sig"
INDEX_TYPE = "application/vnd.oci.image.index.v1+json"
DIGEST = "sha256:" + "4" * 64
MANIFEST_URL = f"{HUB}/v2/library/ubuntu/manifests/22.04"
RATE_HEADERS = {"ratelimit-limit": "100;w=21600", "ratelimit-remaining": "99;w=21600", "docker-ratelimit-source": "203.0.113.7"}


@pytest.fixture
def hub() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(f"{HUB}/v2/", status=401, headers={"WWW-Authenticate": CHALLENGE}, json={"errors": [{"code": "UNAUTHORIZED"}]})
        yield mock


def transport(tmp_path: Path, waits: list[float] | None = None, **kwargs: object) -> Transport:
    sleep = waits.append if waits is not None else (lambda _s: None)
    return Transport("registry-1.docker.io", certs_dir=tmp_path, debug=True, retry=RetryPolicy(attempts=3, sleep=sleep), **kwargs)  # type: ignore[arg-type]


def token_answer(mock: responses.RequestsMock, body: dict | None = None) -> None:
    mock.get(AUTH, json=body or {"token": TOKEN, "access_token": TOKEN, "expires_in": 300, "issued_at": "2026-11-28T04:00:00Z"})


def calls_to(mock: responses.RequestsMock, prefix: str) -> list[responses.Call]:
    return [c for c in mock.calls if c.request.url.startswith(prefix)]


def test_anonymous_token_dance_and_rate_limit_headers(hub: responses.RequestsMock, tmp_path: Path) -> None:
    token_answer(hub)
    hub.get(MANIFEST_URL, body=b"{}", content_type=INDEX_TYPE, headers={"Docker-Content-Digest": DIGEST, **RATE_HEADERS})
    hub.head(MANIFEST_URL, content_type=INDEX_TYPE, headers={"Docker-Content-Digest": DIGEST, **RATE_HEADERS})
    t = transport(tmp_path)
    assert t.request("GET", "/v2/library/ubuntu/manifests/22.04", scopes=[pull_scope("library/ubuntu")]).content == b"{}"
    t.request("HEAD", "/v2/library/ubuntu/manifests/22.04", scopes=[pull_scope("library/ubuntu")])
    (token_call,) = calls_to(hub, AUTH)
    assert "Authorization" not in token_call.request.headers
    assert parse_qs(urlsplit(token_call.request.url).query) == {"service": ["registry.docker.io"], "scope": ["repository:library/ubuntu:pull"]}
    for call in calls_to(hub, MANIFEST_URL):
        assert call.request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert t.rate_limit == RateLimit(100, 99, 21600)
    assert str(t.rate_limit) == "99 of 100 pulls left per 21600 s"


def test_access_token_alias_and_default_lifetime(hub: responses.RequestsMock, tmp_path: Path) -> None:
    token_answer(hub, {"access_token": "oauth-alias-token"})
    hub.get(MANIFEST_URL, body=b"{}")
    transport(tmp_path).request("GET", MANIFEST_URL, scopes=[pull_scope("library/ubuntu")])
    assert calls_to(hub, MANIFEST_URL)[0].request.headers["Authorization"] == "Bearer oauth-alias-token"


def test_token_response_without_token_is_an_auth_error(hub: responses.RequestsMock, tmp_path: Path) -> None:
    token_answer(hub, {"expires_in": 300})
    with pytest.raises(AuthError, match="token server answered without a token"):
        transport(tmp_path).request("GET", MANIFEST_URL, scopes=[pull_scope("library/ubuntu")])


def test_blob_redirect_to_cdn_drops_authorization(hub: responses.RequestsMock, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    token_answer(hub)
    cdn_url = f"{CDN}/registry-v2/docker/registry/v2/blobs/sha256/44/{DIGEST[7:]}/data?verify=1732766400-signature"
    hub.get(f"{HUB}/v2/library/ubuntu/blobs/{DIGEST}", status=307, headers={"Location": cdn_url})
    hub.get(cdn_url, body=b"layer bytes")
    caplog.set_level(logging.DEBUG, logger="imagekit.registry")
    got = transport(tmp_path).request("GET", f"/v2/library/ubuntu/blobs/{DIGEST}", scopes=[pull_scope("library/ubuntu")], stream=True)
    assert got.content == b"layer bytes"
    (registry_call,) = calls_to(hub, f"{HUB}/v2/library/ubuntu/blobs/")
    (cdn_call,) = calls_to(hub, CDN)
    assert registry_call.request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert "Authorization" not in cdn_call.request.headers
    logged = caplog.text
    assert f"GET {CDN}/registry-v2/" in logged and "verify=" not in logged and TOKEN not in logged


def test_redirect_on_the_same_host_keeps_authorization(hub: responses.RequestsMock, tmp_path: Path) -> None:
    token_answer(hub)
    hub.get(f"{HUB}/v2/library/ubuntu/blobs/{DIGEST}", status=307, headers={"Location": "/v2/library/ubuntu/blobs/moved"})
    hub.get(f"{HUB}/v2/library/ubuntu/blobs/moved", body=b"x")
    transport(tmp_path).request("GET", f"/v2/library/ubuntu/blobs/{DIGEST}", scopes=[pull_scope("library/ubuntu")])
    assert calls_to(hub, f"{HUB}/v2/library/ubuntu/blobs/moved")[0].request.headers["Authorization"] == f"Bearer {TOKEN}"


def test_redirect_loops_are_cut(hub: responses.RequestsMock, tmp_path: Path) -> None:
    token_answer(hub)
    hub.get(f"{CDN}/loop", status=302, headers={"Location": f"{CDN}/loop"})
    with pytest.raises(RegistryError, match="more than 10 redirects"):
        transport(tmp_path).request("GET", f"{CDN}/loop")


def test_429_with_retry_after_is_retried(hub: responses.RequestsMock, tmp_path: Path) -> None:
    token_answer(hub)
    too_many = {"errors": [{"code": "TOOMANYREQUESTS", "message": "You have reached your pull rate limit."}]}
    hub.get(MANIFEST_URL, status=429, json=too_many, headers={"Retry-After": "3", "ratelimit-limit": "100;w=21600", "ratelimit-remaining": "0;w=21600"})
    hub.get(MANIFEST_URL, body=b"{}", headers=RATE_HEADERS)
    waits: list[float] = []
    t = transport(tmp_path, waits)
    assert t.request("GET", MANIFEST_URL, scopes=[pull_scope("library/ubuntu")]).content == b"{}"
    assert waits == [3.0] and len(calls_to(hub, MANIFEST_URL)) == 2


def test_429_that_persists_is_a_clear_temporary_error(hub: responses.RequestsMock, tmp_path: Path) -> None:
    token_answer(hub)
    too_many = {"errors": [{"code": "TOOMANYREQUESTS", "message": "You have reached your pull rate limit."}]}
    hub.get(MANIFEST_URL, status=429, json=too_many, headers={"Retry-After": "Sat, 28 Nov 2026 04:00:00 GMT", **{"ratelimit-limit": "100;w=21600", "ratelimit-remaining": "0;w=21600"}})
    waits: list[float] = []
    with pytest.raises(RegistryError) as caught:
        transport(tmp_path, waits).request("GET", MANIFEST_URL, scopes=[pull_scope("library/ubuntu")])
    assert caught.value.status == 429 and caught.value.temporary and caught.value.codes == ("TOOMANYREQUESTS",)
    assert "pull rate limit" in str(caught.value) and "0 of 100 pulls left" in str(caught.value)
    assert len(waits) == 2 and len(calls_to(hub, MANIFEST_URL)) == 3


def test_5xx_is_retried_but_a_streamed_body_is_sent_once(hub: responses.RequestsMock, tmp_path: Path) -> None:
    token_answer(hub)
    uploads = f"{HUB}/v2/user/app/blobs/uploads/"
    hub.post(uploads, status=503)
    with pytest.raises(RegistryError, match="HTTP 503"):
        transport(tmp_path).request("POST", uploads, scopes=[push_scope("user/app")], data=iter([b"chunk"]), expected=(202,))
    assert len(calls_to(hub, uploads)) == 1
    hub.post(uploads, status=503)
    with pytest.raises(RegistryError, match="HTTP 503"):
        transport(tmp_path).request("POST", uploads, scopes=[push_scope("user/app")], data=b"bytes", expected=(202,))
    assert len(calls_to(hub, uploads)) == 1 + 3


def test_authenticated_token_request_with_two_scopes(hub: responses.RequestsMock, tmp_path: Path) -> None:
    token_answer(hub)
    uploads = f"{HUB}/v2/user/app/blobs/uploads/"
    hub.post(uploads, status=201, headers={"Location": f"/v2/user/app/blobs/{DIGEST}"})
    t = transport(tmp_path, credentials=Credentials("user", "hub-PAT-secret"))
    t.request(
        "POST", uploads, scopes=[push_scope("user/app"), pull_scope("library/ubuntu")], params={"mount": DIGEST, "from": "library/ubuntu"}, expected=(201,)
    )
    (token_call,) = calls_to(hub, AUTH)
    query = parse_qs(urlsplit(token_call.request.url).query)
    assert query["scope"] == ["repository:library/ubuntu:pull", "repository:user/app:pull,push"]
    assert query["account"] == ["user"] and token_call.request.headers["Authorization"].startswith("Basic ")


def test_credentials_never_go_to_a_plain_http_realm(tmp_path: Path) -> None:
    with responses.RequestsMock() as mock:
        mock.get(f"{HUB}/v2/", status=401, headers={"WWW-Authenticate": 'Bearer realm="http://auth.example/token",service="s"'})
        t = transport(tmp_path, credentials=Credentials("user", "pw-secret"))
        with pytest.raises(AuthError, match="refusing to send credentials .* plain-HTTP token realm"):
            t.request("GET", MANIFEST_URL, scopes=[pull_scope("library/ubuntu")])


def test_malformed_challenge_is_an_auth_error(tmp_path: Path) -> None:
    with responses.RequestsMock() as mock:
        mock.get(f"{HUB}/v2/", status=401, headers={"WWW-Authenticate": 'Bearer realm="unterminated'})
        with pytest.raises(AuthError, match="malformed WWW-Authenticate header: unterminated quoted string"):
            transport(tmp_path).request("GET", MANIFEST_URL)


def test_registry_warnings_are_shown_once(hub: responses.RequestsMock, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    token_answer(hub)
    hub.get(MANIFEST_URL, body=b"{}", headers={"Warning": '299 - "this repository is deprecated"'})
    t = transport(tmp_path)
    for _ in range(2):
        t.request("GET", MANIFEST_URL, scopes=[pull_scope("library/ubuntu")])
    warned = [r for r in caplog.records if r.levelno == logging.WARNING and "deprecated" in r.getMessage()]
    assert len(warned) == 1


def test_challenge_learned_from_a_repository_401_is_answered_up_front(tmp_path: Path) -> None:
    """Some registries leave /v2/ open and guard repositories: after one 401, later requests carry a token."""
    with responses.RequestsMock() as mock:
        mock.get(f"{HUB}/v2/", json={})
        token_answer(mock)
        guarded = 'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/ubuntu:pull"'
        mock.get(MANIFEST_URL, status=401, headers={"WWW-Authenticate": guarded})
        mock.get(MANIFEST_URL, body=b"{}")
        mock.get(MANIFEST_URL, body=b"{}")
        t = transport(tmp_path)
        for _ in range(2):
            assert t.request("GET", MANIFEST_URL, scopes=[pull_scope("library/ubuntu")]).content == b"{}"
        statuses = [c.response.status_code for c in calls_to(mock, MANIFEST_URL)]
        assert statuses == [401, 200, 200]
        assert len(calls_to(mock, AUTH)) == 1
        # the second request was sent with the token up front, without pinging /v2/ again
        assert calls_to(mock, MANIFEST_URL)[2].request.headers.get("Authorization") == f"Bearer {TOKEN}"
        assert [c.request.url for c in mock.calls].count(f"{HUB}/v2/") == 1


def test_login_to_docker_hub_stores_the_v1_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import io
    import json
    import sys

    from imagekit.cli import main

    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    monkeypatch.setenv("IMAGEKIT_CERTS_D", str(tmp_path))
    monkeypatch.delenv("REGISTRY_AUTH_FILE", raising=False)
    monkeypatch.setattr(sys, "stdin", io.StringIO("hub-PAT-secret\n"))
    with responses.RequestsMock() as mock:
        mock.get(f"{HUB}/v2/", status=401, headers={"WWW-Authenticate": CHALLENGE})
        token_answer(mock)
        mock.get(f"{HUB}/v2/", json={})
        main(["login", "-u", "hubuser", "--password-stdin"])
        (token_call,) = calls_to(mock, AUTH)
        assert parse_qs(urlsplit(token_call.request.url).query) == {"service": ["registry.docker.io"], "account": ["hubuser"]}
        assert calls_to(mock, f"{HUB}/v2/")[-1].request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert capsys.readouterr().out == "Login Succeeded\n"
    auths = json.loads((tmp_path / "docker" / "config.json").read_text())["auths"]
    assert list(auths) == ["https://index.docker.io/v1/"]


def test_oversized_or_garbage_error_bodies_give_a_short_message(hub: responses.RequestsMock, tmp_path: Path) -> None:
    token_answer(hub)
    hub.get(MANIFEST_URL, status=400, body=b'{"errors": [' + b" " * (1 << 20) + b"]}")
    hub.get(f"{HUB}/v2/library/ubuntu/tags/list", status=404, body=b"\xff\xfe<html>not json")
    t = transport(tmp_path)
    with pytest.raises(RegistryError) as caught:
        t.request("GET", MANIFEST_URL, scopes=[pull_scope("library/ubuntu")], stream=True)
    assert str(caught.value) == "GET /v2/library/ubuntu/manifests/22.04: HTTP 400"
    with pytest.raises(RegistryError) as caught:
        t.request("GET", "/v2/library/ubuntu/tags/list", scopes=[pull_scope("library/ubuntu")])
    assert str(caught.value) == "GET /v2/library/ubuntu/tags/list: HTTP 404" and not caught.value.temporary
