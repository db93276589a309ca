"""The Image value: a manifest, its config, and somewhere to read its blobs from.

Both the store (imagekit.layout) and a registry (imagekit.registry) produce and consume Images, so
moving an image anywhere is "read an Image from one side, write it to the other", as in
go-containerregistry. An Image holds the manifest and config as the exact bytes that were received or
written, because their digests are over those bytes; everything else is parsed views.

Imports: stdlib, imagekit.errors, imagekit.digest, imagekit.oci.
"""

from __future__ import annotations

from functools import cached_property

from imagekit.digest import Digest, VerifyingReader
from imagekit.errors import BadDigest, LayerError
from imagekit.oci import Descriptor, Manifest, load_json
from imagekit.values import value

TYPE_CHECKING = False  # typing's import is a run's start-up cost; its names are for the type checker
if TYPE_CHECKING:
    from typing import Any, BinaryIO, Protocol

    class BlobSource(Protocol):
        """Where an Image's blobs live: a store on disk, or a repository in a registry."""

        def open_blob(self, descriptor: Descriptor) -> BinaryIO:
            """Opens the blob's raw bytes; the caller closes it. Need not verify: callers wrap it in
            a VerifyingReader (see Image.open_verified)."""
            ...


@value
class Image:
    """One platform's image: manifest bytes, config bytes, and the source of its layer blobs."""

    manifest_bytes: bytes
    config_bytes: bytes
    source: BlobSource
    media_type: str = ""

    @cached_property
    def manifest(self) -> Manifest:
        return Manifest.from_bytes(self.manifest_bytes, self.media_type)

    @cached_property
    def config(self) -> dict[str, Any]:
        return load_json(self.config_bytes, "image config")

    @cached_property
    def digest(self) -> Digest:
        """The manifest digest: what `name@digest` pins and what a registry answers with."""
        return Digest.of_bytes(self.manifest_bytes)

    @property
    def descriptor(self) -> Descriptor:
        return Descriptor(self.manifest.media_type, self.digest, len(self.manifest_bytes))

    @property
    def layers(self) -> tuple[Descriptor, ...]:
        return self.manifest.layers

    @property
    def diff_ids(self) -> tuple[str, ...]:
        rootfs = self.config.get("rootfs")
        ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
        return tuple(str(i) for i in ids) if isinstance(ids, list) else ()

    def layer_pairs(self) -> tuple[tuple[Descriptor, Digest], ...]:
        """(descriptor, diff_id) of each layer, in order: the diff_id (rootfs.diff_ids) is what the blob's
        content hashes to once uncompressed. LayerError when the config lists a different number of
        diff_ids than the manifest lists layers, or one is not a digest."""
        listed = self.diff_ids
        if len(listed) != len(self.layers):
            raise LayerError(f"image {self.digest.short}: its config lists {len(listed)} diff_ids for {len(self.layers)} layers")
        try:
            return tuple((descriptor, Digest.parse(text)) for descriptor, text in zip(self.layers, listed))
        except BadDigest as err:
            raise LayerError(f"image {self.digest.short}: invalid diff_id in its config ({err})") from err

    def blobs(self) -> tuple[Descriptor, ...]:
        """Every blob the manifest needs, config first: the order a copy should write them in."""
        return (self.manifest.config, *self.manifest.layers)

    def open_verified(self, descriptor: Descriptor) -> VerifyingReader:
        """A reader over one blob that raises DigestMismatch at EOF if the bytes are not what the
        descriptor promised; closing it closes the source's stream."""
        return VerifyingReader(self.source.open_blob(descriptor), descriptor.digest, descriptor.size)
