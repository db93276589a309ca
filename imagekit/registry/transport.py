"""HTTP to one registry: scheme and TLS choice, authentication, retries, and error translation.

Everything above this module speaks in paths (`/v2/<name>/blobs/<digest>`) and scopes
(`repository:<name>:pull`); this module decides https or http, attaches credentials, answers auth
challenges, retries what is temporary, and turns every failure into a RegistryError one-liner.

CONTRACT (stable for client.py / transfer.py):
    Transport(registry_host, *, insecure=False, tls_verify=True, credentials=None, debug=False)
    .base_url                         -> "https://host" or "http://host"
    .request(method, path_or_url, *, scopes, expected=(200,), headers=None, params=None,
             data=None, stream=False, allow_redirects=True) -> requests.Response
        `path_or_url` is a path below base_url or an absolute URL (a Location header).
        A response whose status is not in `expected` raises RegistryError (AuthError for 401/403)
        carrying the registry's error codes; connection errors raise RegistryError(temporary=True).
"""

from __future__ import annotations

import datetime
import email.utils
import ipaddress
from collections.abc import Mapping, Sequence
from typing import Any

import requests

from imagekit.errors import AuthError, RegistryError

_LOOPBACK_NAMES = {"localhost"}


def is_loopback(host: str) -> bool:
    """True for localhost, 127.0.0.0/8 and ::1 (with or without a port): where Docker allows plain HTTP."""
    name = host
    if name.startswith("["):
        name = name[1 : name.index("]")]
    elif name.count(":") == 1:
        name = name.split(":")[0]
    if name in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class Transport:
    """One registry's HTTP session (connection pool, auth state)."""

    def __init__(
        self,
        registry: str,
        *,
        insecure: bool = False,
        tls_verify: bool = True,
        credentials: Any = None,
        debug: bool = False,
    ) -> None:
        self.registry = registry
        self.insecure = insecure or is_loopback(registry)
        self.tls_verify = tls_verify
        self.credentials = credentials
        self.debug = debug
        self.session = requests.Session()
        self.base_url = f"{'http' if self.insecure else 'https'}://{registry}"

    def url(self, path_or_url: str) -> str:
        return path_or_url if "://" in path_or_url else self.base_url + path_or_url

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
    ) -> requests.Response:
        url = self.url(path_or_url)
        try:
            response = self.session.request(
                method,
                url,
                headers=dict(headers or {}),
                params=params,
                data=data,
                stream=stream,
                allow_redirects=allow_redirects,
                verify=self.tls_verify,
                timeout=(10, 60),
            )
        except requests.RequestException as err:
            raise RegistryError(f"cannot reach {self.registry}: {type(err).__name__}", url=url, temporary=True) from err
        if response.status_code not in expected:
            raise error_from_response(response, method)
        return response


def error_from_response(response: requests.Response, method: str) -> RegistryError:
    """A RegistryError (or AuthError) from a registry's error body: `{"errors": [{"code", "message"}]}`."""
    codes: tuple[str, ...] = ()
    detail = ""
    try:
        body = response.json()
        errors = body.get("errors") if isinstance(body, dict) else None
        if isinstance(errors, list):
            codes = tuple(str(e.get("code", "")) for e in errors if isinstance(e, dict))
            detail = "; ".join(str(e.get("message", e.get("code", ""))) for e in errors if isinstance(e, dict))[:300]
    except ValueError:
        pass
    status = response.status_code
    url = response.request.url if response.request is not None else response.url
    path = requests.utils.urlparse(url).path if url else ""
    message = f"{method} {path}: HTTP {status}" + (f" {', '.join(codes)}" if codes else "") + (f": {detail}" if detail else "")
    kind = AuthError if status in (401, 403) else RegistryError
    return kind(
        message,
        status=status,
        codes=codes,
        url=url,
        temporary=status in (429, 502, 503, 504) or status >= 500,
        retry_after=retry_after_seconds(response.headers.get("Retry-After")),
    )


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds from now: delay-seconds or an HTTP-date (RFC 9110 10.2.3); None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - datetime.datetime.now(datetime.timezone.utc)).total_seconds())
