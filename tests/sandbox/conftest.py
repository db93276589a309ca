"""Sandbox fixtures: a busybox rootfs as an overlay lower, and helpers that run a shell line in a sandbox."""

from __future__ import annotations

import io
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from imagekit.sandbox import Result, Rootfs, Spec, run
from imagekit.values import replace
from tests.mounts import mount_table, mounts_left
from tests.store.conftest import make_busybox_rootfs

APPLETS = ("mount", "id", "env", "hostname", "ps", "ip", "sleep", "touch", "rm", "mkdir", "head", "wc", "pwd", "grep", "stat", "mknod", "kill")
ENV = ("PATH=/bin", "HOME=/root")


@pytest.fixture(scope="session")
def busybox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A read-only lower: /bin/busybox with applet symlinks, /etc/hostname."""
    root = make_busybox_rootfs(tmp_path_factory.mktemp("sandbox") / "busybox")
    for applet in APPLETS:
        (root / "bin" / applet).symlink_to("busybox")
    return root


@dataclass(frozen=True)
class Box:
    """An overlay rootfs over the busybox lower (plus `extra` lowers on top) in a test's tmp_path."""

    base: Path
    rootfs: Rootfs

    @property
    def upper(self) -> Path:
        return Path(self.rootfs.upper)

    def spec(self, script: str, **fields: object) -> Spec:
        return replace(Spec(rootfs=self.rootfs, argv=("sh", "-c", script), env=ENV), **fields)  # type: ignore[arg-type]

    def sh(self, script: str, **fields: object) -> tuple[int, str, Result]:
        """(status, stdout+stderr, result) of `sh -c script` in a fresh sandbox."""
        out = io.BytesIO()
        result = run(self.spec(script, **fields), stdout=out, stderr=out)
        return result.status, out.getvalue().decode(), result


def make_box(base: Path, *lowers: Path) -> Box:
    (base / "upper").mkdir(parents=True)
    (base / "work").mkdir()
    return Box(base, Rootfs(lowers=tuple(str(p) for p in lowers), upper=str(base / "upper"), work=str(base / "work")))


@pytest.fixture
def box(tmp_path: Path, busybox: Path) -> Box:
    return make_box(tmp_path / "box", busybox)


@pytest.fixture(autouse=True)
def no_mount_left(tmp_path: Path) -> object:
    """Every sandbox test leaves the host's mount table as it found it. Other workers' tests (buildah,
    skopeo) mount in parallel, so only what a leak from here would look like counts: a mount naming
    this test's directory, or one on the host's /, /proc, /dev or /sys."""
    before = mount_table()
    yield
    assert mounts_left(before, tmp_path) == []


def until(condition: Callable[[], object], what: str) -> None:
    """Waits for `condition` (polled every 10 ms), failing with `what` after 30 s: a broken sandbox fails the test
    instead of hanging it."""
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def children(pid: int) -> list[int]:
    """The children of `pid`, of any of its threads (some of which may end meanwhile); none once it is gone."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return []
    found = []
    for task in tasks:
        try:
            found += [int(word) for word in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
        except FileNotFoundError:
            continue
    return found
