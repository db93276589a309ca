"""Mounts tests make on the host (they run as root), undone however the test ends; and the host's mount table,
to prove a test left no mount behind."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[Path]:
    """`path` bind-mounted read-only over itself for the duration."""
    subprocess.run(["mount", "--bind", str(path), str(path)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(path)], check=True)
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` (mount(8) syntax) at the new directory `path` for the duration."""
    path.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


SYSTEM_MOUNTS = ("/proc", "/dev", "/sys")


def mount_table() -> list[str]:
    """The host's mount table as (mount point, type, source, options): ids change, mounts must not."""
    lines = []
    with open("/proc/self/mountinfo") as handle:
        for line in handle:
            fields = line.split()
            sep = fields.index("-")
            lines.append(" ".join([fields[4], *fields[sep + 1 : sep + 4]]))
    return lines


def mounts_left(before: list[str], scope: Path) -> list[str]:
    """Mounts that appeared since `before` and could be a leak of the test owning `scope` (its tmp_path): one
    naming that directory, or one on the host's /, /proc, /dev or /sys. Tests running beside it (xdist workers
    pin network namespaces, buildah and the runtime mount stores) mount in parallel under their own
    directories, so those do not count."""
    new = [line for line in mount_table() if line not in before]
    return [line for line in new if str(scope) in line or line.split()[0] == "/" or line.split()[0].startswith(SYSTEM_MOUNTS)]
