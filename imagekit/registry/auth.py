"""Authorization values for a registry: Basic headers, bearer-token requests and the token cache.

The token dance (distribution docs/spec/auth/token.md): a Bearer challenge names a `realm` and a
`service`; we ask the realm for a token covering our scopes (repeated `scope` params), anonymously or
with Basic credentials (or, with an identity token, by the OAuth2 refresh-token grant), read `token`
or its OAuth2 alias `access_token`, and keep it until shortly before `expires_in` (default 60 s) runs
out. Tokens are cached per (realm, service) and scope set; a cached token serves any request whose
scopes it covers. This module builds requests and reads answers; the transport sends them.

Imports: stdlib, requests and imagekit.errors / imagekit.registry only.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import requests

from imagekit.errors import AuthError
from imagekit.registry.challenges import Challenge, scopes_cover
from imagekit.registry.credentials import Credentials
from imagekit.values import field, value

DEFAULT_EXPIRES_IN = 60
_CLIENT_ID = "imagekit"


def basic_authorization(credentials: Credentials) -> str:
    """The `Authorization` value for HTTP Basic with these credentials."""
    pair = f"{credentials.username}:{credentials.password}".encode()
    return "Basic " + base64.b64encode(pair).decode("ascii")


@value
class Token:
    """A bearer token, the scopes it was asked for, and when (monotonic clock) to stop using it."""

    value: str = field(repr=False)
    scopes: tuple[str, ...]
    refresh_at: float


@value
class TokenRequest:
    """How to ask the realm for a token: method, URL, params or form, and whether Basic auth goes along."""

    method: str
    url: str
    params: tuple[tuple[str, str], ...] = ()
    form: tuple[tuple[str, str], ...] = ()
    basic: Credentials | None = field(default=None, repr=False)


def token_request(challenge: Challenge, scopes: Sequence[str], credentials: Credentials | None) -> TokenRequest:
    """The request that asks `challenge`'s realm for `scopes` with `credentials` (None: anonymous)."""
    realm = challenge.get("realm")
    service = challenge.get("service")
    if credentials is not None and credentials.identity_token:
        form = [("grant_type", "refresh_token"), ("refresh_token", credentials.identity_token), ("client_id", _CLIENT_ID)]
        if service:
            form.append(("service", service))
        if scopes:
            form.append(("scope", " ".join(scopes)))
        return TokenRequest("POST", realm, form=tuple(form))
    params = [("service", service)] if service else []
    params += [("scope", scope) for scope in scopes]
    if credentials is not None and credentials.username:
        params.append(("account", credentials.username))
        return TokenRequest("GET", realm, params=tuple(params), basic=credentials)
    return TokenRequest("GET", realm, params=tuple(params))


def read_token(response: requests.Response, scopes: Sequence[str], now: float) -> Token:
    """The token in a realm's 200 answer; `now` is the monotonic time the request was sent."""
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise AuthError("token server answered without a JSON object", status=response.status_code)
    value = body.get("token") or body.get("access_token")
    if not isinstance(value, str) or not value:
        raise AuthError("token server answered without a token", status=response.status_code)
    expires_in = body.get("expires_in")
    lifetime = float(expires_in) if isinstance(expires_in, (int, float)) and expires_in > 0 else DEFAULT_EXPIRES_IN
    # Refresh a little early so that a token never expires between our check and the registry's.
    return Token(value, tuple(scopes), now + lifetime - min(10.0, lifetime / 10))


class TokenCache:
    """Unexpired tokens per (realm, service); a lookup returns one whose scopes cover the request."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._tokens: dict[tuple[str, str], list[Token]] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str], scopes: Sequence[str]) -> Token | None:
        now = self.clock()
        with self._lock:
            live = [t for t in self._tokens.get(key, []) if t.refresh_at > now]
            self._tokens[key] = live
            return next((t for t in live if scopes_cover(t.scopes, scopes)), None)

    def put(self, key: tuple[str, str], token: Token) -> None:
        with self._lock:
            kept = [t for t in self._tokens.get(key, []) if t.scopes != token.scopes]
            self._tokens[key] = [*kept, token]
