"""Layer compression: which codec a media type means, and streaming compressors and decompressors.

The one place that knows codecs, so the writer, the unpacker and `imagekit import` agree on them.
gzip goes through ISA-L (python-isal): its output is standard gzip that every registry and runtime
reads, at several times zlib's speed. zstd uses `zstandard`'s multi-threaded mode, whose output
depends on the job size but not on the number of workers, so every machine writes the same bytes.
Figures: bench/layer_codecs.py. Decompressors are file-like and stream; nothing holds a whole layer in memory.

Imports: stdlib, isal, zstandard, imagekit.errors, imagekit.oci.
"""

from __future__ import annotations

import bz2
import lzma
import os
import zlib
from typing import BinaryIO, Protocol

import zstandard
from isal import igzip, isal_zlib

from imagekit.errors import LayerError
from imagekit.layers import zstdframes
from imagekit.oci import LAYER_COMPRESSION, OCI_LAYER, OCI_LAYER_GZIP, OCI_LAYER_ZSTD

NONE = ""
GZIP = "gzip"
ZSTD = "zstd"
#: What `--compression` accepts, and the OCI media type a new layer gets for each.
MEDIA_TYPES = {GZIP: OCI_LAYER_GZIP, ZSTD: OCI_LAYER_ZSTD, "none": OCI_LAYER}
#: ISA-L's level 1 of 0..3: as fast as level 0 and within 1% of level 3's size (bench/layer_codecs.py).
GZIP_LEVEL = 1
#: zstd's default level, what `zstd -T0` and containerd use.
ZSTD_LEVEL = 3
#: Bytes per zstd job (the default at level 3 is 8 MiB): each worker holds about two jobs, and 3 MiB
#: keeps a layer write under 100 MB of memory at 4 workers for ~5% of the speed (bench/layer_codecs.py).
ZSTD_JOB_SIZE = 3 << 20
#: zstd workers: one per core, at most 4 (memory, above). Never 0: single-threaded zstd writes other bytes.
ZSTD_THREADS = max(1, min(os.cpu_count() or 1, 4))
#: Errors a corrupt compressed stream raises from the decompressors below.
DECOMPRESS_ERRORS: tuple[type[BaseException], ...] = (
    EOFError,
    OSError,
    zlib.error,
    isal_zlib.error,
    zstandard.ZstdError,
    lzma.LZMAError,
)
_MAGIC = (
    (b"\x1f\x8b", GZIP),
    (b"\x28\xb5\x2f\xfd", ZSTD),
    (b"\xfd7zXZ\x00", "xz"),
    (b"BZh", "bzip2"),
)


class Compressor(Protocol):
    """zlib's compressobj shape: feed with compress(), finish with flush() exactly once."""

    def compress(self, data: bytes, /) -> bytes: ...

    def flush(self) -> bytes: ...


class _Identity:
    def compress(self, data: bytes, /) -> bytes:
        return data

    def flush(self) -> bytes:
        return b""


def compression_of(media_type: str) -> str:
    """The codec of a layer media type (OCI or Docker): GZIP, ZSTD or NONE; LayerError for any other type."""
    try:
        return LAYER_COMPRESSION[media_type]
    except KeyError:
        raise LayerError(f"unsupported layer media type {media_type!r}") from None


def media_type_for(name: str) -> str:
    """The OCI layer media type for a `--compression` choice (gzip, zstd, none)."""
    try:
        return MEDIA_TYPES[name]
    except KeyError:
        raise LayerError(f"unknown compression {name!r} (use one of {', '.join(MEDIA_TYPES)})") from None


def compressor(codec: str) -> Compressor:
    """A fresh compressor for GZIP (gzip framing, mtime 0, so equal input gives equal bytes), ZSTD or NONE."""
    if codec == GZIP:
        return isal_zlib.compressobj(GZIP_LEVEL, isal_zlib.DEFLATED, 31)  # type: ignore[no-any-return]
    if codec == ZSTD:
        params = zstandard.ZstdCompressionParameters.from_level(ZSTD_LEVEL, threads=ZSTD_THREADS, job_size=ZSTD_JOB_SIZE)
        return zstandard.ZstdCompressor(compression_params=params).compressobj()  # type: ignore[return-value]
    if codec == NONE:
        return _Identity()
    raise LayerError(f"unknown compression {codec!r}")


def sniff(head: bytes) -> str:
    """The codec whose magic bytes start `head` (GZIP, ZSTD, "xz", "bzip2"), or NONE."""
    return next((name for magic, name in _MAGIC if head.startswith(magic)), NONE)


def decompressed(stream: BinaryIO, codec: str) -> BinaryIO:
    """A file-like reader of `stream` decompressed with `codec`; concatenated gzip members and zstd frames
    are read through, as Go's readers do. The caller closes `stream`; corrupt or truncated data raises
    one of DECOMPRESS_ERRORS from read()."""
    if codec == GZIP:
        return igzip.IGzipFile(fileobj=stream, mode="rb")  # type: ignore[return-value]
    if codec == ZSTD:
        return zstdframes.checked_reader(stream)
    if codec == "xz":
        return lzma.LZMAFile(stream)  # type: ignore[return-value]
    if codec == "bzip2":
        return bz2.BZ2File(stream)  # type: ignore[return-value]
    if codec == NONE:
        return stream
    raise LayerError(f"unknown compression {codec!r}")
