"""A streaming tar reader for untrusted layers: headers as values, file data copied straight to a descriptor.

Why not `tarfile`: in stream mode it keeps every member it has seen (an entry-count bomb becomes a
memory bomb), reads a PAX header of any announced size into memory, and copies file data through
several intermediate buffers. This reader works on the chunks it is given (writing file data
straight from them), caps PAX and GNU long-name
records at 1 MiB (Go's archive/tar limit), and reads the archive the way Go's archive/tar does,
since Go wrote most layers in the wild: ustar, GNU and PAX headers, base-256 numbers, header-only
types never carry data whatever their size field says, global PAX headers are skipped (as Docker and
containerd skip them), and one zero block ends an archive (GNU tar's "lone zero block"). Unlike
Go, an archive that stops after an entry without any zero block is truncated: a zstd reader may
end a cut stream quietly at a block boundary, and every tar writer writes the end blocks.
Names stay bytes from end to end: layers carry whatever bytes their authors' filesystems had.

Imports: stdlib, imagekit.errors.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import BinaryIO

from imagekit.errors import LayerError
from imagekit.layers.tarformat import (
    BLKTYPE,
    BLOCK,
    CHRTYPE,
    DIRTYPE,
    FIFOTYPE,
    LNKTYPE,
    REGTYPE,
    SYMTYPE,
    XATTR_PREFIX,
    XHDTYPE,
)
from imagekit.values import value

#: Largest PAX extended header or GNU long name/link accepted (Go's maxSpecialFileSize).
MAX_META = 1 << 20
_CHUNK = 1 << 20

#: Types whose data area is empty whatever the size field says (Go's isHeaderOnlyType).
_HEADER_ONLY = {LNKTYPE, SYMTYPE, CHRTYPE, BLKTYPE, DIRTYPE, FIFOTYPE}
_PAX, _PAX_GLOBAL, _GNU_LONGNAME, _GNU_LONGLINK = XHDTYPE, b"g", b"L", b"K"
_XATTR = XATTR_PREFIX.decode()
_NO_ID = 0xFFFFFFFF  # (uid_t)-1 means "leave unchanged" to chown: no file can be owned by it
_MAX_DEVICE = 1 << 31
_MAX_TIME = 1 << 63  # nanoseconds: what a 64-bit timespec holds, year 2262


@value
class Entry:
    """One archive member, PAX and GNU extensions applied. `type` is the typeflag byte (b"0" for
    every regular-file spelling); times are nanoseconds since the epoch."""

    name: bytes
    type: bytes
    size: int
    mode: int
    uid: int
    gid: int
    mtime_ns: int
    atime_ns: int | None
    linkname: bytes
    devmajor: int
    devminor: int
    xattrs: tuple[tuple[str, bytes], ...]


def chunks(stream: BinaryIO, size: int = _CHUNK) -> Iterator[bytes]:
    """A stream as the chunks TarReader reads."""
    while data := stream.read(size):
        yield data


class TarReader:
    """Iterates the entries of a tar archive given as chunks of bytes; `copy_data(fd)` writes the
    current entry's data straight from those chunks (no copy in between).

    Errors the chunk source raises propagate untouched, so the caller can tell a corrupt compressed
    stream from a malformed archive (LayerError, naming `what`). `offset` counts the bytes consumed
    so far, for size caps.
    """

    def __init__(self, source: Iterable[bytes], what: str) -> None:
        self._source = iter(source)
        self._what = what
        self._view = memoryview(b"")
        self._pos = 0
        self._left = 0  # data bytes of the current entry not consumed yet
        self._pad = 0  # and the padding after them, up to a block boundary
        self._entry = b""
        self.offset = 0

    # --- input ------------------------------------------------------------------------------------------
    def _fill(self) -> bool:
        """Appends the next chunk to what is left of the current one; False at the end of the input."""
        chunk = next(self._source, None)
        if not chunk:
            return False
        rest = self._view[self._pos :]
        self._view = memoryview(bytes(rest) + chunk if rest else chunk)  # a header across two chunks: rare
        self._pos = 0
        return True

    def _take(self, size: int) -> memoryview | None:
        """The next `size` bytes, valid until the next read; None at the end before the first byte."""
        while len(self._view) - self._pos < size:
            if not self._fill():
                if len(self._view) == self._pos:
                    return None
                raise LayerError(f"{self._what}: truncated tar archive{self._after()}")
        view = self._view[self._pos : self._pos + size]
        self._pos += size
        self.offset += size
        return view

    def _after(self) -> str:
        return f" in entry {show(self._entry)}" if self._entry else ""

    def _skip(self, size: int) -> None:
        while size:
            if self._pos == len(self._view) and not self._fill():
                raise LayerError(f"{self._what}: truncated tar archive{self._after()}")
            step = min(size, len(self._view) - self._pos)
            self._pos += step
            self.offset += step
            size -= step

    def copy_data(self, fd: int) -> None:
        """Writes the current entry's data (all of it, once) to `fd`."""
        left, self._left = self._left, 0
        while left:
            if self._pos == len(self._view) and not self._fill():
                raise LayerError(f"{self._what}: truncated tar archive in entry {show(self._entry)}")
            step = min(left, len(self._view) - self._pos)
            written = os.write(fd, self._view[self._pos : self._pos + step])
            self._pos += written
            self.offset += written
            left -= written

    # --- entries ----------------------------------------------------------------------------------------
    def __iter__(self) -> Iterator[Entry]:
        pax: dict[str, bytes] = {}
        longname = longlink = b""
        while True:
            self._skip(self._left + self._pad)
            self._left = self._pad = 0
            block = self._take(BLOCK)
            if block is None:
                if self.offset:  # a decompressor may end a cut stream quietly at a block boundary
                    raise LayerError(f"{self._what}: truncated tar archive: it ends without its end-of-archive blocks{self._after()}")
                return  # an empty stream is an empty layer, as Go reads it
            if not any(block):
                block = self._take(BLOCK)
                if block is None or not any(block):
                    return
                raise LayerError(f"{self._what}: invalid tar header after a zero block{self._after()}")
            header = self._header(bytes(block))
            kind, size = header.type, header.size
            if kind in (_PAX, _PAX_GLOBAL, _GNU_LONGNAME, _GNU_LONGLINK):
                if size > MAX_META:
                    raise LayerError(f"{self._what}: tar extended header of {size} bytes is larger than the 1 MiB allowed{self._after()}")
                data = self._meta(size)
                if kind == _PAX:
                    pax.update(self._parse_pax(data))
                elif kind == _GNU_LONGNAME:
                    longname = data.split(b"\0", 1)[0]
                elif kind == _GNU_LONGLINK:
                    longlink = data.split(b"\0", 1)[0]
                continue  # a global header (g) is skipped, as Docker and containerd skip it
            entry = self._extended(header, pax, longname, longlink)
            pax, longname, longlink = {}, b"", b""
            self._entry = entry.name
            self._left = 0 if entry.type in _HEADER_ONLY else entry.size
            self._pad = -self._left % BLOCK
            yield entry

    def _meta(self, size: int) -> bytes:
        data = bytearray()
        while len(data) < size:
            chunk = self._take(min(_CHUNK, size - len(data)))
            if chunk is None:
                raise LayerError(f"{self._what}: truncated tar archive in an extended header{self._after()}")
            data += chunk
        self._skip(-size % BLOCK)
        return bytes(data)

    def _header(self, block: bytes) -> Entry:
        if not _checksum_ok(block):
            where = " at the start: not a tar archive" if self.offset == BLOCK else self._after()
            raise LayerError(f"{self._what}: invalid tar header (bad checksum){where}")
        name = _cstring(block[0:100])
        if block[257:263] == b"ustar\0":  # POSIX ustar: a prefix field extends the name
            prefix = _cstring(block[345:500])
            if prefix:
                name = prefix + b"/" + name
        kind = block[156:157]
        if kind in (b"\0", b"7"):
            kind = DIRTYPE if name.endswith(b"/") and kind == b"\0" else REGTYPE
        numbers = [_number(block[a:b]) for a, b in ((100, 108), (108, 116), (116, 124), (124, 136), (136, 148), (329, 337), (337, 345))]
        if any(n is None for n in numbers):
            raise LayerError(f"{self._what}: invalid number in the tar header of {show(name)}")
        mode, uid, gid, size, mtime, major, minor = (int(n or 0) for n in numbers)
        if size < 0 or uid < 0 or gid < 0:
            raise LayerError(f"{self._what}: negative size or owner in the tar header of {show(name)}")
        return Entry(name, kind, size, mode & 0o7777, uid, gid, mtime * 10**9, None, _cstring(block[157:257]), major, minor, ())

    def _parse_pax(self, data: bytes) -> dict[str, bytes]:
        """PAX records `LEN KEY=VALUE\\n`; LayerError for any malformed record."""
        records: dict[str, bytes] = {}
        pos = 0
        while pos < len(data):
            space = data.find(b" ", pos, pos + 20)
            length = data[pos:space]
            if space < 0 or not length.isdigit() or int(length) < space - pos + 3:
                raise LayerError(f"{self._what}: malformed PAX header record at byte {pos}")
            end = pos + int(length)
            key, eq, value = data[space + 1 : end].partition(b"=")
            if end > len(data) or data[end - 1 : end] != b"\n" or not eq or not key:  # no keyword: refused, as Go's archive/tar does
                raise LayerError(f"{self._what}: malformed PAX header record at byte {pos}")
            records[key.decode("utf-8", "surrogateescape")] = value[:-1]
            pos = end
        return records

    def _extended(self, header: Entry, pax: dict[str, bytes], longname: bytes, longlink: bytes) -> Entry:
        """The header with GNU long names and PAX records applied (PAX wins, as in Go)."""
        name = pax.get("path", longname or header.name)
        fields = {"size": header.size, "uid": header.uid, "gid": header.gid}
        for key in fields:
            if key in pax:
                value = pax[key]
                if not value.isdigit() or len(value) > 19:
                    raise LayerError(f"{self._what}: invalid PAX {key} {value[:40]!r} for {show(name)}")
                fields[key] = int(value)
        if any(key.startswith("GNU.sparse.") for key in pax):
            raise LayerError(f"{self._what}: {show(name)} is a sparse file, which layers do not use and imagekit does not read")
        if max(fields["uid"], fields["gid"]) >= _NO_ID or max(header.devmajor, header.devminor) >= _MAX_DEVICE:
            raise LayerError(f"{self._what}: owner or device number out of range in the tar header of {show(name)}")
        entry = Entry(
            name=name,
            type=header.type,
            size=fields["size"],
            mode=header.mode,
            uid=fields["uid"],
            gid=fields["gid"],
            mtime_ns=_pax_time(pax.get("mtime"), header.mtime_ns, self._what, name),
            atime_ns=_pax_time(pax.get("atime"), None, self._what, name),
            linkname=pax.get("linkpath", longlink or header.linkname),
            devmajor=header.devmajor,
            devminor=header.devminor,
            xattrs=tuple((key[len(_XATTR) :], value) for key, value in pax.items() if key.startswith(_XATTR)),
        )
        if not all(-_MAX_TIME < t < _MAX_TIME for t in (entry.mtime_ns, entry.atime_ns or 0)):
            raise LayerError(f"{self._what}: time out of range in the tar header of {show(name)}")
        return entry


def _cstring(field: bytes) -> bytes:
    return field.split(b"\0", 1)[0]


def _checksum_ok(block: bytes) -> bool:
    """The header checksum: the sum of its bytes with the checksum field as spaces (unsigned, or signed
    as some old tars computed it)."""
    stored = _number(block[148:156])
    rest = block[:148] + block[156:]
    if stored == sum(rest) + 8 * 32:
        return True
    return stored == sum(b - 256 if b > 127 else b for b in rest) + 8 * 32


def _number(field: bytes) -> int | None:
    """A header number: octal text (NULs/spaces around it) or GNU base-256 (high bit set, 0x40 the
    sign, two's complement); None if neither."""
    if field and field[0] & 0x80:
        value = int.from_bytes(bytes([field[0] & 0x7F]) + field[1:], "big")
        return value - (1 << (8 * len(field) - 1)) if field[0] & 0x40 else value
    text = field.split(b"\0", 1)[0].strip(b" ")
    if not text:
        return 0
    try:
        return int(text, 8)
    except ValueError:
        return None


def _pax_time(value: bytes | None, default: int | None, what: str, name: bytes) -> int | None:
    """A PAX time (`1700000000.123456789`, maybe negative) in nanoseconds."""
    if value is None:
        return default
    seconds, _, fraction = value.partition(b".")
    digits = seconds.removeprefix(b"-")
    if not digits.isdigit() or len(digits) > 19 or (fraction and not fraction.isdigit()):
        raise LayerError(f"{what}: invalid PAX time {value[:40]!r} for {show(name)}")
    ns = int(digits) * 10**9 + int((fraction + b"000000000")[:9])
    return -ns if seconds.startswith(b"-") else ns


def show(name: bytes, limit: int = 120) -> str:
    """A path for a one-line message: quoted, undecodable bytes escaped, long ones cut in the middle."""
    text = name.decode("utf-8", "backslashreplace")
    if len(text) > limit:
        text = f"{text[: limit // 2]}...{text[-limit // 2 :]}"
    return repr(text)

