"""TLS trust for registries: which CAs verify a host, and what a failed handshake means.

Trust is the system CA bundle, replaced by `REQUESTS_CA_BUNDLE`/`CURL_CA_BUNDLE`/`SSL_CERT_FILE` when
set, plus per-registry CAs laid out as Docker does: `<certs dir>/<host[:port]>/*.crt`, with an optional
client certificate pair `*.cert` + `*.key` (docker docs "Verify repository client with certificates").
The certs directory is `certs_dir` when given, else `$IMAGEKIT_CERTS_D`, else `/etc/docker/certs.d`
and `/etc/containers/certs.d`. A handshake failure is classified so that the transport can refuse a
bad certificate loudly, while a host allowed plain HTTP may fall back to it for any other TLS failure.

Imports: stdlib and requests only.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from requests.adapters import HTTPAdapter

DEFAULT_CERTS_DIRS = (Path("/etc/docker/certs.d"), Path("/etc/containers/certs.d"))
CERTS_DIR_ENV = "IMAGEKIT_CERTS_D"


def ca_bundle(env: Mapping[str, str] | None = None) -> str | bool:
    """The CA bundle for verification: the environment's choice, else the system bundle, else certifi's."""
    env = os.environ if env is None else env
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"):
        if env.get(name):
            return env[name]
    paths = ssl.get_default_verify_paths()
    for candidate in (paths.cafile, paths.capath):
        if candidate and os.path.exists(candidate):
            return candidate
    return True


def certs_dirs(certs_dir: Path | None = None, env: Mapping[str, str] | None = None) -> tuple[Path, ...]:
    """Where per-registry certificate directories live, most specific first."""
    env = os.environ if env is None else env
    if certs_dir is not None:
        return (Path(certs_dir),)
    if env.get(CERTS_DIR_ENV):
        return (Path(env[CERTS_DIR_ENV]),)
    return DEFAULT_CERTS_DIRS


def host_context(host: str, dirs: tuple[Path, ...], bundle: str | bool) -> ssl.SSLContext | None:
    """An SSL context trusting `bundle` plus `<dir>/<host>/*.crt` (and its client cert), or None if no such dir."""
    for base in dirs:
        directory = base / host
        if not directory.is_dir():
            continue
        cas = sorted(directory.glob("*.crt"))
        certs = sorted(directory.glob("*.cert"))
        if not cas and not certs:
            continue
        context = _base_context(bundle)
        for ca in cas:
            context.load_verify_locations(cafile=str(ca))
        for cert in certs:
            key = cert.with_suffix(".key")
            if key.is_file():
                context.load_cert_chain(str(cert), str(key))
        return context
    return None


def _base_context(bundle: str | bool) -> ssl.SSLContext:
    if isinstance(bundle, str) and os.path.isdir(bundle):
        return ssl.create_default_context(capath=bundle)
    if isinstance(bundle, str):
        return ssl.create_default_context(cafile=bundle)
    return ssl.create_default_context()


class ContextAdapter(HTTPAdapter):
    """An HTTPAdapter whose connections use one SSLContext: mounted for a single registry's https:// prefix."""

    def __init__(self, context: ssl.SSLContext, **kwargs: Any) -> None:
        self._context = context
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["ssl_context"] = self._context
        super().init_poolmanager(*args, **kwargs)


def _chain(err: BaseException) -> Iterator[BaseException]:
    """The exception, its causes and the errors it wraps (requests -> urllib3 -> ssl), without cycles."""
    seen: set[int] = set()
    todo: list[BaseException] = [err]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        for nested in (current.__cause__, current.__context__, getattr(current, "reason", None), *current.args):
            if isinstance(nested, BaseException):
                todo.append(nested)


def certificate_problem(err: BaseException) -> str | None:
    """OpenSSL's verdict when `err` is a certificate verification failure, else None."""
    for current in _chain(err):
        if isinstance(current, ssl.SSLCertVerificationError):
            return current.verify_message or current.reason or "certificate verify failed"
    return None


def server_alert(err: BaseException) -> str | None:
    """The alert a TLS server ended the handshake with (OpenSSL's reason names it, e.g.
    SSLV3_ALERT_BAD_CERTIFICATE when a client certificate is wanted), else None. An alert proves the
    server speaks TLS, so it is never a reason to try plain HTTP."""
    for current in _chain(err):
        if isinstance(current, ssl.SSLError) and current.reason and "_ALERT_" in current.reason:
            return current.reason
    return None


def tls_problem(err: BaseException) -> str | None:
    """A short description when `err` comes from the TLS layer (handshake, protocol), else None."""
    for current in _chain(err):
        if isinstance(current, ssl.SSLError):
            return current.reason or current.__class__.__name__
    return None

