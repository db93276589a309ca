"""Writing a layer: members -> tar bytes -> diff_id -> compressor -> digest and size -> sink, in one pass.

The uncompressed tar never exists anywhere but in a few CHUNK-sized buffers: each full buffer is hashed
(the diff_id), then a worker thread compresses it, hashes the compressed bytes (the blob digest) and
hands them to the sink while the next buffer fills. So memory stays bounded whatever the layer's size,
nothing is written to disk but the blob, and the blob is never read back. File content is read
straight into the buffers (`readinto`), without copies.

Imports: stdlib, imagekit.errors, digest, oci, imagekit.layers.
"""

from __future__ import annotations

import os
import queue
import stat
import threading
from collections.abc import Iterable
from typing import BinaryIO

from imagekit.digest import CHUNK, Digest, Hasher
from imagekit.errors import LayerError
from imagekit.layers import compression, tarformat
from imagekit.layers.changes import unreadable
from imagekit.layers.tarformat import END, REGTYPE, Member, header, padding, show
from imagekit.oci import Descriptor
from imagekit.values import value

#: Tar buffers in flight: one being filled, one being compressed, one spare so neither side waits.
BUFFERS = 3


@value
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
    hashed once. write() is called from a worker thread, one call at a time and in order; the sink
    is neither flushed nor closed.

    On error (LayerError for an unreadable or changing source, or the sink's own error, passed
    through) the sink has received part of a blob: discarding it is the caller's job, and the store's
    blob_writer does exactly that when the error leaves its block.
    """
    media_type = compression.media_type_for(codec)
    limit = tarformat.source_date_epoch() if source_date_epoch is None else source_date_epoch
    stream = _TarStream(sink, compression.compression_of(media_type))
    try:
        for member in changes:
            stream.add(header(member, limit))
            if member.type == REGTYPE and member.size:
                assert member.source is not None, "a regular file member names its source"
                stream.add_file(member.source, member.size)
                stream.add(padding(member.size))
        stream.add(END)
        digest, size, diff_id = stream.finish()
    finally:
        stream.close()
    return WrittenLayer(digest, size, diff_id, media_type)


class _TarStream:
    """The tar bytes of one layer, gathered into CHUNK-sized buffers that a worker thread hashes,
    compresses and writes while the caller fills the next one.

    hashlib, ISA-L and zstd release the GIL, so reading the tree and compressing it share the cores
    as the processes of `tar | gzip` do. BUFFERS buffers circulate; the caller waits for a free one,
    which bounds memory. Once the worker has failed (the sink's error), it only hands buffers back,
    and the caller raises that error at its next flush.
    """

    def __init__(self, sink: BinaryIO, codec: str) -> None:
        self._write = sink.write
        hasher = getattr(sink, "hasher", None)
        self._sink_hashes = isinstance(hasher, Hasher) and hasher.size == 0
        self._blob: Hasher = hasher if self._sink_hashes else Hasher()  # type: ignore[assignment]
        # The worker hashes the blob (or the sink does, on the worker's thread). Compressed, the caller's
        # thread hashes the tar for the diff_id, so the two hashes run on two cores; uncompressed, the
        # blob is the tar and its one hash is both digest and diff_id.
        self._diff: Hasher | None = None if codec == compression.NONE else Hasher()
        self._compressor = compression.compressor(codec)
        self._free: queue.SimpleQueue[bytearray] = queue.SimpleQueue()
        for _ in range(BUFFERS):
            self._free.put(bytearray(CHUNK))
        self._full: queue.SimpleQueue[tuple[bytearray, int] | None] = queue.SimpleQueue()
        self._error: BaseException | None = None
        self._stopping = False
        self._take_buffer()
        self._worker = threading.Thread(target=self._drain, name="imagekit-layer-writer", daemon=True)
        self._worker.start()

    def add(self, data: bytes) -> None:
        """Appends headers or padding (small); flushes every full buffer."""
        while data:
            room = CHUNK - self._used
            piece = data[:room]
            self._view[self._used : self._used + len(piece)] = piece
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
        self._full.put(None)
        self._worker.join()
        if self._error is not None:
            raise self._error
        self._emit(self._compressor.flush())
        return self._blob.digest(), self._blob.size, (self._diff or self._blob).digest()

    def close(self) -> None:
        """Stops the worker, dropping what it has not written yet; idempotent, and a no-op after finish()."""
        if self._worker.is_alive():
            self._stopping = True
            self._full.put(None)
            self._worker.join()

    def _take_buffer(self) -> None:
        self._buffer = self._free.get()
        self._view = memoryview(self._buffer)
        self._used = 0

    def _flush(self) -> None:
        if self._diff is not None:
            self._diff.update(self._view[: self._used])
        self._full.put((self._buffer, self._used))
        self._take_buffer()
        if self._error is not None:
            raise self._error

    def _drain(self) -> None:
        """The worker: each full buffer through the codec, the blob hasher and to the sink, in order."""
        while (item := self._full.get()) is not None:
            buffer, used = item
            if self._error is None and not self._stopping:
                try:
                    self._emit(self._compressor.compress(memoryview(buffer)[:used]))
                except BaseException as err:  # handed to the caller's thread, which raises it
                    self._error = err
            self._free.put(buffer)

    def _emit(self, data: bytes | memoryview) -> None:
        if data:
            if not self._sink_hashes:
                self._blob.update(data)
            self._write(data)
