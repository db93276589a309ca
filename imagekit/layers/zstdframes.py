"""A zstd stream's frame boundaries, followed from its headers, so that a truncated stream is an error.

python-zstandard's streaming reader ends quietly when its input stops inside a frame (Go's decoder
reports io.ErrUnexpectedEOF). Layer blobs are digest-checked, but `imagekit import` reads files nobody
vouches for. This walks only the frame and block headers of RFC 8878 (section 3.1) as the compressed
bytes go by, skipping block contents by count, and a reader built on it raises at end of input unless
the last frame was complete.

Imports: stdlib, zstandard.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import BinaryIO

import zstandard

_FRAME_MAGIC = b"\x28\xb5\x2f\xfd"
_SKIPPABLE_HIGH = b"\x2a\x4d\x18"  # magics 0x184D2A50..5F, little-endian: byte 0 is 0x50..0x5F
_DICT_ID_BYTES = (0, 1, 2, 4)
_CONTENT_SIZE_BYTES = (0, 2, 4, 8)


class FrameWalker:
    """Fed the compressed bytes in order; `complete` says whether they end exactly at a frame's end.

    The state is what to read next: `_need` header bytes gathered in `_pending` and handed to
    `_step`, or `_skip` content bytes passed over.
    """

    def __init__(self) -> None:
        self._pending = b""
        self._need = 4
        self._step: Callable[[bytes], None] = self._magic
        self._skip = 0
        self._checksum = False
        self._started = False

    @property
    def complete(self) -> bool:
        """True at a frame boundary (an empty stream counts as complete: the decoder rejects it anyway)."""
        return self._step == self._magic and not self._pending and self._skip == 0

    def feed(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            if self._skip:
                taken = min(self._skip, len(view))
                self._skip -= taken
                view = view[taken:]
                continue
            taken = min(self._need - len(self._pending), len(view))
            self._pending += bytes(view[:taken])
            view = view[taken:]
            if len(self._pending) == self._need:
                header, self._pending = self._pending, b""
                self._step(header)

    def _expect(self, count: int, step: Callable[[bytes], None]) -> None:
        self._need, self._step = count, step
        if count == 0:
            self._step(b"")

    def _magic(self, magic: bytes) -> None:
        if magic == _FRAME_MAGIC:
            self._expect(1, self._descriptor)
        elif magic[1:] == _SKIPPABLE_HIGH and 0x50 <= magic[0] <= 0x5F:
            self._expect(4, self._skippable_size)
        else:
            raise zstandard.ZstdError("not a zstd frame (bad magic number)")

    def _skippable_size(self, size: bytes) -> None:
        self._skip = int.from_bytes(size, "little")
        self._expect(4, self._magic)

    def _descriptor(self, descriptor: bytes) -> None:
        flags = descriptor[0]
        single_segment = bool(flags & 0x20)
        content_size = _CONTENT_SIZE_BYTES[flags >> 6] or (1 if single_segment else 0)
        self._checksum = bool(flags & 0x04)
        rest = (0 if single_segment else 1) + _DICT_ID_BYTES[flags & 0x03] + content_size
        self._expect(rest, lambda _fields: self._expect(3, self._block))

    def _block(self, header: bytes) -> None:
        value = int.from_bytes(header, "little")
        last, kind, size = value & 1, (value >> 1) & 3, value >> 3
        if kind == 3:
            raise zstandard.ZstdError("corrupt zstd block (reserved block type)")
        self._skip = 1 if kind == 1 else size  # an RLE block stores one byte, repeated `size` times
        if not last:
            self._expect(3, self._block)
        elif self._checksum:
            self._expect(4, lambda _checksum: self._expect(4, self._magic))
        else:
            self._expect(4, self._magic)


class _Tee(io.RawIOBase):
    def __init__(self, stream: BinaryIO, walker: FrameWalker) -> None:
        self._stream = stream
        self._walker = walker

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._stream.read(len(buffer))
        self._walker.feed(data)
        buffer[: len(data)] = data
        return len(data)


class _Checked(io.RawIOBase):
    """Decompressed zstd that raises ZstdError at end of input when the input stopped inside a frame."""

    def __init__(self, stream: BinaryIO) -> None:
        self._walker = FrameWalker()
        source = _Tee(stream, self._walker)
        self._reader = zstandard.ZstdDecompressor().stream_reader(source, read_across_frames=True, closefd=False)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        count = self._reader.readinto(buffer)
        if count == 0 and not self._walker.complete:
            raise zstandard.ZstdError("zstd stream is truncated (it ends inside a frame)")
        return count


def checked_reader(stream: BinaryIO) -> BinaryIO:
    """`stream` (zstd frames, maybe several, maybe skippable ones) decompressed, buffered, and checked for truncation."""
    return io.BufferedReader(_Checked(stream), 1 << 20)  # type: ignore[return-value]
