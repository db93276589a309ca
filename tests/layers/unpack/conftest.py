"""Unpack fixtures: both path resolvers, and a sandbox of canaries around the unpack target."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from imagekit.layers import rootfs
from tests.layers.unpack.tars import snapshot

HOST_FILES = ("/etc/passwd", "/etc/hostname")


@pytest.fixture(params=["openat2", "walk"])
def resolver(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Runs a test with openat2(RESOLVE_IN_ROOT), and again with the O_NOFOLLOW walk that stands in for it."""
    if request.param == "walk":
        monkeypatch.setattr(rootfs, "openat2_available", lambda fd: False)
        return "walk"
    root = os.open("/", os.O_PATH)  # closed again: one left open per test took 99 descriptors by the end of the
    try:                            # unpack tests, and the test of remove() under a limit of 256 failed after them
        available = rootfs.openat2_available(root)
    finally:
        os.close(root)
    if not available:
        pytest.fail("this kernel has no openat2 (Linux 5.6+); the walk case still covers the fallback")
    return "openat2"


class Sandbox:
    """`outside` holds canaries and the unpack `target`; assert_untouched() checks all but the target."""

    def __init__(self, base: Path) -> None:
        self.outside = base
        self.target = base / "target"
        (base / "outside.txt").write_bytes(b"canary\n")
        (base / "etc").mkdir()
        (base / "etc" / "passwd").write_bytes(b"root:x:0:0::/root:/bin/sh\n")
        (base / "keep").mkdir()
        (base / "keep" / "file").write_bytes(b"keep me\n")
        self.before = snapshot(base, exclude=self.target)
        self.host = {name: _digest(name) for name in HOST_FILES}

    def assert_untouched(self) -> None:
        after = snapshot(self.outside, exclude=self.target)
        changed = sorted(k for k in self.before.keys() | after.keys() if self.before.get(k) != after.get(k))
        assert not changed, f"changed outside the target: {changed}"
        assert {name: _digest(name) for name in HOST_FILES} == self.host


def _digest(name: str) -> str:
    try:
        return hashlib.sha256(Path(name).read_bytes()).hexdigest()
    except FileNotFoundError:
        return "absent"


@pytest.fixture
def sandbox(tmp_path: Path) -> Sandbox:
    base = tmp_path / "sandbox"
    base.mkdir()
    return Sandbox(base)
