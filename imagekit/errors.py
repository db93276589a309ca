"""The one exception hierarchy of imagekit.

Every failure a user can cause or meet (bad input, a hostile registry, a broken store) is an
`ImagekitError` whose `str()` is a single human-readable line: the CLI prints exactly that and exits 1.
Anything else escaping to the CLI is a bug. Context travels in attributes, never in a traceback.
Messages must never contain credentials.

Imports: stdlib only.
"""

from __future__ import annotations


class ImagekitError(Exception):
    """Root of all expected failures; `str(err)` is the one-line message shown to the user."""


class BadReference(ImagekitError):
    """An image reference that does not follow the distribution reference grammar."""

    def __init__(self, reference: str, problem: str) -> None:
        super().__init__(f"invalid reference {reference!r}: {problem}")
        self.reference = reference
        self.problem = problem


class BadDigest(ImagekitError):
    """A digest string that is not `algorithm:hex` with a known algorithm and the right length."""


class DigestMismatch(ImagekitError):
    """Content whose digest (or size) differs from what its descriptor promised."""

    def __init__(self, what: str, expected: str, actual: str) -> None:
        super().__init__(f"{what}: expected {expected}, got {actual}")
        self.what = what
        self.expected = expected
        self.actual = actual


class InvalidManifest(ImagekitError):
    """A manifest, index, config or descriptor that is not valid OCI/Docker JSON."""


class PlatformNotFound(ImagekitError):
    """An image index has no image for the wanted platform."""


class StoreError(ImagekitError):
    """The store (OCI image layout) is unreadable, corrupt or not writable."""


class BlobNotFound(StoreError):
    """A blob that a manifest or ref points at is missing from the store."""


class ImageNotFound(StoreError):
    """No image in the store carries the given reference or digest."""


class ImageConflict(StoreError):
    """A store change refused because it would affect more than the user named (docker's "must be forced")."""


class SnapshotError(StoreError):
    """An extracted layer or active snapshot (imagekit.snapshots) that is missing, taken or cannot be made."""


class LayerError(ImagekitError):
    """A layer tarball that cannot be written or applied: corrupt, unsafe or too large."""


class InvalidConfigEdit(ImagekitError):
    """An edit of an image config that docker refuses (an EXPOSE port that is not a port, an empty ENV name);
    import and build add where the edit came from (the --change line, the Builderfile line)."""


class InvalidChange(ImagekitError):
    """A Dockerfile-style `--change` instruction (as `docker import -c` takes) that is unsupported or malformed."""


class NotATerminal(ImagekitError):
    """A prompt was needed (a login without a password) but standard input is not a terminal."""


class TemplateError(ImagekitError):
    """A `--format` template that does not parse, or fails on the data it is given (Go's text/template words)."""


class RegistryError(ImagekitError):
    """A registry answered with an error or could not be reached.

    `temporary` marks what a retry may cure (connection errors, 5xx, 429); nothing else is retried.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        codes: tuple[str, ...] = (),
        url: str | None = None,
        temporary: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.codes = codes
        self.url = url
        self.temporary = temporary
        self.retry_after = retry_after  # seconds the registry asked us to wait (Retry-After), if it said


class AuthError(RegistryError):
    """The registry refused our credentials, or demanded ones we do not have."""


class TLSError(RegistryError):
    """TLS to a registry failed (unknown CA, wrong name, handshake): never answered by falling back to HTTP."""


class CredentialsError(ImagekitError):
    """The credential store (config.json or a credential helper) is broken or refused."""


class BuildError(ImagekitError):
    """A Builderfile step failed; carries the file and line so the message can point at it."""

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None) -> None:
        where = f"{file}:{line}: " if file and line else ""
        super().__init__(f"{where}{message}")
        self.file = file
        self.line = line


class UnknownUser(ImagekitError):
    """A user or group spec (USER, -u, --chown) the image's /etc/passwd or /etc/group does not resolve."""


class SandboxError(ImagekitError):
    """The isolation layer (namespaces, mounts, cgroups, network) could not be set up."""


class ContainerError(ImagekitError):
    """A container of `imagekit run` cannot be created, started, signalled or removed as asked."""


class ContainerNotFound(ContainerError):
    """No container has the given name or ID (prefix)."""


class VolumeError(ImagekitError):
    """A named volume cannot be created, found or removed as asked."""


class VolumeNotFound(VolumeError):
    """No volume has the given name."""


class ObjectNotFound(ImagekitError):
    """`imagekit inspect` found no container, image or volume by the given name or ID."""


class NetworkError(ImagekitError):
    """A container network (bridge, address, veth, NAT rule, published port) that cannot be set up or removed."""


class InvalidPublish(ImagekitError):
    """A `-p/--publish` spec that is malformed, out of range or asks for what imagekit cannot publish."""
