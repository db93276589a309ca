"""How imagekit reaches and trusts registries: RegistryOptions (the global trust settings as a value) and
`transport_for()`, the one way any caller (a CLI command, the builder pulling a FROM image) gets a
Transport to a registry.

The options are plain data, so the library never reads the command line: the CLI builds them from
`--insecure-registry`, `--tls-verify`, `--certs-dir`, `--registry-mirror` and `--debug`. A transport
from `transport_for` also carries the user's stored credentials for that registry (login, config.json,
helpers); a registry mirror is its own registry (its URL's scheme and path, its own host's
credentials, fewer retries).

`IMAGEKIT_DOCKER_HUB_API` (host[:port]) is a test hook: the address that answers for Docker Hub in
place of registry-1.docker.io, so tests can stand a local registry in for Docker Hub, which they must
never contact. Docker Hub's credentials still apply to it; nothing else changes.

Must not import imagekit.layout or imagekit.store.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from imagekit.reference import DOCKER_HUB, DOCKER_HUB_API, Reference
from imagekit.registry.client import Repository
from imagekit.registry.credentials import Credentials, CredentialStore, registry_hostname
from imagekit.registry.mirrors import MIRROR_RETRY, Mirror, parse_mirrors
from imagekit.registry.retry import RetryPolicy
from imagekit.registry.transport import Transport
from imagekit.values import value

DOCKER_HUB_API_ENV = "IMAGEKIT_DOCKER_HUB_API"


def _no_mirrors() -> tuple[str, ...]:
    return ()


@value
class RegistryOptions:
    """The trust and mirror settings every registry access shares (the CLI's global options).

    `registry_mirrors` are mirror URLs as given (each entry may hold several, comma-separated); when
    empty, `default_mirrors()` supplies them. It is called only when a Docker Hub pull needs mirrors,
    so a settings file behind it is read only then (and a broken one fails only those pulls).
    """

    insecure_registries: tuple[str, ...] = ()
    tls_verify: bool = True
    certs_dir: Path | None = None
    registry_mirrors: tuple[str, ...] = ()
    debug: bool = False
    default_mirrors: Callable[[], tuple[str, ...]] = _no_mirrors

    def mirrors(self) -> tuple[Mirror, ...]:
        """The Docker Hub mirrors to try, in order, validated (BadMirror names a malformed one)."""
        return parse_mirrors(self.registry_mirrors or self.default_mirrors())


def api_host(registry: str) -> str:
    """Where the API of a registry named as the user spells it (`docker.io`, `https://host:5000/`) answers."""
    host = registry_hostname(registry)
    return (os.environ.get(DOCKER_HUB_API_ENV) or DOCKER_HUB_API) if host == DOCKER_HUB else host


def is_insecure(host: str, insecure_registries: tuple[str, ...]) -> bool:
    """True when `host` (host[:port]) was listed with --insecure-registry, with or without its port."""
    listed = {registry_hostname(entry) for entry in insecure_registries}
    return host in listed or host.rsplit(":", 1)[0] in listed


def transport_for(target: str | Reference | Mirror, options: RegistryOptions, *, credentials: Credentials | None = None) -> Transport:
    """A Transport to the registry of `target` (a Reference, a registry name or a mirror) under `options`.

    Credentials default to what the user stored for that registry (login, config.json, helpers).
    """
    if isinstance(target, Mirror):
        name = host = target.host
        scheme, prefix, retry = target.scheme, target.path, MIRROR_RETRY
    else:
        name = target.domain if isinstance(target, Reference) else target
        host, scheme, prefix, retry = api_host(name), None, "", RetryPolicy()
    if credentials is None:
        credentials = CredentialStore().get(name)
    return Transport(
        host,
        insecure=is_insecure(host, options.insecure_registries),
        tls_verify=options.tls_verify,
        credentials=credentials,
        debug=options.debug,
        certs_dir=options.certs_dir,
        retry=retry,
        scheme=scheme,
        prefix=prefix,
    )


def repository(ref: Reference, options: RegistryOptions) -> Repository:
    """The repository a reference names, reached under `options` with the stored credentials."""
    return Repository(transport_for(ref, options), ref.path)
