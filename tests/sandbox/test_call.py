"""call(rootfs, fn): Python over the mounted rootfs in a child, results and errors back, no mount left."""

from __future__ import annotations

import os
import stat
import threading
import time
from pathlib import Path

import pytest

from imagekit.errors import DigestMismatch, SandboxError
from imagekit.sandbox import call
from imagekit.values import replace
from tests.sandbox.conftest import Box


def _listing(root: str, folder: str) -> list[str]:
    return sorted(os.listdir(os.path.join(root, folder)))


def _copy_in(root: str, name: str, data: bytes) -> int:
    Path(root, name).write_bytes(data)
    os.unlink(os.path.join(root, "bin", "true"))
    return os.getpid()


def test_call_returns_what_fn_returns_from_the_merged_view(box: Box) -> None:
    assert "busybox" in call(box.rootfs, _listing, "bin")


def test_writes_go_to_the_upper_dir_as_overlay_changes(box: Box) -> None:
    pid = call(box.rootfs, _copy_in, "copied", b"data")
    assert pid != os.getpid()
    assert (box.upper / "copied").read_bytes() == b"data"
    whiteout = os.lstat(box.upper / "bin" / "true")
    assert stat.S_ISCHR(whiteout.st_mode) and whiteout.st_rdev == 0
    assert Path(box.rootfs.lowers[0], "bin", "true").is_symlink()


def _mismatch(root: str) -> None:
    raise DigestMismatch("blob", "sha256:aa", "sha256:bb")


def _bug(root: str) -> None:
    raise ZeroDivisionError("division\nby zero")


def test_imagekit_errors_come_back_with_class_and_fields_others_as_one_line(box: Box) -> None:
    with pytest.raises(DigestMismatch) as info:
        call(box.rootfs, _mismatch)
    assert (str(info.value), info.value.expected, info.value.actual) == ("blob: expected sha256:aa, got sha256:bb", "sha256:aa", "sha256:bb")
    with pytest.raises(SandboxError, match=r"^sandbox: _bug: ZeroDivisionError: division by zero$"):
        call(box.rootfs, _bug)
    with pytest.raises(SandboxError, match="cannot send the result back"):
        call(box.rootfs, lambda root: threading.Lock())


def test_readonly_rootfs_and_mount_failures(box: Box, tmp_path: Path) -> None:
    with pytest.raises(SandboxError, match="Read-only file system"):
        call(replace(box.rootfs, readonly=True), _copy_in, "x", b"x")
    assert not (box.upper / "x").exists()
    with pytest.raises(SandboxError, match="^sandbox: .*missing.*No such file or directory$"):
        call(replace(box.rootfs, lowers=(str(tmp_path / "missing"),)), _listing, "")


def test_the_mount_point_is_gone_afterwards(box: Box, tmp_path: Path) -> None:
    where = call(box.rootfs, lambda root: root)
    assert where.startswith("/") and not os.path.exists(where)


def _zombie_children() -> list[str]:
    """Children of this process (any thread's) that exited and were never waited for."""
    pids = {pid for task in os.listdir("/proc/self/task") for pid in Path(f"/proc/self/task/{task}/children").read_text().split()}
    states = []
    for pid in pids:
        try:
            states.append((pid, Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]))
        except FileNotFoundError:  # reaped meanwhile by whoever owns it
            pass
    return [pid for pid, state in states if state == "Z"]


def test_no_child_is_left_unreaped(box: Box) -> None:
    """call() waits for its child to be gone, not only for its answer: the answer's pipe closes while the child is
    still exiting, and a child nobody waits for stays a zombie as long as the caller lives (a builder runs many)."""
    before = set(_zombie_children())
    for _ in range(3):
        call(box.rootfs, _listing, "bin")
    time.sleep(0.2)  # a child not waited for has long finished exiting by now
    assert set(_zombie_children()) - before == set()
