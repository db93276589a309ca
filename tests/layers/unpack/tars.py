"""Building layers for tests: tar entries from a few words, compressed blobs, in-memory Images.

Built with Python's tarfile (an independent writer) and, where tarfile refuses to write
something a hostile author would, with raw header bytes.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import zstandard

from imagekit.digest import Digest
from imagekit.image import Image
from imagekit.layout import Layout
from imagekit.oci import LAYER_COMPRESSION, OCI_CONFIG, OCI_LAYER, OCI_LAYER_GZIP, OCI_LAYER_ZSTD, OCI_MANIFEST, Descriptor, Manifest, canonical_json

MTIME = 1_600_000_000
MEDIA_TYPES = {"none": OCI_LAYER, "gzip": OCI_LAYER_GZIP, "zstd": OCI_LAYER_ZSTD}


@dataclass(frozen=True)
class E:
    """One tar entry: name, type and data, with metadata defaults a test rarely changes."""

    name: str
    type: bytes = tarfile.REGTYPE
    data: bytes = b""
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    mtime: float = MTIME
    linkname: str = ""
    devmajor: int = 0
    devminor: int = 0
    pax: dict[str, str] = field(default_factory=dict)

    def info(self) -> tarfile.TarInfo:
        info = tarfile.TarInfo(self.name)
        info.type = self.type
        info.size = len(self.data) if self.type in (tarfile.REGTYPE, tarfile.AREGTYPE) else 0
        info.mode, info.uid, info.gid, info.mtime = self.mode, self.uid, self.gid, self.mtime
        info.linkname, info.devmajor, info.devminor = self.linkname, self.devmajor, self.devminor
        info.pax_headers = dict(self.pax)
        return info


def file(name: str, data: bytes = b"", **kw: object) -> E:
    return E(name, tarfile.REGTYPE, data, **kw)  # type: ignore[arg-type]


def directory(name: str, **kw: object) -> E:
    kw.setdefault("mode", 0o755)
    return E(name, tarfile.DIRTYPE, **kw)  # type: ignore[arg-type]


def symlink(name: str, target: str, **kw: object) -> E:
    kw.setdefault("mode", 0o777)
    return E(name, tarfile.SYMTYPE, linkname=target, **kw)  # type: ignore[arg-type]


def hardlink(name: str, target: str) -> E:
    return E(name, tarfile.LNKTYPE, linkname=target)


def device(name: str, kind: bytes = tarfile.CHRTYPE, major: int = 1, minor: int = 3) -> E:
    return E(name, kind, mode=0o666, devmajor=major, devminor=minor)


def fifo(name: str) -> E:
    return E(name, tarfile.FIFOTYPE, mode=0o600)


def xattrs(**values: bytes) -> dict[str, str]:
    """PAX records for xattrs (SCHILY.xattr.NAME), as GNU tar and Go write them; the first `_` of a
    keyword stands for `.` (user_a -> user.a)."""
    return {f"SCHILY.xattr.{k.replace('_', '.', 1)}": v.decode("utf-8", "surrogateescape") for k, v in values.items()}


def tar(entries: Iterable[E], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    out = io.BytesIO()
    # surrogateescape carries undecodable bytes (names, xattr values) through tarfile's str API
    with tarfile.open(fileobj=out, mode="w", format=fmt, encoding="utf-8", errors="surrogateescape") as archive:
        for entry in entries:
            info = entry.info()
            archive.addfile(info, io.BytesIO(entry.data) if info.size else None)
    return out.getvalue()


def compress(data: bytes, codec: str) -> bytes:
    if codec == "gzip":
        return gzip.compress(data, compresslevel=1, mtime=0)
    if codec == "zstd":
        return zstandard.ZstdCompressor().compress(data)
    return data


def header(
    name: bytes, *, size: int = 0, type: bytes = b"0", linkname: bytes = b"", mode: int = 0o644, raw_size: bytes | None = None, raw_major: bytes | None = None
) -> bytes:
    """A ustar header block built by hand (for what tarfile will not write); checksum computed."""
    block = bytearray(512)
    block[0 : len(name[:100])] = name[:100]
    block[100:108] = b"%07o\0" % mode
    block[108:116] = b"%07o\0" % 0
    block[116:124] = b"%07o\0" % 0
    block[124:136] = raw_size if raw_size is not None else b"%011o\0" % size
    block[136:148] = b"%011o\0" % MTIME
    block[156:157] = type
    block[157 : 157 + len(linkname[:100])] = linkname[:100]
    block[257:265] = b"ustar\x0000"
    if raw_major is not None:
        block[329:337] = raw_major
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)
    return bytes(block)


def pad(data: bytes) -> bytes:
    return data + bytes(-len(data) % 512)


def pax_entry(records: dict[bytes, bytes], name: bytes = b"PaxHeader", kind: bytes = b"x") -> bytes:
    """A PAX extended header (type x, or g for a global one) with raw byte records."""
    body = b""
    for key, value in records.items():
        record = b" " + key + b"=" + value + b"\n"
        length = len(record) + 1
        while len(str(length)) + len(record) != length:
            length = len(str(length)) + len(record)
        body += str(length).encode() + record
    return header(name, size=len(body), type=kind) + pad(body)


END = bytes(1024)


# --- images ------------------------------------------------------------------------------------------------
class _Blobs:
    def __init__(self, blobs: dict[Digest, bytes]) -> None:
        self.blobs = blobs

    def open_blob(self, descriptor: Descriptor) -> BinaryIO:
        return io.BytesIO(self.blobs[descriptor.digest])


def image(layers: Iterable[tuple[bytes, str]], diff_ids: Iterable[str] | None = None) -> Image:
    """An in-memory Image of (blob, media_type) layers; the diff_ids are computed unless given."""
    blobs: dict[Digest, bytes] = {}
    descriptors = []
    computed = []
    for blob, media_type in layers:
        digest = Digest.of_bytes(blob)
        blobs[digest] = blob
        descriptors.append(Descriptor(media_type, digest, len(blob)))
        computed.append(diff_id(blob, media_type))
    rootfs = {"type": "layers", "diff_ids": computed if diff_ids is None else list(diff_ids)}
    config = canonical_json({"architecture": "amd64", "os": "linux", "config": {}, "rootfs": rootfs})
    config_digest = Digest.of_bytes(config)
    blobs[config_digest] = config
    manifest = Manifest(OCI_MANIFEST, Descriptor(OCI_CONFIG, config_digest, len(config)), tuple(descriptors))
    return Image(manifest.to_bytes(), config, _Blobs(blobs), OCI_MANIFEST)


def diff_id(blob: bytes, media_type: str, limit: int = 256 << 20) -> str:
    """The digest of the blob's uncompressed stream; for a corrupt blob or a bomb (past `limit`), of
    whatever came out before it broke: unpacking such a blob fails before its diff_id is checked."""
    hasher, size = hashlib.sha256(), 0
    stream: BinaryIO = io.BytesIO(blob)
    codec = LAYER_COMPRESSION.get(media_type, "")
    if codec == "gzip":
        stream = gzip.GzipFile(fileobj=stream)  # type: ignore[assignment]
    elif codec == "zstd":
        stream = zstandard.ZstdDecompressor().stream_reader(stream, read_across_frames=True)  # type: ignore[assignment]
    try:
        while size < limit and (chunk := stream.read(1 << 20)):
            hasher.update(chunk)
            size += len(chunk)
    except (OSError, EOFError, zlib.error, zstandard.ZstdError):
        pass
    return f"sha256:{hasher.hexdigest()}"


def layers_image(*tars: bytes, codec: str = "none") -> Image:
    return image(((compress(data, codec), MEDIA_TYPES[codec]) for data in tars), [str(Digest.of_bytes(data)) for data in tars])


def store_image(root: Path, img: Image, ref: str = "docker.io/library/test:1") -> str:
    """Writes `img` into the store at `root` under `ref`; returns the ref."""
    Layout(root).write_image(img, ref)
    return ref


def snapshot(base: Path, exclude: Path | None = None) -> dict[str, tuple[object, ...]]:
    """Everything under `base` but `exclude`: type, mode, size, mtime, content or link target, links."""
    found: dict[str, tuple[object, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(base):
        if exclude is not None:
            dirnames[:] = [d for d in dirnames if Path(dirpath, d) != exclude]
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            if path == exclude:
                continue
            st = path.lstat()
            body: object = os.readlink(path) if path.is_symlink() else path.read_bytes() if path.is_file() else None
            found[str(path.relative_to(base))] = (st.st_mode, st.st_size, st.st_mtime_ns, st.st_nlink, body)
    found["."] = (base.stat().st_mode,)  # its mtime moves: the unpack makes its temp directory beside the target
    return found
