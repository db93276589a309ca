"""HTTP to one registry: scheme and TLS choice, authentication, retries, and error translation.

Everything above this module speaks in paths (`/v2/<name>/blobs/<digest>`) and scopes
(`repository:<name>:pull`); this module decides https or http, attaches credentials, answers auth
challenges, retries what is temporary, and turns every failure into a RegistryError one-liner.

CONTRACT (stable for client.py / transfer.py):
    Transport(registry_host, *, insecure=False, tls_verify=True, credentials=None, debug=False,
              certs_dir=None, retry=RetryPolicy(), timeout=(10, 60), scheme=None, prefix="")
    .base_url                         -> "https://host" or "http://host", followed by `prefix`
    .request(method, path_or_url, *, scopes, expected=(200,), headers=None, params=None,
             data=None, stream=False, allow_redirects=True, retry=None) -> requests.Response
        `path_or_url` is a path below base_url or an absolute URL (a Location header).
        A response whose status is not in `expected` raises RegistryError (AuthError for 401/403)
        carrying the registry's error codes; connection errors raise RegistryError(temporary=True).
        Requests without a body or with a bytes body are retried per `retry` (default: the
        transport's policy); streaming bodies are sent once. Use
        imagekit.registry.retry.retrying(fn, transport.retry) to retry a larger unit (re-opening a
        blob stream at an offset); it retries RegistryErrors marked temporary, honouring retry_after.
    .authenticate()                   -> checks the credentials against the registry (for login)
    .rate_limit                       -> the last RateLimit seen (Docker Hub's ratelimit-* headers) or None
    .close() / with Transport(...) as t:  releases the connection pool

Scheme: https, verified against the system CAs (or REQUESTS_CA_BUNDLE/SSL_CERT_FILE) plus the
registry's certs directory (see tls.py). Loopback hosts (as Docker allows) try https first and use
plain http when that fails for any reason but a certificate the server presented and we could not
verify, or a TLS alert ending the handshake (a server wanting a client certificate): those are
TLSErrors, never a downgrade. Hosts passed as `insecure` (--insecure-registry) skip
verification and may use http. A caller that knows the scheme (a mirror URL names it) passes `scheme`:
no probing then, and "http" is refused for a host that is neither loopback nor insecure. `prefix` is a
path the API lives under (a mirror at `https://host/some/path` answers `/some/path/v2/...`), as
distribution's URL builder roots its routes at the endpoint's path.
Authorization goes only to the registry's own host, and over plain http only when the registry itself
speaks it: redirects are followed here, and a hop to another host (Docker Hub's 307 to its CDN) or
from https down to http is sent without it. Debug logs carry method, URL without query,
and status; never headers, tokens or passwords.
"""

from __future__ import annotations

import ipaddress
import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import requests
import urllib3

from imagekit import values
from imagekit.errors import AuthError, RegistryError, TLSError
from imagekit.log import logger
from imagekit.registry import tls
from imagekit.registry.auth import TokenCache, basic_authorization, read_token, token_request
from imagekit.registry.challenges import Challenge, merge_scopes, parse_challenges
from imagekit.registry.credentials import Credentials
from imagekit.registry.retry import NO_RETRY, RetryPolicy, parse_retry_after, retrying
from imagekit.values import value

log = logger("imagekit.registry")

_LOOPBACK_NAMES = {"localhost"}
_REDIRECTS = (301, 302, 303, 307, 308)
MAX_REDIRECTS = 10
_ERROR_BODY_LIMIT = 64 * 1024
#: The most a response that is not streamed may carry (tokens, the ping, tag lists, their errors): requests would
#: otherwise read a hostile registry's endless body into memory before anyone could look at its size.
BODY_LIMIT = 16 * 1024 * 1024
_PROBE_TIMEOUT = (3.0, 5.0)  # https probe of a loopback/insecure host: a TLS server answers in milliseconds


def is_loopback(host: str) -> bool:
    """True for localhost, 127.0.0.0/8 and ::1 (with or without a port): where Docker allows plain HTTP."""
    name = host
    if name.startswith("["):
        name = name[1 : name.index("]")]
    elif name.count(":") == 1:
        name = name.split(":")[0]
    if name.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def redact_url(url: str) -> str:
    """The URL without query or fragment: queries may carry tokens or signed CDN parameters."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


@value
class RateLimit:
    """Docker Hub's pull allowance from `ratelimit-limit`/`ratelimit-remaining` (`100;w=21600`)."""

    limit: int
    remaining: int
    window: int | None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> RateLimit | None:
        limit, remaining = headers.get("ratelimit-limit"), headers.get("ratelimit-remaining")
        if not limit or not remaining:
            return None
        try:
            window = next((int(p[2:]) for p in limit.split(";")[1:] if p.strip().startswith("w=")), None)
            return cls(int(limit.split(";")[0]), int(remaining.split(";")[0]), window)
        except ValueError:
            return None

    def __str__(self) -> str:
        per = f" per {self.window} s" if self.window else ""
        return f"{self.remaining} of {self.limit} pulls left{per}"


@value
class _Call:
    """One request as the caller asked for it; redirects derive new calls from it."""

    method: str
    url: str
    headers: Mapping[str, str]
    params: Mapping[str, str] | None
    data: Any
    stream: bool
    allow_redirects: bool

    @property
    def replayable(self) -> bool:
        """No body or an in-memory one: safe to send again (retries, re-authentication)."""
        return self.data is None or isinstance(self.data, (bytes, bytearray, memoryview, str))


class _NoAuth(requests.auth.AuthBase):
    """Stops requests from filling Authorization from ~/.netrc: this module alone decides who gets it."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        return request


_NO_AUTH = _NoAuth()


class Transport:
    """One registry's HTTP session (connection pool, scheme, TLS trust, auth state); safe to share across threads."""

    def __init__(
        self,
        registry: str,
        *,
        insecure: bool = False,
        tls_verify: bool = True,
        credentials: Credentials | None = None,
        debug: bool = False,
        certs_dir: Path | None = None,
        retry: RetryPolicy = RetryPolicy(),
        timeout: tuple[float, float] = (10, 60),
        scheme: str | None = None,
        prefix: str = "",
    ) -> None:
        self.registry = registry
        self.prefix = prefix
        self.insecure = insecure or is_loopback(registry)
        if scheme == "http" and not self.insecure:
            raise RegistryError(f"plain HTTP to {registry} is not allowed: use https, or list it with --insecure-registry")
        self.tls_verify = tls_verify and not insecure
        self.credentials = credentials
        self.debug = debug
        self.retry = retry
        self.timeout = timeout
        self.rate_limit: RateLimit | None = None
        self.session = requests.Session()
        self._verify: str | bool = tls.ca_bundle() if self.tls_verify else False
        if not self.tls_verify:
            # Asked for explicitly: say it once here instead of a urllib3 warning per request.
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
            log.warning("TLS certificates of %s are not verified", registry)
        context = tls.host_context(registry, tls.certs_dirs(certs_dir), self._verify) if self.tls_verify else None
        if context is not None:
            self.session.mount(f"https://{registry}/", tls.ContextAdapter(context))
        self._scheme: str | None = scheme or (None if self.insecure else "https")
        self._challenges: tuple[Challenge, ...] | None = None
        self._tokens = TokenCache()
        self._issued: set[str] = set()
        self._warned: set[str] = set()
        self._lock = threading.RLock()

    def close(self) -> None:
        """Releases the connection pool; the transport must not be used afterwards."""
        self.session.close()

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- scheme and ping -------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """`https://host`, or `http://host` for a loopback/insecure host whose server does not speak TLS; then the prefix."""
        if self._scheme is None:
            self.ping()
        return self._root(self._scheme)

    def _root(self, scheme: str | None) -> str:
        return f"{scheme}://{self.registry}{self.prefix}"

    def url(self, path_or_url: str) -> str:
        return path_or_url if "://" in path_or_url else self.base_url + path_or_url

    def ping(self) -> tuple[Challenge, ...]:
        """`GET /v2/` once: settles the scheme and returns the auth challenges (empty when open)."""
        with self._lock:
            if self._challenges is None:
                response = retrying(self._ping_once, self.retry, what=f"ping {self.registry}")
                response.close()
                self._challenges = self._challenges_of(response) if response.status_code == 401 else ()
            return self._challenges

    def _ping_once(self) -> requests.Response:
        """One ping; for a host allowed plain HTTP, settles the scheme: https unless the server lacks TLS.

        A certificate the server presents but we cannot verify is an error, never a reason to use http, and
        so is a TLS alert ending the handshake (a server that wants a client certificate speaks TLS).
        Any other failure of the https attempt (no TLS on the port, a server that hangs or hangs up on a
        ClientHello) leads to plain http; the probe uses a short timeout since the host is loopback or
        explicitly insecure. A server that answered over TLS speaks it: its body is read (with the cap, and
        so the connection is kept for the next request) only once https is settled, so that a body cut off
        or over the cap is that answer's error, not a reason for http.
        """
        if self._scheme is not None:
            return self._send_raw("GET", self._root(self._scheme) + "/v2/", {}, None, None, False)
        try:
            response = self._send_raw("GET", self._root("https") + "/v2/", {}, None, None, True, timeout=_PROBE_TIMEOUT)
        except RegistryError as err:
            cause = err.__cause__
            if isinstance(err, TLSError) and cause is not None and (tls.certificate_problem(cause) or tls.server_alert(cause)):
                raise
            if self.debug:
                log.debug("%s: no TLS (%s); using plain http, allowed for this host", self.registry, err)
            response = self._send_raw("GET", self._root("http") + "/v2/", {}, None, None, False)
            self._scheme = "http"
            return response
        self._scheme = "https"
        _read_capped(response, f"GET {redact_url(response.url)}")
        return response

    def authenticate(self) -> None:
        """Proves the credentials to the registry, as `docker login` does; raises AuthError if refused."""
        with self._lock:
            self._challenges = None
        self.request("GET", "/v2/", scopes=())

    # -- requests --------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path_or_url: str,
        *,
        scopes: Sequence[str] = (),
        expected: Sequence[int] = (200,),
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        data: Any = None,
        stream: bool = False,
        allow_redirects: bool = True,
        retry: RetryPolicy | None = None,
    ) -> requests.Response:
        call = _Call(method, self.url(path_or_url), dict(headers or {}), params, data, stream, allow_redirects)
        policy = retry or (self.retry if call.replayable else NO_RETRY)
        return retrying(lambda: self._request_once(call, tuple(scopes), expected), policy, what=f"{method} {redact_url(call.url)}")

    def _request_once(self, call: _Call, scopes: tuple[str, ...], expected: Sequence[int]) -> requests.Response:
        """One attempt: authorize up front from the ping's challenges; on 401 re-authenticate once."""
        response = self._send(call, self._authorization(self.ping(), scopes, force=False))
        if response.status_code == 401 and call.replayable and self._carries_auth(call.url):
            challenges = self._challenges_of(response)
            if challenges:
                with self._lock:  # a registry whose /v2/ was open may guard repositories: ask up front next time
                    self._challenges = challenges
            wanted = merge_scopes([*scopes, *_challenge_scopes(challenges)])
            renewed = self._authorization(challenges, wanted, force=True)
            if renewed is not None:
                response.close()
                if self.debug:
                    log.debug("re-authenticating for %s", ", ".join(wanted) or "no scope")
                response = self._send(call, renewed)
        if response.status_code not in expected:
            raise self._error(response, call.method)
        return response

    def _send(self, call: _Call, authorization: str | None) -> requests.Response:
        """Sends one request and follows redirects itself, giving Authorization only to the registry's host."""
        for _ in range(MAX_REDIRECTS + 1):
            headers = dict(call.headers)
            if authorization and self._carries_auth(call.url):
                headers["Authorization"] = authorization
            response = self._send_raw(call.method, call.url, headers, call.params, call.data, call.stream)
            location = response.headers.get("Location")
            if not call.allow_redirects or response.status_code not in _REDIRECTS or not location:
                return response
            response.close()
            if response.status_code == 303 or (response.status_code in (301, 302) and call.method not in ("GET", "HEAD")):
                call = values.replace(call, method="GET", data=None)
            call = values.replace(call, url=urljoin(response.url, location), params=None)
        raise RegistryError(f"{call.method} {redact_url(call.url)}: more than {MAX_REDIRECTS} redirects", url=redact_url(call.url))

    def _send_raw(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        params: Any,
        data: Any,
        stream: bool,
        *,
        auth: requests.auth.AuthBase = _NO_AUTH,
        timeout: tuple[float, float] | None = None,
    ) -> requests.Response:
        """One HTTP exchange, no redirects; transport failures become RegistryError/TLSError one-liners."""
        started = time.monotonic()
        try:
            response = self.session.request(
                method,
                url,
                headers=dict(headers),
                params=params,
                data=data,
                stream=True,  # always: a body that is not streamed is read here, with BODY_LIMIT
                allow_redirects=False,
                verify=self._verify,
                timeout=timeout or self.timeout,
                auth=auth,
            )
        except requests.exceptions.SSLError as err:
            raise self._tls_error(url, err) from err
        except (requests.ConnectionError, requests.Timeout) as err:
            if self.debug:
                log.debug("%s %s -> %s", method, redact_url(url), type(err).__name__)
            raise RegistryError(
                f"cannot reach {urlsplit(url).netloc}: {_describe(err)}", url=redact_url(url), temporary=True
            ) from err
        except requests.exceptions.InvalidURL as err:
            raise RegistryError(f"invalid registry address {urlsplit(url).netloc!r}: {_address_problem(url)}", url=redact_url(url)) from err
        except requests.RequestException as err:
            raise RegistryError(f"{method} {redact_url(url)}: {type(err).__name__}", url=redact_url(url)) from err
        if not stream:
            _read_capped(response, f"{method} {redact_url(url)}")
        if self.debug:
            log.debug("%s %s -> %d (%.0f ms)", method, redact_url(url), response.status_code, (time.monotonic() - started) * 1000)
        self._observe(response)
        return response

    def _observe(self, response: requests.Response) -> None:
        """Notes rate-limit headers and shows each distinct `Warning: 299` once (distribution-spec "Warnings")."""
        limit = RateLimit.from_headers(response.headers)
        if limit is not None:
            self.rate_limit = limit
            if self.debug:
                log.debug("rate limit: %s", limit)
        raw_headers = getattr(response.raw, "headers", None)
        for warning in raw_headers.getlist("Warning") if isinstance(raw_headers, urllib3.HTTPHeaderDict) else ():
            if warning.startswith("299") and warning not in self._warned:
                self._warned.add(warning)
                log.warning("registry %s warns: %s", self.registry, warning[3:].strip(' -"')[:300])

    def _carries_auth(self, url: str) -> bool:
        """Whether `url` may receive Authorization: the registry's own host, over https unless the
        registry itself speaks plain http (a redirect from https down to http is a downgrade)."""
        parts = urlsplit(url)
        return parts.netloc.lower() == self.registry.lower() and parts.scheme in ("https", self._scheme)

    # -- authorization ---------------------------------------------------------------------------

    def _authorization(self, challenges: Sequence[Challenge], scopes: Sequence[str], *, force: bool) -> str | None:
        """The Authorization value answering `challenges` for `scopes`; None when we have nothing to offer."""
        for challenge in challenges:
            if challenge.scheme == "bearer":
                return "Bearer " + self._token(challenge, merge_scopes(scopes), force=force)
        for challenge in challenges:
            if challenge.scheme == "basic" and self.credentials is not None and self.credentials.username:
                return basic_authorization(self.credentials)
        return None

    def _token(self, challenge: Challenge, scopes: tuple[str, ...], *, force: bool) -> str:
        realm = challenge.get("realm")
        if not realm or urlsplit(realm).scheme not in ("http", "https"):
            raise AuthError(f"{self.registry} sent a Bearer challenge without a usable realm")
        key = (realm, challenge.get("service"))
        with self._lock:
            cached = None if force else self._tokens.get(key, scopes)
            if cached is not None:
                return cached.value
            ask = token_request(challenge, scopes, self.credentials)
            realm_parts = urlsplit(realm)
            if (ask.basic or ask.form) and realm_parts.scheme != "https" and not (
                is_loopback(realm_parts.netloc) or (self.insecure and realm_parts.netloc == self.registry)
            ):
                raise AuthError(f"refusing to send credentials for {self.registry} to a plain-HTTP token realm ({realm_parts.netloc})")
            started = self._tokens.clock()
            auth: requests.auth.AuthBase = _NO_AUTH
            if ask.basic is not None:
                auth = requests.auth.HTTPBasicAuth(ask.basic.username, ask.basic.password)

            def fetch() -> requests.Response:
                response = self._send_raw(ask.method, ask.url, {}, list(ask.params) or None, list(ask.form) or None, False, auth=auth)
                if response.status_code >= 500 or response.status_code == 429:
                    raise self._error(response, ask.method)
                return response

            response = retrying(fetch, self.retry, what=f"token from {realm_parts.netloc}")
            if response.status_code != 200:
                raise self._token_refused(response, realm_parts.netloc)
            token = read_token(response, scopes, started)
            self._issued.add(token.value)
            self._tokens.put(key, token)
            if self.debug:
                log.debug("token for %s from %s", ", ".join(scopes) or "no scope", redact_url(realm))
            return token.value

    def _token_refused(self, response: requests.Response, realm_host: str) -> AuthError:
        who = "anonymous access" if self.credentials is None else "the credentials"
        detail = _body_detail(_error_body(response))
        message = f"token server {realm_host} refused {who} for {self.registry} (HTTP {response.status_code})"
        return AuthError(self._redact(message + (f": {detail}" if detail else "")), status=response.status_code)

    def _challenges_of(self, response: requests.Response) -> tuple[Challenge, ...]:
        header = response.headers.get("WWW-Authenticate", "")
        try:
            challenges = parse_challenges(header)
            merge_scopes(_challenge_scopes(challenges))  # the scopes a 401 names are asked for: checked here, once
        except ValueError as err:  # ChallengeSyntaxError, or a scope that is not type:name:actions
            raise AuthError(f"{self.registry} sent a malformed WWW-Authenticate header: {err}", status=response.status_code) from None
        return challenges

    # -- errors ----------------------------------------------------------------------------------

    def _error(self, response: requests.Response, method: str) -> RegistryError:
        err = error_from_response(response, method, redact=self._redact)
        if response.status_code == 401 and self.credentials is None:
            err.args = (f"{err.args[0]} (log in with `imagekit login {self.registry}`)",)
        if response.status_code == 429 and self.rate_limit is not None:
            err.args = (f"{err.args[0]} ({self.rate_limit})",)
        response.close()
        return err

    def _tls_error(self, url: str, err: requests.exceptions.SSLError) -> TLSError:
        host = urlsplit(url).netloc
        problem = tls.certificate_problem(err)
        if problem is not None:
            hint = f"supply the CA (REQUESTS_CA_BUNDLE, or {tls.CERTS_DIR_ENV}/{host}/ca.crt) or pass --tls-verify=false"
            return TLSError(f"TLS verification of {host} failed: {problem}; {hint}", url=redact_url(url))
        alert = tls.server_alert(err)
        if alert is not None and "CERTIFICATE" in alert:
            hint = f"the registry wants a client certificate it trusts ({tls.CERTS_DIR_ENV}/{host}/client.cert and client.key)"
            return TLSError(f"TLS handshake with {host} failed: {alert}; {hint}", url=redact_url(url))
        return TLSError(f"TLS handshake with {host} failed: {tls.tls_problem(err) or 'protocol error'}", url=redact_url(url))

    def _redact(self, text: str) -> str:
        secrets = set(self._issued) | set(self.credentials.secrets if self.credentials else ())
        for secret in sorted(secrets, key=len, reverse=True):
            text = text.replace(secret, "***")
        return text


def _challenge_scopes(challenges: Sequence[Challenge]) -> list[str]:
    scopes: list[str] = []
    for challenge in challenges:
        if challenge.scheme == "bearer" and challenge.get("scope"):
            scopes.extend(challenge.get("scope").split())  # space-separated (RFC 6750); a run of blanks is one
    return scopes


def _address_problem(url: str) -> str:
    """Why requests refused a registry URL, in words (it names only its exception class)."""
    try:
        urlsplit(url).port
    except ValueError:
        return "the port must be a number from 1 to 65535"
    return "not a host name or address a connection can be made to"


def _describe(err: Exception) -> str:
    """A short cause for a connection failure (refused, timed out, reset) without URLs or queries."""
    text = str(err)
    for needle, words in (
        ("Connection refused", "connection refused"),
        ("timed out", "timed out"),
        ("Name or service not known", "unknown host"),
        ("Connection reset", "connection reset"),
        ("RemoteDisconnected", "connection closed by the server"),
    ):
        if needle in text:
            return words
    return type(err).__name__


def _read_up_to(response: requests.Response, limit: int) -> bytes:
    """The body of a streamed response, read until it ends or `limit` bytes are in hand (the rest is left unread:
    a hostile registry may stream forever). Transport failures raise requests' exceptions."""
    body = bytearray()
    for chunk in response.iter_content(min(limit, 64 * 1024)):
        body += chunk
        if len(body) >= limit:
            break
    return bytes(body)


def _read_capped(response: requests.Response, what: str) -> None:
    """Reads the body of a response requested with stream=True into `response.content`, as requests would have
    read it, but refuses one over BODY_LIMIT (and closes the connection) instead of reading on."""
    try:
        body = _read_up_to(response, BODY_LIMIT + 1)
    except requests.RequestException as err:
        raise RegistryError(f"{what}: {type(err).__name__} while reading the response", url=redact_url(response.url), temporary=True) from err
    if len(body) > BODY_LIMIT:
        response.close()
        raise RegistryError(f"{what}: the response body is over the {BODY_LIMIT}-byte limit", url=redact_url(response.url))
    response._content = body  # what requests' own non-streamed read leaves: .content, .json() work as before
    response._content_consumed = True


def _error_body(response: requests.Response) -> Any:
    """The JSON of an error body, reading at most 64 KiB of it (a hostile registry may stream forever)."""
    try:
        body = _read_up_to(response, _ERROR_BODY_LIMIT)
        return None if len(body) >= _ERROR_BODY_LIMIT else json.loads(body.decode("utf-8"))
    except (requests.RequestException, UnicodeDecodeError, ValueError):
        return None


def _body_detail(body: Any) -> str:
    """The registry's own words from an error body (`errors[].message` or `details`), on one line."""
    text = ""
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(errors, list):
            text = "; ".join(str(e.get("message") or e.get("code", "")) for e in errors if isinstance(e, dict))
        else:
            text = next((body[k] for k in ("details", "detail", "message", "error_description", "error") if isinstance(body.get(k), str)), "")
    return " ".join(text.split())[:300]


def error_from_response(
    response: requests.Response, method: str, *, redact: Callable[[str], str] | None = None
) -> RegistryError:
    """A RegistryError (or AuthError) from a registry's error body: `{"errors": [{"code", "message"}]}`."""
    body = _error_body(response)
    errors = body.get("errors") if isinstance(body, dict) else None
    codes = tuple(str(e.get("code", "")) for e in errors if isinstance(e, dict)) if isinstance(errors, list) else ()
    detail = _body_detail(body)
    status = response.status_code
    url = response.request.url if response.request is not None else response.url
    path = urlsplit(url).path if url else ""
    message = f"{method} {path}: HTTP {status}" + (f" {', '.join(codes)}" if codes else "") + (f": {detail}" if detail else "")
    if redact is not None:
        message = redact(message)
    kind = AuthError if status in (401, 403) else RegistryError
    return kind(
        message,
        status=status,
        codes=codes,
        url=redact_url(url) if url else None,
        temporary=status == 429 or status >= 500,
        retry_after=parse_retry_after(response.headers.get("Retry-After")),
    )
