"""tarformat: PAX records count their own length, headers pass tarfile's checksum, PAX only when needed."""

from __future__ import annotations

import io
import tarfile

import pytest

from imagekit.errors import LayerError
from imagekit.layers.tarformat import BLOCK, CHRTYPE, DIRTYPE, END, REGTYPE, Member, _pax_record, header, show


def test_a_pax_record_length_counts_itself_across_digit_boundaries() -> None:
    for size in range(0, 1100):
        record = _pax_record(b"path", b"x" * size)
        length, _, rest = record.partition(b" ")
        assert int(length) == len(record) and rest == b"path=" + b"x" * size + b"\n", size


def test_a_short_ascii_member_is_one_ustar_block_without_user_names() -> None:
    block = header(Member(b"etc/hosts", REGTYPE, 0o644, 0, 0, 12, 1_600_000_000))
    assert len(block) == BLOCK
    info = tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
    assert (info.name, info.size, info.mtime, info.uname, info.gname) == ("etc/hosts", 12, 1_600_000_000, "", "")


def test_directories_get_a_trailing_slash_and_long_names_a_pax_path() -> None:
    name = b"d" * 200
    data = header(Member(name, DIRTYPE, 0o755)) + END
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        (member,) = archive.getmembers()
    assert member.name == "d" * 200 and member.isdir() and member.pax_headers == {"path": "d" * 200 + "/"}


def test_a_non_utf8_name_is_marked_binary() -> None:
    data = header(Member(b"bad\xff", REGTYPE)) + END
    assert b"hdrcharset=BINARY" in data
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        assert archive.getnames() == ["bad\udcff"]


def test_mtime_is_clamped_only_downwards() -> None:
    assert tarfile.TarInfo.frombuf(header(Member(b"f", REGTYPE, mtime=500), mtime_limit=100), "utf-8", "strict").mtime == 100
    assert tarfile.TarInfo.frombuf(header(Member(b"f", REGTYPE, mtime=50), mtime_limit=100), "utf-8", "strict").mtime == 50


def test_a_device_number_too_big_for_ustar_is_one_line() -> None:
    with pytest.raises(LayerError, match=r"dev/huge: device number 4194304:1 does not fit a tar header"):
        header(Member(b"dev/huge", CHRTYPE, devmajor=1 << 22, devminor=1))


def test_show_escapes_what_a_terminal_should_not_get() -> None:
    assert show(b"a\nb\xffc\xc3\xa9") == "a\\nb\\xffcé"
