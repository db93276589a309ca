"""Registry mirrors for Docker Hub pulls, as dockerd's `registry-mirrors`: which URLs are valid, and
pulling from the first source that serves.

A mirror is named by a URL, `http(s)://host[:port][/path]`, validated as moby's ValidateMirror does (a
scheme, a host, no query, fragment or user info); its path, if any, is where its API is rooted. Only
references to docker.io use mirrors, and only to pull: pushes and other registries never do.
Each mirror is a registry of its own (own transport, TLS trust and credentials, so Docker Hub's
credentials never reach it). A pull tries the mirrors in order and Docker Hub last; any registry
failure on a mirror (unreachable, 401, 404, 5xx, content that does not match its digest, a missing
blob) moves on to the next source, as moby's continueOnError does for mirror endpoints. The last
source fails as any pull does. Mirrors are an optimisation with a fallback behind them, so their
transports retry once (MIRROR_RETRY) rather than waiting through the full backoff before moving on.

Must not import imagekit.layout or imagekit.store.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar
from urllib.parse import urlsplit

from imagekit.errors import DigestMismatch, ImagekitError, InvalidManifest, PlatformNotFound, RegistryError
from imagekit.reference import DOCKER_HUB, Reference, is_registry_host
from imagekit.registry.client import Repository
from imagekit.registry.retry import RetryPolicy
from imagekit.values import value

T = TypeVar("T")
MIRROR_RETRY = RetryPolicy(attempts=2)
#: What a mirror may get wrong that another source may get right; anything else (the store, Ctrl-C) stops the pull.
FALLBACK_ERRORS = (RegistryError, DigestMismatch, InvalidManifest, PlatformNotFound)
# RFC 3986 path segments (pchar), without dot segments that could climb out of the prefix.
_SEGMENT = re.compile(r"[A-Za-z0-9._~!$&'()*+,;=:@%-]+")


class BadMirror(ImagekitError):
    """A registry mirror URL that is not `http(s)://host[:port][/path]`."""

    def __init__(self, text: str, problem: str) -> None:
        super().__init__(f"invalid registry mirror {text!r}: {problem}")
        self.text = text


@value
class Mirror:
    """A validated mirror: `url` normalised (lowercase host, no trailing slash); `path` is "" or "/a/b"."""

    scheme: str
    host: str
    path: str = ""

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}{self.path}"

    def __str__(self) -> str:
        return self.url


def parse_mirror(text: str) -> Mirror:
    """Parses one mirror URL; raises BadMirror naming it (a password in it is never echoed back)."""
    scheme, sep, rest = text.partition("://")
    if not sep or not scheme:
        raise BadMirror(text, "no scheme: it must start with https:// or http://")
    authority = rest.split("/", 1)[0]
    if "@" in authority:
        raise BadMirror(f"{scheme}://***@{rest.split('@', 1)[1]}", "a user name or password in the URL is not allowed; use `imagekit login`")
    if scheme.lower() not in ("http", "https"):
        raise BadMirror(text, f"unsupported scheme {scheme!r}: it must be https or http")
    if any(c.isspace() for c in text):
        raise BadMirror(text, "it contains whitespace")
    if "?" in text or "#" in text:
        raise BadMirror(text, "a query or fragment is not allowed")
    parts = urlsplit(text)
    host = parts.netloc.lower()
    if not is_registry_host(host):
        raise BadMirror(text, f"invalid host {parts.netloc!r}: expected host[:port]")
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port is not None and not 0 < port < 65536:
        raise BadMirror(text, "the port must be a number from 1 to 65535")
    segments = [s for s in parts.path.split("/") if s]
    for segment in segments:
        if segment in (".", "..") or not _SEGMENT.fullmatch(segment):
            raise BadMirror(text, f"invalid path segment {segment!r}")
    return Mirror(scheme.lower(), host, "".join(f"/{s}" for s in segments))


def parse_mirrors(entries: Iterable[str]) -> tuple[Mirror, ...]:
    """Mirrors from entries that may each hold several, comma-separated (`IMAGEKIT_REGISTRY_MIRRORS`); order kept."""
    return tuple(parse_mirror(item.strip()) for entry in entries for item in entry.split(",") if item.strip())


def uses_mirrors(ref: Reference) -> bool:
    """Only Docker Hub is mirrored (dockerd's rule): another registry's name says where its content lives."""
    return ref.domain == DOCKER_HUB


@value
class Source:
    """One place a pull may come from: a mirror's repository, or the reference's own registry (`mirror` None)."""

    repo: Repository
    mirror: Mirror | None = None

    def __str__(self) -> str:
        return f"mirror {self.mirror}" if self.mirror else self.repo.transport.registry


def first_serving(
    sources: Sequence[Source],
    attempt: Callable[[Source], T],
    on_fallback: Callable[[Source, ImagekitError, Source], None] = lambda *_: None,
) -> T:
    """`attempt(source)` for each source in order until one succeeds; returns its result.

    A failure in FALLBACK_ERRORS on any source but the last is reported to `on_fallback(failed, error,
    next)` and the next source is tried; the last source's failure, and any other error, is raised.
    `attempt` must leave nothing half-done that a later attempt could trip over (blobs written to a
    verifying store are fine: they are content-addressed).
    """
    if not sources:
        raise ValueError("first_serving needs at least one source")
    for source, following in zip(sources, sources[1:]):
        try:
            return attempt(source)
        except FALLBACK_ERRORS as err:
            on_fallback(source, err, following)
    return attempt(sources[-1])
