"""Writing a layer: members -> tar bytes -> diff_id -> compressor -> digest and size -> sink, in one pass.

The uncompressed tar never exists anywhere but in one CHUNK-sized buffer: each full buffer is hashed
(the diff_id), compressed, and the compressed bytes hashed (the blob digest) and handed to the sink.
So memory stays bounded whatever the layer's size, nothing is written to disk but the blob, and the
blob is never read back. File content is read straight into that buffer (`readinto`), without copies.

Imports: stdlib, imagekit.errors, digest, oci, imagekit.layers.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from typing import BinaryIO

from imagekit.digest import CHUNK, Digest, Hasher
from imagekit.errors import LayerError
from imagekit.layers import compression, tarformat
from imagekit.layers.changes import unreadable
from imagekit.layers.tarformat import END, REGTYPE, Member, header, padding, show
from imagekit.oci import Descriptor


@dataclass(frozen=True, slots=True)
class WrittenLayer:
    """A layer blob as written: its digest and size (compressed), diff_id (uncompressed) and media type."""

    digest: Digest
    size: int
    diff_id: Digest
    media_type: str

    @property
    def descriptor(self) -> Descriptor:
        """The descriptor a manifest lists the layer with."""
        return Descriptor(self.media_type, self.digest, self.size)


def write_layer(
    changes: Iterable[Member], sink: BinaryIO, codec: str = compression.GZIP, *, source_date_epoch: int | None = None
) -> WrittenLayer:
    """Writes `changes` (from imagekit.layers.changes, in their order) as a layer blob to `sink`.

    `codec` is a `--compression` choice: "gzip", "zstd" or "none". mtimes later than
    `source_date_epoch` (by default the SOURCE_DATE_EPOCH environment variable, if set) are clamped
    to it. The sink is any object with write(); one that hashes what it is given and shows it as a
    fresh `hasher` (the store's `Layout.blob_writer()`) is trusted for the digest, so the blob is
    hashed once. The sink is neither flushed nor closed.

    On error (LayerError for an unreadable or changing source, or the sink's own error, passed
    through) the sink has received part of a blob: discarding it is the caller's job, and the store's
    blob_writer does exactly that when the error leaves its block.
    """
    media_type = compression.media_type_for(codec)
    limit = tarformat.source_date_epoch() if source_date_epoch is None else source_date_epoch
    stream = _TarStream(sink, compression.compression_of(media_type))
    for member in changes:
        stream.add(header(member, limit))
        if member.type == REGTYPE and member.size:
            assert member.source is not None, "a regular file member names its source"
            stream.add_file(member.source, member.size)
            stream.add(padding(member.size))
    stream.add(END)
    digest, size, diff_id = stream.finish()
    return WrittenLayer(digest, size, diff_id, media_type)


class _TarStream:
    """The tar bytes of one layer, gathered into CHUNK-sized blocks that go through hashers and the codec."""

    def __init__(self, sink: BinaryIO, codec: str) -> None:
        self._buffer = bytearray(CHUNK)
        self._view = memoryview(self._buffer)
        self._used = 0
        self._write = sink.write
        hasher = getattr(sink, "hasher", None)
        self._sink_hashes = isinstance(hasher, Hasher) and hasher.size == 0
        self._blob: Hasher = hasher if self._sink_hashes else Hasher()  # type: ignore[assignment]
        # Uncompressed, the blob is the tar: its one hash is both digest and diff_id.
        self._identity = codec == compression.NONE
        self._diff = self._blob if self._identity else Hasher()
        self._compressor = compression.compressor(codec)

    def add(self, data: bytes) -> None:
        """Appends headers or padding (small); flushes every full block."""
        while data:
            room = CHUNK - self._used
            piece = data[:room]
            self._buffer[self._used : self._used + len(piece)] = piece
            self._used += len(piece)
            data = data[room:]
            if self._used == CHUNK:
                self._flush()

    def add_file(self, path: bytes, size: int) -> None:
        """Appends exactly `size` bytes of the regular file at `path`, read straight into the buffer.

        A file that is no longer a regular file of that size, or that shrinks while it is read,
        is a LayerError: its header, already written, promised `size` bytes.
        """
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as err:
            raise unreadable(err) from err
        with open(fd, "rb", buffering=0) as source:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_size != size:
                raise LayerError(f"{show(path)} changed while the layer was being written")
            left = size
            while left:
                end = min(CHUNK, self._used + left)
                try:
                    got = source.readinto(self._view[self._used : end])
                except OSError as err:
                    raise unreadable(OSError(err.errno, err.strerror, path)) from err
                if not got:
                    raise LayerError(f"{show(path)} shrank while the layer was being written")
                self._used += got
                left -= got
                if self._used == CHUNK:
                    self._flush()

    def finish(self) -> tuple[Digest, int, Digest]:
        """Flushes the rest and the codec's trailer; returns (digest, size, diff_id)."""
        self._flush()
        self._emit(self._compressor.flush())
        return self._blob.digest(), self._blob.size, self._diff.digest()

    def _flush(self) -> None:
        chunk = self._view[: self._used]
        self._used = 0
        if self._identity:
            self._emit(chunk)
        else:
            self._diff.update(chunk)
            self._emit(self._compressor.compress(chunk))

    def _emit(self, data: bytes | memoryview) -> None:
        if data:
            if not self._sink_hashes:
                self._blob.update(data)
            self._write(data)
