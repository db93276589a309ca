"""The tar parser on its own: any chunking of the input reads the same, and the header forms of old and
unusual writers (v7, ustar prefixes, GNU long names, base-256, signed checksums, full-width fields)."""

from __future__ import annotations

import io
import os
import tarfile

import pytest

from imagekit.errors import LayerError
from imagekit.layers.tarread import Entry, TarReader, chunks, show
from tests.layers.unpack.tars import MTIME, E, directory, file, hardlink, symlink, tar, xattrs

LONG = "d" * 60 + "/" + "e" * 90 + "/" + "f" * 99  # 251 bytes: a ustar prefix, a GNU long name or a PAX path
ENTRIES = [
    directory("d" * 60),
    file(LONG, b"x" * 3000, uid=1001, gid=1002, mode=0o4755),
    file("empty"),
    file("one", b"1"),
    file("block", b"b" * 511),
    file("past-a-block", b"p" * 513),
    hardlink("hard", "one"),
]


def entries_for(fmt: int) -> list[E]:
    """ENTRIES and a symlink whose target needs GNU's long link or PAX's linkpath (ustar: exactly 100 bytes)."""
    return [*ENTRIES, symlink("link", "t" * 100 if fmt == tarfile.USTAR_FORMAT else LONG)]


def read(data: bytes, chunk: int = 1 << 20) -> tuple[list[tuple[Entry, bytes]], int]:
    """Every entry with its data (read through copy_data), and the offset at the end."""
    reader = TarReader(chunks(io.BytesIO(data), chunk), "t")
    found = []
    for entry in reader:
        fd = os.memfd_create("data")
        try:
            reader.copy_data(fd)
            found.append((entry, os.pread(fd, entry.size + 1, 0)))
        finally:
            os.close(fd)
    return found, reader.offset


@pytest.mark.parametrize("fmt", [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT], ids=["ustar", "gnu", "pax"])
def test_every_format_and_any_chunking_read_the_same(fmt: int) -> None:
    data = tar(entries_for(fmt), fmt=fmt)
    whole, offset = read(data)
    assert [(e.name.decode(), e.type, e.uid, e.gid, e.mode, e.mtime_ns, e.linkname.decode(), body) for e, body in whole] == [
        ("d" * 60 + "/", tarfile.DIRTYPE, 0, 0, 0o755, MTIME * 10**9, "", b""),
        (LONG, tarfile.REGTYPE, 1001, 1002, 0o4755, MTIME * 10**9, "", b"x" * 3000),
        ("empty", tarfile.REGTYPE, 0, 0, 0o644, MTIME * 10**9, "", b""),
        ("one", tarfile.REGTYPE, 0, 0, 0o644, MTIME * 10**9, "", b"1"),
        ("block", tarfile.REGTYPE, 0, 0, 0o644, MTIME * 10**9, "", b"b" * 511),
        ("past-a-block", tarfile.REGTYPE, 0, 0, 0o644, MTIME * 10**9, "", b"p" * 513),
        ("hard", tarfile.LNKTYPE, 0, 0, 0o644, MTIME * 10**9, "one", b""),
        ("link", tarfile.SYMTYPE, 0, 0, 0o777, MTIME * 10**9, "t" * 100 if fmt == tarfile.USTAR_FORMAT else LONG, b""),
    ]
    assert offset == len(data.rstrip(b"\0")) + (-len(data.rstrip(b"\0")) % 512) + 1024  # through both end blocks
    for size in (1, 7, 512, 1000):  # headers, extended headers and data split across chunks
        assert read(data, size) == (whole, offset)


def test_pax_records_and_skipped_entries_across_tiny_chunks() -> None:
    data = tar([file("a", b"a" * 700, pax={"mtime": "1600000000.5", **xattrs(user_k=b"v" * 600)}), file("b", b"b")])
    (first, _), (second, body) = read(data, 3)[0]
    assert (first.mtime_ns, first.xattrs, second.name, body) == (1600000000_500000000, (("user.k", b"v" * 600),), b"b", b"b")
    reader = TarReader(chunks(io.BytesIO(data), 5), "t")
    assert [e.name for e in reader] == [b"a", b"b"]  # data never copied: skipped, block padding too
    assert reader.offset == 512 * (1 + 2 + 1 + 2 + 1 + 1 + 2)  # pax header and records, a, its 700 bytes, b, its byte, the end


@pytest.mark.parametrize(
    ("mtime", "expected"),
    [
        (b"-1.5", -1_500_000_000),
        (b"-20", -20 * 10**9),
        (b"7", 7 * 10**9),
        (b"9223372036.854775807", (1 << 63) - 1),  # the last nanosecond a 64-bit timespec holds
        (b"-9223372036.854775807", -((1 << 63) - 1)),
        (b"9223372036.854775808", "time out of range"),
        (b"-9223372036.854775808", "time out of range"),
        (b"9" * 19, "time out of range"),
        (b"9" * 20, "invalid PAX time"),
        (b"1.x", "invalid PAX time"),
        (b"1-", "invalid PAX time"),
    ],
)
def test_pax_times(mtime: bytes, expected: int | str) -> None:
    data = tar([file("a", pax={"mtime": mtime.decode()})])
    if isinstance(expected, int):
        assert read(data)[0][0][0].mtime_ns == expected
    else:
        with pytest.raises(LayerError, match=f"^t: {expected}"):
            read(data)


@pytest.mark.parametrize(("uid", "error"), [(b"9" * 19, "owner or device number out of range"), (b"9" * 20, "invalid PAX uid")])
def test_pax_numbers_have_at_most_19_digits(uid: bytes, error: str) -> None:
    with pytest.raises(LayerError, match=f"^t: {error}"):
        read(tar([file("a", pax={"uid": uid.decode()})]))


def test_extended_headers_up_to_one_mib_zero_blocks_and_header_only_types() -> None:
    def comment(total: int) -> bytes:
        """One PAX record of exactly `total` bytes (a comment: read and ignored)."""
        record = b"%d comment=%s\n" % (total, b"c" * (total - len(b"%d comment=\n" % total)))
        assert len(record) == total
        return block(b"PaxHeader", kind=b"x", fields={(124, 136): b"%011o\0" % total}) + record + bytes(-total % 512)

    assert [e.name for e in entries(comment(1 << 20), block(b"a"))] == [b"a"]
    with pytest.raises(LayerError, match="^t: tar extended header of 1048577 bytes is larger than the 1 MiB allowed"):
        entries(comment((1 << 20) + 1), block(b"a"))
    with pytest.raises(LayerError, match="^t: invalid tar header after a zero block"):
        read(block(b"a") + bytes(512) + block(b"b") + END)
    assert [e.name for e, _ in read(block(b"a") + bytes(512))[0]] == [b"a"]  # GNU's lone zero block ends it too
    # a symlink, a directory: no data follows their headers, whatever their size field says
    sized = {(124, 136): b"%011o\0" % 1000}
    assert [e.name for e in entries(block(b"l", kind=b"2", fields=sized), block(b"d/", kind=b"5", fields=sized), block(b"f"))] == [b"l", b"d/", b"f"]


def block(name: bytes, *, kind: bytes = b"0", fields: dict[tuple[int, int], bytes] | None = None, magic: bytes = b"", prefix: bytes = b"", signed: bool = False) -> bytes:
    """One header block by hand: `fields` overrides (start, end) byte ranges; the checksum is computed
    over unsigned bytes, or signed ones as some old tars did."""
    out = bytearray(512)
    out[0 : len(name)] = name
    for (start, end), value in {(100, 108): b"0000644\0", (108, 116): b"0000000\0", (116, 124): b"0000000\0", (124, 136): b"00000000000\0", (136, 148): b"%011o\0" % MTIME, **(fields or {})}.items():
        out[start:end] = value
    out[156:157] = kind
    out[257 : 257 + len(magic)] = magic
    out[345 : 345 + len(prefix)] = prefix
    out[148:156] = b" " * 8
    total = sum(b - 256 if signed and b > 127 else b for b in out)
    out[148:156] = b"%06o\0 " % total
    return bytes(out)


END = bytes(1024)


def entries(*blocks: bytes) -> list[Entry]:
    return [entry for entry, _ in read(b"".join(blocks) + END)[0]]


def test_old_and_unusual_headers() -> None:
    v7 = entries(block(b"dir/", kind=b"\0"), block(b"file", kind=b"\0"), block(b"contiguous", kind=b"7"), block(b"plain-dir/", kind=b"5"))
    assert [(e.name, e.type) for e in v7] == [(b"dir/", b"5"), (b"file", b"0"), (b"contiguous", b"0"), (b"plain-dir/", b"5")]
    for name in ("café".encode(), b"\x80\x7f"):  # a byte above 127 counted as negative; 127 is not
        assert [e.name for e in entries(block(name, signed=True))] == [name]
    ustar = entries(block(b"n" * 100, magic=b"ustar\x0000", prefix=b"p" * 155), block(b"plain", magic=b"ustar\x0000"), block(b"not-ustar", prefix=b"ignored"))
    assert [e.name for e in ustar] == [b"p" * 155 + b"/" + b"n" * 100, b"plain", b"not-ustar"]
    # full-width fields with no terminator: every digit counts, the neighbour's first byte does not
    (dense,) = entries(
        block(
            b"n" * 100,
            kind=b"2",
            fields={(100, 108): b"00000755", (108, 116): b"12345671", (116, 124): b"12345672", (136, 148): b"100000000001", (157, 257): b"l" * 100},
            magic=b"ustar\x0000",
        )
    )
    assert (dense.name, dense.mode, dense.uid, dense.gid, dense.mtime_ns, dense.linkname) == (b"n" * 100, 0o755, 0o12345671, 0o12345672, 0o100000000001 * 10**9, b"l" * 100)
    # GNU base-256: the high bit, then big-endian two's complement with 0x40 as the sign
    (big,) = entries(block(b"big", fields={(108, 116): b"\x80" + (3_000_000).to_bytes(7, "big"), (116, 124): b"\x80\x00\x00\x00\x00\x00\x01\x00"}))
    assert (big.uid, big.gid) == (3_000_000, 256)
    # a size past 2**88 (its top byte counts; a truncated archive, read no further than its header) and a
    # mtime before 1970 (negative: allowed for times); an all-NUL field is 0
    reader = iter(TarReader([block(b"huge", fields={(124, 136): b"\x81" + bytes(10) + b"\x05", (108, 116): bytes(8)})], "t"))
    huge = next(reader)
    assert (huge.size, huge.uid) == ((1 << 88) + 5, 0)
    (old,) = entries(block(b"old", fields={(136, 148): b"\xff" * 12}))
    assert old.mtime_ns == -(10**9)
    with pytest.raises(LayerError, match="^t: negative size or owner in the tar header of 'neg'"):
        entries(block(b"neg", fields={(116, 124): b"\xff" * 8}))  # -1
    with pytest.raises(LayerError, match="^t: negative size or owner in the tar header of 'neg'"):
        entries(block(b"neg", fields={(108, 116): b"\xc0" + bytes(6) + b"\x01"}))  # -(2**62) + 1
    # (uid_t)-1 is "unchanged" to chown, and a device number needs 31 bits: both limits are exact
    edge = entries(block(b"ok", kind=b"3", fields={(108, 116): _base256(0xFFFFFFFE), (329, 337): _base256((1 << 31) - 1), (337, 345): _base256((1 << 31) - 1)}))
    assert (edge[0].uid, edge[0].devmajor, edge[0].devminor) == (0xFFFFFFFE, (1 << 31) - 1, (1 << 31) - 1)
    for field, value in (((116, 124), 0xFFFFFFFF), ((329, 337), 1 << 31), ((337, 345), 1 << 31)):
        with pytest.raises(LayerError, match="^t: owner or device number out of range in the tar header of 'id'"):
            entries(block(b"id", kind=b"3", fields={field: _base256(value)}))


def _base256(value: int) -> bytes:
    return b"\x80" + value.to_bytes(7, "big")


def test_chunks_are_at_most_the_size_asked() -> None:
    """The reader holds a chunk at a time, never a whole (decompressed) layer: chunks() asks the stream for `size`."""
    assert [len(c) for c in chunks(io.BytesIO(b"x" * 10), 4)] == [4, 4, 2]


def test_names_in_messages_are_quoted_escaped_and_cut_in_the_middle() -> None:
    """A hostile name's invalid UTF-8 becomes \\x escapes in the one-line error (never a UnicodeDecodeError), and a
    name longer than the limit keeps its two ends."""
    assert show(b"caf\xe9/\xff") == repr("caf\\xe9/\\xff")
    assert show(b"a" * 10, 10) == repr("a" * 10)
    assert show(b"a" * 7 + b"b" * 7, 10) == repr("aaaaa...bbbbb")
