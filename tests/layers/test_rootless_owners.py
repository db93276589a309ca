"""Owners of a rootless container's files: umoci's `user.rootlesscontainers` record read back, and the
caller's ids given back to root when a rootless step's changes become a layer."""

from __future__ import annotations

import pytest

from imagekit.layers.apply import ROOTLESS_XATTR, parse_rootless_owner, rootless_owner
from imagekit.layers.changes import as_container_root
from imagekit.layers.tarformat import REGTYPE, Member


@pytest.mark.parametrize(("uid", "gid"), [(0, 0), (1, 2), (1000, 100), (65534, 65534), (2**31, 7)])
def test_rootless_owner_round_trip(uid: int, gid: int) -> None:
    assert parse_rootless_owner(rootless_owner(uid, gid)) == (uid or None, gid or None)


@pytest.mark.parametrize("value", [b"", b"\x08", b"\x0a\x01x", b"\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"])
def test_malformed_records_leave_the_owner_alone(value: bytes) -> None:
    assert parse_rootless_owner(value) == (None, None)


def test_the_caller_becomes_root_and_a_recorded_owner_wins() -> None:
    members = [
        Member(b"mine", REGTYPE, uid=1000, gid=1000),
        Member(b"recorded", REGTYPE, uid=1000, gid=1000, xattrs=((ROOTLESS_XATTR, rootless_owner(33, 44)), ("user.x", b"1"))),
        Member(b"other", REGTYPE, uid=5, gid=6),
    ]
    out = list(as_container_root(members, 1000, 1000))
    assert [(m.name, m.uid, m.gid, m.xattrs) for m in out] == [
        (b"mine", 0, 0, ()),
        (b"recorded", 33, 44, (("user.x", b"1"),)),
        (b"other", 5, 6, ()),
    ]
