"""Digest parsing and streaming verification."""

from __future__ import annotations

import hashlib
import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from imagekit.digest import SMALL, Digest, Hasher, VerifyingReader
from imagekit.errors import BadDigest, DigestMismatch

EMPTY = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_parse_round_trips() -> None:
    assert str(Digest.parse(EMPTY)) == EMPTY
    assert Digest.of_bytes(b"") == Digest.parse(EMPTY)
    assert Digest.parse(EMPTY).short == "e3b0c44298fc"


@pytest.mark.parametrize(
    "text, problem",
    [
        ("sha256", "algorithm:hex"),
        ("md5:d41d8cd98f00b204e9800998ecf8427e", "unsupported digest algorithm 'md5'"),
        ("sha256:" + "A" * 64, "lowercase hex"),
        ("sha256:" + "a" * 63, "64 lowercase hex"),
        ("sha512:" + "a" * 64, "128 lowercase hex"),
        ("sha256:" + "g" * 64, "lowercase hex"),
    ],
)
def test_bad_digests_name_the_problem(text: str, problem: str) -> None:
    with pytest.raises(BadDigest, match=problem):
        Digest.parse(text)


def test_hasher_counts_and_hashes() -> None:
    hasher = Hasher()
    for part in (b"abc", b"", b"def"):
        hasher.update(part)
    assert hasher.size == 6
    assert hasher.digest().hex == hashlib.sha256(b"abcdef").hexdigest()
    with pytest.raises(BadDigest, match="unsupported digest algorithm 'md5'"):
        Hasher("md5")


def test_of_stream_returns_digest_and_size() -> None:
    data = b"x" * (3 << 20)
    assert Digest.of_stream(io.BytesIO(data)) == (Digest.of_bytes(data), len(data))


def test_verifying_reader_accepts_matching_content() -> None:
    data = b"layer bytes" * 1000
    reader = VerifyingReader(io.BytesIO(data), Digest.of_bytes(data), len(data))
    out = b"".join(iter(lambda: reader.read(4096), b""))
    assert out == data and reader.verified


def test_verifying_reader_raises_at_eof_on_corruption() -> None:
    data = b"layer bytes" * 1000
    corrupt = bytearray(data)
    corrupt[500] ^= 1
    reader = VerifyingReader(io.BytesIO(bytes(corrupt)), Digest.of_bytes(data))
    with pytest.raises(DigestMismatch, match="expected sha256:"):
        while reader.read(4096):
            pass
    assert not reader.verified


def test_verifying_reader_stops_an_endless_stream() -> None:
    reader = VerifyingReader(io.BytesIO(b"y" * 100), Digest.of_bytes(b"y" * 10), expected_size=10)
    with pytest.raises(DigestMismatch, match="size"):
        reader.read(100)


def test_verifying_reader_checks_truncation() -> None:
    reader = VerifyingReader(io.BytesIO(b"y" * 5), Digest.of_bytes(b"y" * 10), expected_size=10)
    with pytest.raises(DigestMismatch, match="expected 10, got 5"):
        reader.read()


def test_verifying_reader_readinto_fills_at_most_the_buffer_and_reads_nothing_after_the_end() -> None:
    data = b"x" * 1000
    view = memoryview(bytearray(300))
    wrong = VerifyingReader(io.BytesIO(data), Digest.of_bytes(b"other"))
    assert [wrong.readinto(view) for _ in range(4)] == [300, 300, 300, 100]
    with pytest.raises(DigestMismatch):
        wrong.readinto(view)
    right = VerifyingReader(io.BytesIO(data), Digest.of_bytes(data), len(data))
    assert right.read() == data and right.verified
    assert right.read() == b"" and right.read(10) == b"" and right.readinto(view) == 0  # after the end: nothing


def test_verifying_reader_read_of_nothing_is_no_end() -> None:
    """read(0) and readinto of an empty buffer ask for nothing: neither may judge the stream (an early check would
    call a good stream short, and mark nothing verified)."""
    data = b"z" * 100
    reader = VerifyingReader(io.BytesIO(data), Digest.of_bytes(data), len(data))
    assert reader.read(0) == b"" and reader.readinto(bytearray(0)) == 0 and not reader.verified
    assert reader.read() == data and reader.verified


@given(st.binary(max_size=4096), st.sampled_from(["sha256", "sha512"]))
def test_of_bytes_agrees_with_hashlib(data: bytes, algorithm: str) -> None:
    """Short byte strings go through the interpreter's SHA-2, long ones and streams through OpenSSL's: one answer."""
    assert Digest.of_bytes(data, algorithm).hex == hashlib.new(algorithm, data).hexdigest()
    assert Digest.of_stream(io.BytesIO(data), algorithm)[0] == Digest.of_bytes(data, algorithm)


def test_of_bytes_past_the_small_size_uses_the_stream_hash_and_agrees() -> None:
    data = bytes(range(256)) * (SMALL // 256 + 3)
    assert len(data) > SMALL
    assert Digest.of_bytes(data).hex == hashlib.sha256(data).hexdigest()
    assert Digest.of_bytes(data[:SMALL]).hex == hashlib.sha256(data[:SMALL]).hexdigest()


def test_verifying_reader_read_none_reads_to_the_end_and_checks_it() -> None:
    """read(None) is io's "everything" as read(-1) is: the whole rest, and the end's digest check with it."""
    data = b"n" * 100
    reader = VerifyingReader(io.BytesIO(data), Digest.of_bytes(data), len(data))
    assert reader.read(None) == data and reader.verified  # type: ignore[arg-type]
    wrong = VerifyingReader(io.BytesIO(data), Digest.of_bytes(b"other"))
    with pytest.raises(DigestMismatch):
        wrong.read(None)  # type: ignore[arg-type]


def test_a_mismatch_names_the_blob_what_was_promised_and_what_came() -> None:
    """The one line a user gets: which blob (by its digest unless the caller names it), the expected digest or
    size, and the actual one."""
    good, bad = b"good", b"evil"
    expected, actual = Digest.of_bytes(good), Digest.of_bytes(bad)
    with pytest.raises(DigestMismatch) as caught:
        VerifyingReader(io.BytesIO(bad), expected).read()
    assert str(caught.value) == f"blob {expected}: expected {expected}, got {actual}"
    with pytest.raises(DigestMismatch) as caught:
        VerifyingReader(io.BytesIO(bad), expected, what="config").read()
    assert str(caught.value) == f"config: expected {expected}, got {actual}"
    with pytest.raises(DigestMismatch) as caught:
        VerifyingReader(io.BytesIO(b"goo"), expected, 4).read()
    assert str(caught.value) == f"blob {expected} size: expected 4, got 3"
    with pytest.raises(DigestMismatch) as caught:
        VerifyingReader(io.BytesIO(b"good!"), expected, 4).read(5)
    assert str(caught.value) == f"blob {expected} size: expected 4, got more than 4 bytes"
