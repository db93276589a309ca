"""The hostile-layer corpus: malicious tarballs generated at test time, each with what must happen.

A case builds its layers knowing `outside`, the directory that holds the unpack target and the
canaries, so an absolute symlink can aim straight at a canary. `error` is a fragment of the one-line
message the unpack must fail with; without one the unpack succeeds and `check` inspects the target
(everything resolved inside it). Either way nothing outside the target may change.
"""

from __future__ import annotations

import functools
import gzip
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import zstandard

from imagekit.layers.apply import Limits
from tests.layers.unpack.tars import END, E, compress, directory, file, hardlink, header, pad, pax_entry, symlink, tar

Build = Callable[[Path], list[bytes]]
Check = Callable[[Path, Path], None]
MiB = 1 << 20


@dataclass(frozen=True)
class Case:
    name: str
    build: Build  # outside -> uncompressed layer tars (or blobs when `raw`)
    error: str | None = None
    check: Check | None = None
    codec: str = "none"
    raw: bool = False  # build returns finished blobs (compressed already, maybe corrupt)
    limits: Limits | None = None


def _inside(*parts: str, content: bytes | None = None) -> Check:
    """The file landed inside the target at TARGET/parts (absolute host paths re-rooted)."""

    def check(target: Path, outside: Path) -> None:
        path = target.joinpath(*(p.replace("{o}", str(outside)).lstrip("/") for p in parts))
        assert path.is_file(), f"{path} missing: the write went elsewhere"
        if content is not None:
            assert path.read_bytes() == content

    return check


def _absent(*parts: str) -> Check:
    def check(target: Path, outside: Path) -> None:
        assert not target.joinpath(*parts).exists()

    return check


def _bomb(compressor: zlib._Compress | zstandard.ZstdCompressionObj, count: int, size: int) -> bytes:
    """`count` files of `size` zero bytes, compressed as they are made (never all in memory)."""
    parts = []
    chunk = bytes(8 * MiB)
    for i in range(count):
        parts.append(compressor.compress(header(b"zero%d" % i, size=size)))
        for _ in range(size // len(chunk)):
            parts.append(compressor.compress(chunk))
    parts += [compressor.compress(END), compressor.flush()]
    return b"".join(parts)


@functools.cache
def _gzip_bomb(outside: Path | None = None) -> list[bytes]:
    # 24 files of 8 MiB zeros: 192 MiB from ~200 KiB, against a 64 MiB cap: refused at the 8th file
    return [_bomb(zlib.compressobj(1, zlib.DEFLATED, 31), 24, 8 * MiB)]


@functools.cache
def _zstd_bomb(outside: Path | None = None) -> list[bytes]:
    # one entry of 1 GiB zeros in a few KiB: refused before a byte is written
    return [_bomb(zstandard.ZstdCompressor().compressobj(), 1, 1 << 30)]


def _truncated(outside: Path) -> list[bytes]:
    data = tar([file("a", b"x" * 5000), file("b", b"y" * 5000)])
    return [data[: 512 + 2000]]


def _truncated_gzip(outside: Path) -> list[bytes]:
    blob = gzip.compress(tar([file("a", bytes(range(256)) * 400)]), mtime=0)
    return [blob[: len(blob) // 2]]


def _corrupt_gzip(outside: Path) -> list[bytes]:
    blob = bytearray(gzip.compress(tar([file("a", bytes(range(256)) * 400)]), mtime=0))
    for i in range(40, 60):
        blob[i] ^= 0xFF
    return [bytes(blob)]


def _corrupt_zstd(outside: Path) -> list[bytes]:
    # with a content checksum, as the zstd tool writes frames
    blob = bytearray(zstandard.ZstdCompressor(write_checksum=True).compress(tar([file("a", bytes(range(256)) * 400)])))
    for i in range(20, 40):
        blob[i] ^= 0x5A
    return [bytes(blob)]


def _truncated_zstd(outside: Path) -> list[bytes]:
    blob = zstandard.ZstdCompressor().compress(tar([file(f"f{i}", bytes([i]) * 100_000) for i in range(20)]))
    return [blob[: len(blob) // 2]]


def _no_end_blocks(outside: Path) -> list[bytes]:
    return [tar([file("a", b"x" * 100)])[:1024]]


def _entry_bomb(outside: Path) -> list[bytes]:
    return [tar([file(f"f{i}") for i in range(3000)])]


def _raw(*blocks: bytes) -> Build:
    return lambda outside: [b"".join(blocks) + END]


def _pax_records(raw: bytes) -> Build:
    """An entry `a` behind a PAX header whose body is `raw`, byte for byte (malformed on purpose)."""
    return _raw(header(b"PaxHeader", size=len(raw), type=b"x") + pad(raw), header(b"a"))


CASES = [
    # --- path traversal ----------------------------------------------------------------------------------
    Case("dotdot", lambda o: [tar([file("../outside.txt", b"pwned")])], error="leaves the root through '..'"),
    Case("dotdot-nested", lambda o: [tar([directory("a"), file("a/../../outside.txt", b"pwned")])], error="leaves the root"),
    Case("dotdot-deep", lambda o: [tar([file("a/b/../../../../../../" + str(o).lstrip("/") + "/outside.txt", b"pwned")])], error="leaves the root"),
    Case("absolute-path", lambda o: [tar([file(f"{o}/outside.txt", b"pwned")])], check=_inside("{o}", "outside.txt", content=b"pwned")),
    # --- symlinks ----------------------------------------------------------------------------------------
    Case("symlink-absolute-escape", lambda o: [tar([symlink("esc", str(o)), file("esc/outside.txt", b"pwned")])], check=_inside("{o}", "outside.txt")),
    Case("symlink-relative-escape", lambda o: [tar([symlink("up", "../../../../../../.."), file("up/outside.txt", b"pwned")])], check=_inside("outside.txt")),
    Case("symlink-to-root", lambda o: [tar([symlink("r", "/"), file("r/etc/passwd", b"root::0:0::/:/bin/sh\n")])], check=_inside("etc", "passwd")),
    Case("symlink-etc-to-itself", lambda o: [tar([symlink("etc", "/etc"), file("etc/passwd", b"root::0:0::/:/bin/sh\n")])], error="too many symbolic links"),
    Case(
        "symlink-chain",
        lambda o: [tar([symlink("a", "b"), symlink("b", "c/../d"), directory("c"), symlink("d", str(o)), file("a/outside.txt", b"pwned")])],
        check=_inside("{o}", "outside.txt"),
    ),
    Case("symlink-loop", lambda o: [tar([symlink("a", "b"), symlink("b", "a"), file("a/x", b"pwned")])], error="too many symbolic links"),
    Case("symlink-self-loop", lambda o: [tar([symlink("l", "l"), file("l/x")])], error="too many symbolic links"),
    Case(
        "symlink-replaces-directory",
        lambda o: [tar([directory("d"), file("d/x"), symlink("d", str(o)), file("d/outside.txt", b"pwned")])],
        check=_inside("{o}", "outside.txt"),
    ),
    Case(
        "symlink-in-lower-layer",
        lambda o: [tar([symlink("lib", str(o))]), tar([file("lib/outside.txt", b"pwned")])],
        check=_inside("{o}", "outside.txt"),
    ),
    Case(
        "symlink-absolute-mid-path",
        lambda o: [tar([directory("a"), directory("a/b"), symlink("a/b/esc", str(o)), file("a/b/esc/outside.txt", b"pwned")])],
        check=_inside("{o}", "outside.txt", content=b"pwned"),
    ),
    Case("symlink-dangling-parent", lambda o: [tar([symlink("gone", "/nowhere/at/all"), file("gone/x")])], check=_inside("nowhere", "at", "all", "x")),
    # --- hardlinks ---------------------------------------------------------------------------------------
    Case("hardlink-absolute-escape", lambda o: [tar([hardlink("pw", f"{o}/outside.txt")])], error="does not exist"),
    Case("hardlink-etc-passwd", lambda o: [tar([hardlink("pw", "/etc/passwd")])], error="does not exist"),
    Case("hardlink-dotdot", lambda o: [tar([hardlink("pw", "../outside.txt")])], error="leaves the root"),
    Case("hardlink-through-symlink", lambda o: [tar([symlink("h", str(o)), hardlink("x", "h/outside.txt")])], error="does not exist"),
    Case("hardlink-to-directory", lambda o: [tar([directory("d"), hardlink("x", "d")])], error="hardlink to the directory"),
    Case("hardlink-to-itself", lambda o: [tar([hardlink("x", "x")])], error="which is not a file"),
    # --- whiteouts ---------------------------------------------------------------------------------------
    Case("whiteout-dotdot", lambda o: [tar([file("../.wh.outside.txt")])], error="leaves the root"),
    Case("whiteout-through-symlink", lambda o: [tar([symlink("s", str(o)), file("s/.wh.outside.txt")])], check=_absent("s", ".wh.outside.txt")),
    Case("whiteout-dot-names", lambda o: [tar([file(".wh..")])], error="invalid whiteout"),
    Case("whiteout-dotdot-name", lambda o: [tar([file(".wh...")])], error="invalid whiteout"),
    Case("whiteout-dotdot-name-nested", lambda o: [tar([directory("d"), file("d/keep"), file("d/.wh...")])], error="invalid whiteout"),
    Case("whiteout-as-directory", lambda o: [tar([file(".wh.etc/passwd")])], error="such names are whiteouts, never directories"),
    Case("opaque-through-symlink", lambda o: [tar([symlink("s", str(o)), file("s/.wh..wh..opq")])]),
    Case("opaque-through-relative-symlink", lambda o: [tar([symlink("s", "../.."), file("s/.wh..wh..opq")])]),
    # --- type clashes ------------------------------------------------------------------------------------
    Case("file-under-file", lambda o: [tar([file("a", b"1"), file("a/b", b"2")])], error="not a directory"),
    Case("root-as-file", lambda o: [tar([file(".", b"x")])], error="the root can only be a directory"),
    Case(
        "file-replaces-directory-tree",
        lambda o: [tar([directory("a"), directory("a/b"), file("a/b/c", b"1")]), tar([file("a", b"file now")])],
        check=_inside("a", content=b"file now"),
    ),
    # --- names -------------------------------------------------------------------------------------------
    Case("long-component", lambda o: [tar([file("d/" + "n" * 300, b"x")])], error="name is too long"),
    Case("long-path", lambda o: [tar([file("d/" * 2100 + "f", b"x")])], error="name is too long"),
    Case("nul-in-pax-path", _raw(pax_entry({b"path": b"a\0/../../outside.txt"}), header(b"a", size=0)), error="NUL byte"),
    # --- bombs and caps ----------------------------------------------------------------------------------
    Case("gzip-bomb", _gzip_bomb, error="the size cap", raw=True, codec="gzip", limits=Limits(max_bytes=64 * MiB)),
    Case("zstd-bomb", _zstd_bomb, error="the size cap", raw=True, codec="zstd", limits=Limits(max_bytes=64 * MiB)),
    Case("entry-count-bomb", _entry_bomb, error="the inode cap", limits=Limits(max_inodes=1000)),
    Case("pax-huge-size", _raw(pax_entry({b"size": b"1000000000000000"}), header(b"big", size=0)), error="the size cap"),
    Case("pax-negative-size", _raw(pax_entry({b"size": b"-512"}), header(b"neg", size=0)), error="invalid PAX size"),
    Case("pax-record-too-long", _raw(header(b"PaxHeader", size=20, type=b"x") + pad(b"99 path=abc\n"), header(b"a")), error="malformed PAX"),
    Case("pax-length-not-a-number", _pax_records(b"x9 path=a\n"), error="malformed PAX"),
    Case("pax-length-too-small", _pax_records(b"3 path=a\n"), error="malformed PAX"),
    Case("pax-length-without-space", _pax_records(b"1" * 24 + b"\n"), error="malformed PAX"),
    Case("pax-record-unterminated", _pax_records(b"9 path=ab"), error="malformed PAX"),
    Case("pax-record-without-equals", _pax_records(b"9 pathab\n"), error="malformed PAX"),
    Case("pax-record-without-keyword", _pax_records(b"4 =\n"), error="malformed PAX"),
    Case("pax-record-without-keyword-with-value", _pax_records(b"7 =abc\n"), error="malformed PAX"),
    Case("pax-second-record-broken", _pax_records(b"9 path=a\nx9 uid=0\n"), error="malformed PAX header record at byte 9"),
    Case("pax-length-of-20-digits", _pax_records(b"0" * 18 + b"28 path=a\n"), error="malformed PAX"),
    Case("pax-key-not-utf8", _raw(pax_entry({b"SCHILY.xattr.user.\xff": b"v"}), header(b"x")), check=_inside("x")),
    Case("pax-value-with-equals", _raw(pax_entry({b"uid": b"0", b"path": b"a=b=c"}), header(b"x")), check=_inside("a=b=c")),
    Case("pax-header-huge", _raw(header(b"PaxHeader", size=8 * MiB, type=b"x")), error="larger than the 1 MiB allowed"),
    Case("nul-in-symlink-target", _raw(pax_entry({b"linkpath": b"/etc\0passwd"}), header(b"l", type=b"2")), error="NUL byte in it"),
    Case("nul-in-xattr-name", _raw(pax_entry({b"SCHILY.xattr.user.a\0b": b"v"}), header(b"x")), error="invalid metadata"),
    Case("pax-huge-uid", _raw(pax_entry({b"uid": b"1099511627776"}), header(b"u")), error="owner or device number out of range"),
    Case("pax-digit-flood", _raw(pax_entry({b"gid": b"9" * 5000}), header(b"g")), error="invalid PAX gid"),
    Case("pax-huge-mtime", _raw(pax_entry({b"mtime": b"99999999999999999"}), header(b"t")), error="time out of range"),
    Case("base256-huge-device", _raw(header(b"d", type=b"3", raw_major=b"\x80" + b"\xff" * 7)), error="owner or device number out of range"),
    Case("base256-negative-size", _raw(header(b"neg", raw_size=b"\xff" * 12)), error="negative size"),
    Case("octal-garbage-size", _raw(header(b"bad", raw_size=b"12x4567\0\0\0\0\0")), error="invalid number"),
    # --- broken streams ----------------------------------------------------------------------------------
    Case("truncated-tar", _truncated, error="truncated tar archive in entry 'a'", raw=True),
    Case("truncated-gzip", _truncated_gzip, error="gzip", raw=True, codec="gzip"),
    Case("corrupt-gzip", _corrupt_gzip, error="corrupt gzip stream", raw=True, codec="gzip"),
    Case("corrupt-zstd", _corrupt_zstd, error="corrupt zstd stream", raw=True, codec="zstd"),
    Case("truncated-zstd", _truncated_zstd, error="zstd stream is truncated", raw=True, codec="zstd"),
    Case("missing-end-blocks", _no_end_blocks, error="without its end-of-archive blocks", raw=True),
    Case("not-a-tar", lambda o: [zlib.compress(b"hello") * 200], error="not a tar archive", raw=True),
    Case("bad-checksum", _raw(header(b"a")[:148] + b"0000000\0" + header(b"a")[156:]), error="bad checksum"),
    # --- odd types ---------------------------------------------------------------------------------------
    Case("unknown-typeflag", lambda o: [tar([E("weird", b"Z")])], error="unsupported tar entry type 'Z'"),
    Case("gnu-sparse", _raw(pax_entry({b"GNU.sparse.major": b"1", b"GNU.sparse.minor": b"0"}), header(b"sparse")), error="sparse file"),
]

BY_NAME = {case.name: case for case in CASES}


def blobs(case: Case, outside: Path) -> list[bytes]:
    """The case's layer blobs, compressed with its codec unless it built them finished."""
    built = case.build(outside)
    return built if case.raw else [compress(data, case.codec) for data in built]