"""Small test images built straight into an OCI layout (no peers needed): random layers, a config, a manifest."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
import zlib

from imagekit.digest import CHUNK, Digest, Hasher
from imagekit.image import Image
from imagekit.layout import Layout
from imagekit.reference import parse_reference
from imagekit.oci import OCI_CONFIG, OCI_LAYER_GZIP, OCI_MANIFEST, Descriptor, Manifest, canonical_json


def layer_tar(files: dict[str, bytes]) -> bytes:
    """A gzipped tar holding `files` (deterministic: fixed mtime, sorted)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name in sorted(files):
            info = tarfile.TarInfo(name)
            info.size = len(files[name])
            info.mode = 0o755
            tar.addfile(info, io.BytesIO(files[name]))
    return gzip.compress(raw.getvalue(), mtime=0)


def random_layer(size: int) -> bytes:
    """A gzip layer blob holding `size` random bytes, stored uncompressed (level 0) so it is quick to make.

    Peers sniff layer content (skopeo recompresses what does not look like gzip), so it must be real gzip.
    """
    return gzip.compress(os.urandom(size), compresslevel=0, mtime=0)


def diff_id(blob: bytes) -> Digest:
    """The digest of the uncompressed layer, as the config's rootfs.diff_ids lists it."""
    hasher = Hasher()
    inflate = zlib.decompressobj(wbits=31)
    for start in range(0, len(blob), CHUNK):
        hasher.update(inflate.decompress(blob[start : start + CHUNK]))
    hasher.update(inflate.flush())
    return hasher.digest()


def build_image(layout: Layout, ref: str, layers: list[bytes], *, architecture: str = "amd64", variant: str = "") -> Image:
    """Stores `layers` as an OCI image for linux/`architecture` under `ref` (normalised, as the CLI names
    refs); returns the stored Image."""
    ref = str(parse_reference(ref))
    descriptors = []
    diff_ids = []
    for blob in layers:
        digest = layout.write_bytes(blob)
        descriptors.append(Descriptor(OCI_LAYER_GZIP, digest, len(blob)))
        diff_ids.append(str(diff_id(blob)))
    config = {
        "architecture": architecture,
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "config": {"Cmd": ["/bin/sh"]},
    }
    if variant:
        config["variant"] = variant
    config_bytes = canonical_json(config)
    config_digest = layout.write_bytes(config_bytes)
    manifest = Manifest(OCI_MANIFEST, Descriptor(OCI_CONFIG, config_digest, len(config_bytes)), tuple(descriptors))
    data = manifest.to_bytes()
    layout.write_bytes(data)
    layout.set_ref(ref, Descriptor(OCI_MANIFEST, Digest.of_bytes(data), len(data)))
    return layout.image(ref)
