"""OCI and Docker image JSON: media types, Platform, Descriptor, Manifest, Index, and canonical JSON.

These are the spec's own nouns as frozen values. Parsing is strict about what imagekit relies on
(digests, sizes, media types) and keeps everything else it does not understand in `extra`, so a value
read from a registry and written back loses nothing. Bytes received are never re-serialised for
hashing: the stored blob is the received bytes; these types are views onto it.

Imports: stdlib, imagekit.errors and imagekit.digest only.
"""

from __future__ import annotations

import json
from types import MappingProxyType

from imagekit.digest import Digest
from imagekit.errors import BadDigest, InvalidManifest
from imagekit.values import field, value

TYPE_CHECKING = False  # typing's import is a run's start-up cost; its names are for the type checker
if TYPE_CHECKING:
    from typing import Any, Mapping

# --- media types (image-spec media-types.md, Docker image manifest v2 schema 2) -------------------------
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_LAYER_NONDISTRIBUTABLE = "application/vnd.oci.image.layer.nondistributable.v1.tar"
OCI_LAYER_NONDISTRIBUTABLE_GZIP = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
OCI_LAYER_NONDISTRIBUTABLE_ZSTD = "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_LAYER_FOREIGN_GZIP = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"

MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
SCHEMA1_TYPES = frozenset({DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED})

#: Layer media type -> compression ("gzip", "zstd" or "" for none).
LAYER_COMPRESSION: Mapping[str, str] = MappingProxyType(
    {
        OCI_LAYER: "",
        OCI_LAYER_GZIP: "gzip",
        OCI_LAYER_ZSTD: "zstd",
        OCI_LAYER_NONDISTRIBUTABLE: "",
        OCI_LAYER_NONDISTRIBUTABLE_GZIP: "gzip",
        OCI_LAYER_NONDISTRIBUTABLE_ZSTD: "zstd",
        DOCKER_LAYER_GZIP: "gzip",
        DOCKER_LAYER_FOREIGN_GZIP: "gzip",
    }
)

#: Annotation that names a ref in an OCI layout's index.json (image-spec annotations.md).
REF_NAME = "org.opencontainers.image.ref.name"

#: Manifests larger than this are refused, as containerd and the distribution spec advise (4 MiB).
MAX_MANIFEST_BYTES = 4 << 20


def canonical_json(value: Any) -> bytes:
    """Deterministic JSON bytes (sorted keys, no spaces, UTF-8), so equal values hash to equal digests."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def load_json(data: bytes, what: str) -> dict[str, Any]:
    """Parses a JSON object from untrusted bytes; anything else is InvalidManifest naming `what`."""
    if len(data) > MAX_MANIFEST_BYTES:
        raise InvalidManifest(f"{what} is {len(data)} bytes, over the {MAX_MANIFEST_BYTES}-byte limit")
    try:
        value = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InvalidManifest(f"{what} is not valid JSON: {err}") from err
    if not isinstance(value, dict):
        raise InvalidManifest(f"{what} is not a JSON object")
    return value


def json_field(obj: Mapping[str, Any], key: str, kind: type | tuple[type, ...], what: str, required: bool = True) -> Any:
    """obj[key] checked to be a `kind` (a bool is no int); None when absent and not required; else InvalidManifest."""
    if key not in obj:
        if required:
            raise InvalidManifest(f"{what}: missing {key!r}")
        return None
    value = obj[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise InvalidManifest(f"{what}: {key!r} has the wrong type")
    return value


def json_strings(obj: Mapping[str, Any], key: str, what: str) -> tuple[str, ...]:
    """An optional list of strings (empty when absent); anything else is InvalidManifest."""
    value = json_field(obj, key, list, what, required=False) or []
    if not all(isinstance(v, str) for v in value):
        raise InvalidManifest(f"{what}: {key!r} must be a list of strings")
    return tuple(value)


def json_string_map(obj: Mapping[str, Any], key: str, what: str) -> Mapping[str, str]:
    """An optional object of strings to strings, read-only (empty when absent); anything else is InvalidManifest."""
    value = json_field(obj, key, dict, what, required=False) or {}
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise InvalidManifest(f"{what}: {key!r} must map strings to strings")
    return MappingProxyType(dict(value))


@value
class Platform:
    """os/architecture[/variant], compared after the normalisation containerd applies."""

    os: str
    architecture: str
    variant: str = ""
    os_version: str = ""
    os_features: tuple[str, ...] = ()

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            out["variant"] = self.variant
        if self.os_version:
            out["os.version"] = self.os_version
        if self.os_features:
            out["os.features"] = list(self.os_features)
        return out

    @classmethod
    def from_json(cls, obj: Any, what: str = "platform") -> Platform:
        if not isinstance(obj, dict):
            raise InvalidManifest(f"{what} is not a JSON object")
        return cls(
            os=json_field(obj, "os", str, what),
            architecture=json_field(obj, "architecture", str, what),
            variant=json_field(obj, "variant", str, what, required=False) or "",
            os_version=json_field(obj, "os.version", str, what, required=False) or "",
            os_features=json_strings(obj, "os.features", what),
        )


@value
class Descriptor:
    """A typed, sized, content-addressed pointer to a blob (image-spec descriptor.md)."""

    media_type: str
    digest: Digest
    size: int
    annotations: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    platform: Platform | None = None
    urls: tuple[str, ...] = ()
    artifact_type: str = ""
    extra: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.extra)
        out.update({"mediaType": self.media_type, "digest": str(self.digest), "size": self.size})
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.platform is not None:
            out["platform"] = self.platform.to_json()
        if self.urls:
            out["urls"] = list(self.urls)
        if self.artifact_type:
            out["artifactType"] = self.artifact_type
        return out

    @classmethod
    def from_json(cls, obj: Any, what: str = "descriptor") -> Descriptor:
        if not isinstance(obj, dict):
            raise InvalidManifest(f"{what} is not a JSON object")
        try:
            digest = Digest.parse(json_field(obj, "digest", str, what))
        except BadDigest as err:
            raise InvalidManifest(f"{what}: {err}") from err
        size = json_field(obj, "size", int, what)
        if size < 0:
            raise InvalidManifest(f"{what}: negative size")
        known = {"mediaType", "digest", "size", "annotations", "platform", "urls", "artifactType"}
        platform = obj.get("platform")
        return cls(
            media_type=json_field(obj, "mediaType", str, what),
            digest=digest,
            size=size,
            annotations=json_string_map(obj, "annotations", what),
            platform=None if platform is None else Platform.from_json(platform, f"{what} platform"),
            urls=json_strings(obj, "urls", what),
            artifact_type=json_field(obj, "artifactType", str, what, required=False) or "",
            extra=MappingProxyType({k: v for k, v in obj.items() if k not in known}),
        )


@value
class Manifest:
    """An image manifest (OCI or Docker schema 2): one config and an ordered list of layers."""

    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]
    annotations: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    subject: Descriptor | None = None
    artifact_type: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": self.media_type,
            "config": self.config.to_json(),
            "layers": [layer.to_json() for layer in self.layers],
        }
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.subject is not None:
            out["subject"] = self.subject.to_json()
        if self.artifact_type:
            out["artifactType"] = self.artifact_type
        return out

    def to_bytes(self) -> bytes:
        return canonical_json(self.to_json())

    @classmethod
    def from_bytes(cls, data: bytes, media_type: str = "") -> Manifest:
        """Parses untrusted manifest bytes; `media_type` is the Content-Type or descriptor's, if known."""
        obj = load_json(data, "manifest")
        kind = json_field(obj, "mediaType", str, "manifest", required=False) or media_type or OCI_MANIFEST
        if kind in SCHEMA1_TYPES or obj.get("schemaVersion") == 1:
            raise InvalidManifest("Docker schema 1 manifests are deprecated and not supported; push the image again with a current client")
        if kind not in MANIFEST_TYPES:
            raise InvalidManifest(f"expected an image manifest, got media type {kind!r}")
        if obj.get("schemaVersion") != 2:
            raise InvalidManifest("manifest: schemaVersion must be 2")
        layers = json_field(obj, "layers", list, "manifest")
        subject = obj.get("subject")
        return cls(
            media_type=kind,
            config=Descriptor.from_json(obj.get("config"), "manifest config"),
            layers=tuple(Descriptor.from_json(layer, f"manifest layer {i}") for i, layer in enumerate(layers)),
            annotations=json_string_map(obj, "annotations", "manifest"),
            subject=None if subject is None else Descriptor.from_json(subject, "manifest subject"),
            artifact_type=json_field(obj, "artifactType", str, "manifest", required=False) or "",
        )


@value
class Index:
    """An image index or Docker manifest list: manifests for several platforms (or an OCI layout's refs)."""

    manifests: tuple[Descriptor, ...]
    media_type: str = OCI_INDEX
    annotations: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": self.media_type,
            "manifests": [m.to_json() for m in self.manifests],
        }
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out

    def to_bytes(self) -> bytes:
        return canonical_json(self.to_json())

    @classmethod
    def from_bytes(cls, data: bytes, media_type: str = "", what: str = "index") -> Index:
        obj = load_json(data, what)
        kind = json_field(obj, "mediaType", str, what, required=False) or media_type or OCI_INDEX
        if kind not in INDEX_TYPES:
            raise InvalidManifest(f"expected an image index, got media type {kind!r}")
        if obj.get("schemaVersion") != 2:
            raise InvalidManifest(f"{what}: schemaVersion must be 2")
        manifests = json_field(obj, "manifests", list, what)
        return cls(
            manifests=tuple(Descriptor.from_json(m, f"{what} entry {i}") for i, m in enumerate(manifests)),
            media_type=kind,
            annotations=json_string_map(obj, "annotations", what),
        )
