"""WWW-Authenticate parsing (RFC 7235) and scope arithmetic, as registries actually send them."""

from __future__ import annotations

import pytest

from imagekit.registry.challenges import (
    Challenge,
    ChallengeSyntaxError,
    merge_scopes,
    parse_challenges,
    scopes_cover,
    split_scope,
)

HUB = 'Bearer realm="https://auth.docker.io/token",service="registry.docker.io"'

CASES = [
    (HUB, [("bearer", {"realm": "https://auth.docker.io/token", "service": "registry.docker.io"})]),
    # A quoted comma inside scope must not split the parameter (Docker Hub push challenge).
    (
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:u/app:pull,push"',
        [("bearer", {"realm": "https://auth.docker.io/token", "service": "registry.docker.io", "scope": "repository:u/app:pull,push"})],
    ),
    # distribution's insufficient_scope answer, with spaces after commas.
    (
        'Bearer realm="http://127.0.0.1:5001/token", service="reg", scope="repository:a/b:pull", error="insufficient_scope"',
        [("bearer", {"realm": "http://127.0.0.1:5001/token", "service": "reg", "scope": "repository:a/b:pull", "error": "insufficient_scope"})],
    ),
    ('Basic realm="Registry Realm"', [("basic", {"realm": "Registry Realm"})]),
    ("Basic", [("basic", {})]),
    ("basic REALM=unquoted", [("basic", {"realm": "unquoted"})]),
    # Several challenges folded into one header by the HTTP library.
    ('Bearer realm="a,b", service="s", Basic realm="x"', [("bearer", {"realm": "a,b", "service": "s"}), ("basic", {"realm": "x"})]),
    ('Basic realm="x", Bearer realm="y"', [("basic", {"realm": "x"}), ("bearer", {"realm": "y"})]),
    # Escaped quote and backslash inside a quoted string.
    (r'Basic realm="say \"hi\", C:\\dir"', [("basic", {"realm": 'say "hi", C:\\dir'})]),
    # token68 (with padding) followed by another challenge; empty list elements are allowed.
    ("Negotiate YWJj==, , Basic realm=r", [("negotiate", {}), ("basic", {"realm": "r"})]),
    ('  ,Bearer   realm = "r" ,  ', [("bearer", {"realm": "r"})]),
    ("", []),
]


@pytest.mark.parametrize(("header", "expected"), CASES, ids=[c[0][:40] or "empty" for c in CASES])
def test_parses_challenges(header: str, expected: list[tuple[str, dict[str, str]]]) -> None:
    got = parse_challenges(header)
    assert [(c.scheme, dict(c.params)) for c in got] == expected


def test_token68_is_kept() -> None:
    (negotiate, basic) = parse_challenges("Negotiate YWJj==, Basic realm=r")
    assert negotiate.token68 == "YWJj==" and basic.token68 is None


def test_parameter_lookup_is_case_insensitive() -> None:
    (challenge,) = parse_challenges('Bearer Realm="r",SERVICE="s"')
    assert challenge.get("realm") == "r" and challenge.get("Service") == "s" and challenge.get("scope") == ""
    assert isinstance(challenge, Challenge)


@pytest.mark.parametrize(
    "header",
    [
        'Bearer realm="unterminated',
        'Bearer realm="x" service="y"',  # missing comma between parameters
        'Bearer realm="x", realm="y"',  # repeated parameter
        "Bearer realm=x y",
        '=realm="x"',
        'Basic realm="x\\',
    ],
)
def test_rejects_malformed_headers(header: str) -> None:
    with pytest.raises(ChallengeSyntaxError):
        parse_challenges(header)


def test_scope_with_port_in_name() -> None:
    assert split_scope("repository:localhost:5000/a/b:pull,push") == ("repository", "localhost:5000/a/b", ("pull", "push"))
    with pytest.raises(ValueError):
        split_scope("repository")


def test_merge_scopes_unites_actions_per_repository() -> None:
    merged = merge_scopes(["repository:b:push", "repository:a:pull", "repository:b:pull", "repository:a:pull"])
    assert merged == ("repository:a:pull", "repository:b:pull,push")


def test_scopes_cover() -> None:
    granted = ["repository:a:pull,push", "repository:b:pull"]
    assert scopes_cover(granted, ["repository:a:pull"])
    assert scopes_cover(granted, ["repository:a:push", "repository:b:pull"])
    assert not scopes_cover(granted, ["repository:b:push"])
    assert not scopes_cover(granted, ["repository:c:pull"])
    assert scopes_cover(granted, [])
