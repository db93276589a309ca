"""Truncated zstd is an error: a stream cut inside a frame fails, the whole stream decodes."""

from __future__ import annotations

import io
import itertools

import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from imagekit.layers.compression import DECOMPRESS_ERRORS, ZSTD, compressor, decompressed
from imagekit.layers.zstdframes import FrameWalker

SKIPPABLE = b"\x5a\x2a\x4d\x18" + (3).to_bytes(4, "little") + b"abc"


def _frame(data: bytes, checksum: bool, content_size: bool) -> bytes:
    return zstandard.ZstdCompressor(write_checksum=checksum, write_content_size=content_size).compress(data)


frames = st.lists(
    st.tuples(st.binary(max_size=3000) | st.just(b"a" * 300_000), st.booleans(), st.booleans(), st.booleans()),
    min_size=1,
    max_size=3,
)


@settings(max_examples=60, deadline=None)
@given(parts=frames, data=st.data())
def test_whole_streams_decode_and_every_cut_is_refused(parts: list[tuple[bytes, bool, bool, bool]], data: st.DataObject) -> None:
    pieces = [piece for raw, checksum, size, skip in parts for piece in ([SKIPPABLE] if skip else []) + [_frame(raw, checksum, size)]]
    stream = b"".join(pieces)
    assert decompressed(io.BytesIO(stream), ZSTD).read() == b"".join(raw for raw, *_ in parts)
    # A cut between frames leaves a valid stream (Go's reader cannot tell either); any other cut is refused.
    boundaries = set(itertools.accumulate(len(piece) for piece in pieces))
    cut = data.draw(st.integers(min_value=1, max_value=len(stream) - 1).filter(lambda n: n not in boundaries))
    with pytest.raises(DECOMPRESS_ERRORS):
        decompressed(io.BytesIO(stream[:cut]), ZSTD).read()


@given(chunks=st.lists(st.integers(min_value=1, max_value=50), min_size=1, max_size=40))
def test_the_walk_does_not_depend_on_how_the_bytes_are_split(chunks: list[int]) -> None:
    stream = SKIPPABLE + _frame(b"x" * 5000, True, True) + _frame(b"y", False, False)
    walker, offset = FrameWalker(), 0
    for size in chunks:
        walker.feed(stream[offset : offset + size])
        offset += size
    walker.feed(stream[offset:])
    assert walker.complete


def test_imagekits_own_multithreaded_zstd_is_complete_and_garbage_is_refused() -> None:
    codec = compressor(ZSTD)
    blob = codec.compress(bytes(range(256)) * 40_000) + codec.flush()
    assert len(decompressed(io.BytesIO(blob), ZSTD).read()) == 256 * 40_000
    with pytest.raises(zstandard.ZstdError, match="bad magic"):
        decompressed(io.BytesIO(b"not zstd at all"), ZSTD).read()
