"""Image references, parsed and normalised exactly as Docker does (distribution/reference).

`ubuntu` means `docker.io/library/ubuntu:latest`; `user/app` means `docker.io/user/app:latest`; the
first path component is a registry host only if it contains `.` or `:`, is `localhost`, or has an
uppercase letter. Every part is validated against the distribution reference grammar, and a bad
reference is rejected with a message naming the part that is wrong.

Imports: stdlib and imagekit.errors only (the digest check is inlined to keep this module a leaf).
"""

from __future__ import annotations

import re

from imagekit.errors import BadReference
from imagekit.values import value

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
OFFICIAL_NAMESPACE = "library"
DEFAULT_TAG = "latest"
NAME_MAX = 255

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[_.]|__|[-]+)"
_PATH_COMPONENT = re.compile(rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*")
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
# IPv6 hosts in brackets, without zone identifiers or embedded IPv4 (as distribution/reference).
_DOMAIN = re.compile(rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?")
# Go's \w is ASCII-only; Python's is Unicode unless told otherwise.
_TAG = re.compile(r"[\w][\w.-]{0,127}", re.ASCII)
_IDENTIFIER = re.compile(r"[a-f0-9]{64}")
_DIGEST = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}")
_DIGEST_HEX_LENGTH = {"sha256": 64, "sha384": 96, "sha512": 128}


@value
class Reference:
    """A normalised reference: registry domain, repository path, and a tag and/or a digest."""

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """`domain/path`, what Docker calls the repository name."""
        return f"{self.domain}/{self.path}"

    @property
    def api_host(self) -> str:
        """Where the registry API answers: Docker Hub's API is not at docker.io itself."""
        return DOCKER_HUB_API if self.domain == DOCKER_HUB else self.domain

    @property
    def familiar_name(self) -> str:
        """The repository as docker prints it (`ubuntu`, `user/app`, `localhost:5000/a`)."""
        if self.domain == DOCKER_HUB:
            return self.path.removeprefix(f"{OFFICIAL_NAMESPACE}/") if self.path.count("/") == 1 else self.path
        return self.name

    @property
    def familiar(self) -> str:
        """The short form docker prints (`ubuntu:22.04`, `user/app:v1`, `localhost:5000/a:b`)."""
        return self.familiar_name + self._suffix()

    def with_tag(self, tag: str) -> Reference:
        if not _TAG.fullmatch(tag):
            raise BadReference(tag, "tag must match [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
        return Reference(self.domain, self.path, tag, None)

    def _suffix(self) -> str:
        return (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")

    def __str__(self) -> str:
        return self.name + self._suffix()


def is_registry_host(text: str) -> bool:
    """True for a registry host as references spell it: `host[:port]` or `[ipv6][:port]`, no scheme or path."""
    return _DOMAIN.fullmatch(text) is not None


def _split_domain(name: str) -> tuple[str, str]:
    first, slash, rest = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost" or first.lower() != first):
        domain = DOCKER_HUB if first == "index.docker.io" else first
        return domain, rest
    return DOCKER_HUB, name


def parse_reference(text: str, *, default_tag: bool = True) -> Reference:
    """Parses and normalises `[registry/][repo/]name[:tag][@digest]`; raises BadReference on any flaw.

    With `default_tag`, a reference with neither tag nor digest gets `latest`, as `docker pull` does.
    """
    if not isinstance(text, str) or not text:
        raise BadReference(str(text), "reference is empty")
    if text != text.strip() or any(c.isspace() for c in text):
        raise BadReference(text, "reference contains whitespace")
    if _IDENTIFIER.fullmatch(text):
        raise BadReference(text, "a 64-character hexadecimal string is an image ID, not a repository name")
    remainder, at, digest = text.partition("@")
    if at:
        _check_digest(text, digest)
    name, tag = remainder, None
    colon = remainder.rfind(":")
    if colon > remainder.rfind("/"):
        name, tag = remainder[:colon], remainder[colon + 1 :]
        if not _TAG.fullmatch(tag):
            raise BadReference(text, f"invalid tag {tag!r}: must match [A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}}")
    if not name:
        raise BadReference(text, "repository name is empty")
    domain, path = _split_domain(name)
    if domain != DOCKER_HUB or name.startswith(("docker.io/", "index.docker.io/")):
        if not is_registry_host(domain):
            raise BadReference(text, f"invalid registry host {domain!r}")
    if not path:
        raise BadReference(text, "repository path is empty")
    for component in path.split("/"):
        if not component:
            raise BadReference(text, "repository path has an empty component")
        if component.lower() != component:
            raise BadReference(text, f"repository name must be lowercase: {component!r}")
        if not _PATH_COMPONENT.fullmatch(component):
            raise BadReference(
                text, f"invalid repository path component {component!r}: lowercase letters, digits and separators (. _ __ -) only"
            )
    if domain == DOCKER_HUB and "/" not in path:
        path = f"{OFFICIAL_NAMESPACE}/{path}"
    if len(path) > NAME_MAX:
        # distribution/reference limits the normalised path (without the registry host), not the whole name.
        raise BadReference(text, f"repository path {path[:40]!r}... is {len(path)} characters, over {NAME_MAX}")
    if tag is None and not at and default_tag:
        tag = DEFAULT_TAG
    return Reference(domain, path, tag, digest or None)


def _check_digest(text: str, digest: str) -> None:
    if not _DIGEST.fullmatch(digest):
        raise BadReference(text, f"invalid digest {digest!r}: expected algorithm:hex with at least 32 hex digits")
    algorithm, _, hex_part = digest.partition(":")
    expected = _DIGEST_HEX_LENGTH.get(algorithm)
    if expected is None:
        raise BadReference(text, f"unsupported digest algorithm {algorithm!r} (sha256, sha384 or sha512)")
    if len(hex_part) != expected or hex_part != hex_part.lower():
        raise BadReference(text, f"invalid {algorithm} digest {hex_part!r}: expected {expected} lowercase hex characters")
