"""Deterministic tar headers for layers: ustar blocks, with a PAX extended header where ustar cannot say it.

A layer's bytes must depend on the tree alone, never on who wrote it, where, or when (image-spec
layer.md; reproducible-builds.org's SOURCE_DATE_EPOCH). So a header carries numeric owners only (no
uname/gname: host user names leak and differ), mtime in whole seconds clamped to SOURCE_DATE_EPOCH,
no atime/ctime, and PAX records (sorted, the way Go's archive/tar and GNU tar read them) only for what
ustar cannot hold: names and link targets over 100 bytes or not ASCII, owners and sizes too big for
the octal fields, pre-1970 mtimes, and xattrs (`SCHILY.xattr.<name>`, `security.capability` included).
Headers are built here rather than by `tarfile`, which fills in host user names and pads archives to
10 KiB records; building them is a struct.pack per member, so a layer streams at disk speed.

Imports: stdlib, imagekit.errors.
"""

from __future__ import annotations

import os
import struct

from imagekit.errors import LayerError
from imagekit.values import value

BLOCK = 512
#: What ends an archive: two zero blocks (no padding to 10 KiB records, as Go's archive/tar writes it).
END = bytes(2 * BLOCK)
REGTYPE = b"0"
LNKTYPE = b"1"
SYMTYPE = b"2"
CHRTYPE = b"3"
BLKTYPE = b"4"
DIRTYPE = b"5"
FIFOTYPE = b"6"
XHDTYPE = b"x"
#: The name of every PAX extended header block, as Python's tarfile writes it; readers never extract it.
PAX_NAME = b"././@PaxHeader"
XATTR_PREFIX = b"SCHILY.xattr."
#: OCI whiteouts (image-spec layer.md): `.wh.<name>` deletes <name>; `.wh..wh..opq` empties its directory.
WHITEOUT_PREFIX = b".wh."
OPAQUE = b".wh..wh..opq"
_USTAR = struct.Struct("100s8s8s8s12s12s8sc100s6s2s32s32s8s8s155s12s")
_MAX_OCTAL_7 = 8**7  # what fits in an 8-byte field (7 digits and a NUL)
_MAX_OCTAL_11 = 8**11  # what fits in a 12-byte field


@value
class Member:
    """One tar entry of a layer: a path and its metadata; for a regular file, where its content is read from.

    `name` is relative and "/"-separated, without a leading "./" or a trailing "/" (added for
    directories here). `mode` holds the permission bits with setuid, setgid and sticky (0o7777).
    `linkname` is a symlink's target, verbatim, or for a hardlink the name of the member written first.
    `xattrs` are (name, value) pairs sorted by name. `source` is the host path of a regular file.
    """

    name: bytes
    type: bytes
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    size: int = 0
    mtime: int = 0
    linkname: bytes = b""
    devmajor: int = 0
    devminor: int = 0
    xattrs: tuple[tuple[str, bytes], ...] = ()
    source: bytes | None = None


def source_date_epoch() -> int | None:
    """SOURCE_DATE_EPOCH from the environment as whole seconds, None when unset or empty; LayerError if malformed."""
    value = os.environ.get("SOURCE_DATE_EPOCH", "")
    if not value:
        return None
    if not value.isascii() or not value.isdigit():
        raise LayerError(f"SOURCE_DATE_EPOCH={value!r} is not a number of seconds since 1970")
    return int(value)


def header(member: Member, mtime_limit: int | None = None) -> bytes:
    """The header block(s) of `member`: a PAX extended header first when needed, then one ustar block.

    `mtime_limit` (SOURCE_DATE_EPOCH) clamps later mtimes down to it; earlier ones stay as they are.
    """
    mtime = member.mtime if mtime_limit is None else min(member.mtime, mtime_limit)
    name = member.name + b"/" if member.type == DIRTYPE else member.name
    pax: dict[bytes, bytes] = {}
    if len(name) > 100 or not name.isascii():
        pax[b"path"] = name
    if len(member.linkname) > 100 or not member.linkname.isascii():
        pax[b"linkpath"] = member.linkname
    for key, value, limit in (
        (b"uid", member.uid, _MAX_OCTAL_7),
        (b"gid", member.gid, _MAX_OCTAL_7),
        (b"size", member.size, _MAX_OCTAL_11),
        (b"mtime", mtime, _MAX_OCTAL_11),
    ):
        if not 0 <= value < limit:
            pax[key] = b"%d" % value
    if not (0 <= member.devmajor < _MAX_OCTAL_7 and 0 <= member.devminor < _MAX_OCTAL_7):
        raise LayerError(f"{show(member.name)}: device number {member.devmajor}:{member.devminor} does not fit a tar header")
    for key, value in member.xattrs:
        pax[XATTR_PREFIX + key.encode("utf-8", "surrogateescape")] = value
    out = _pax_header(pax) if pax else b""
    return out + _ustar(
        name[:100],
        member.mode,
        member.uid if b"uid" not in pax else 0,
        member.gid if b"gid" not in pax else 0,
        member.size if b"size" not in pax else 0,
        mtime if b"mtime" not in pax else 0,
        member.type,
        member.linkname[:100],
        member.devmajor,
        member.devminor,
    )


def padding(size: int) -> bytes:
    """The zero bytes that fill content of `size` bytes up to a whole block."""
    return bytes(-size % BLOCK)


def _pax_header(records: dict[bytes, bytes]) -> bytes:
    """An 'x' header and its records, sorted by key; `hdrcharset=BINARY` first when a path is not UTF-8."""
    items = sorted(records.items())
    if any(not _is_utf8(records[key]) for key in (b"path", b"linkpath") if key in records):
        items.insert(0, (b"hdrcharset", b"BINARY"))
    body = b"".join(_pax_record(key, value) for key, value in items)
    return _ustar(PAX_NAME, 0o644, 0, 0, len(body), 0, XHDTYPE, b"", 0, 0) + body + padding(len(body))


def _pax_record(key: bytes, value: bytes) -> bytes:
    """`"<length> <key>=<value>\\n"`, where the length counts its own digits too."""
    rest = len(key) + len(value) + 3  # the space, "=" and newline
    length = rest + len(str(rest))
    if len(str(length)) > len(str(rest)):
        length += 1
    return b"%d %s=%s\n" % (length, key, value)


def _ustar(
    name: bytes,
    mode: int,
    uid: int,
    gid: int,
    size: int,
    mtime: int,
    typeflag: bytes,
    linkname: bytes,
    devmajor: int,
    devminor: int,
) -> bytes:
    block = _USTAR.pack(
        name,
        b"%07o\0" % mode,
        b"%07o\0" % uid,
        b"%07o\0" % gid,
        b"%011o\0" % size,
        b"%011o\0" % mtime,
        b" " * 8,
        typeflag,
        linkname,
        b"ustar\0",
        b"00",
        b"",
        b"",
        b"%07o\0" % devmajor,
        b"%07o\0" % devminor,
        b"",
        b"",
    )
    return block[:148] + b"%06o\0 " % sum(block) + block[156:]


def _is_utf8(value: bytes) -> bool:
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def show(name: bytes) -> str:
    """A path for a one-line message: undecodable bytes and control characters escaped."""
    return "".join(c if c.isprintable() else _escape(c) for c in name.decode("utf-8", "surrogateescape"))


def _escape(char: str) -> str:
    code = ord(char)
    return f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else repr(char)[1:-1]
