"""Fixtures for writing layers: a tree with every kind of metadata a layer must keep, and readers of layers."""

from __future__ import annotations

import io
import os
import struct
import tarfile
from pathlib import Path

import pytest

from imagekit.layers import compression
from imagekit.layers.write import WrittenLayer

#: A valid VFS_CAP_REVISION_2 `security.capability` value: effective, permitted = CAP_NET_BIND_SERVICE.
CAPABILITY = struct.pack("<IIIII", 0x02000001, 1 << 10, 0, 0, 0)
LONG_NAME = "n" * 150  # over ustar's 100 bytes
DEEP_DIR = "/".join(["d" * 60] * 5)  # the path passes 255 bytes (ustar's name + prefix)
MTIME = 1_600_000_000


def make_rich_tree(root: Path) -> Path:
    """Owners, modes with setuid/setgid/sticky, xattrs incl. security.capability, hardlinks, symlinks
    (relative, absolute, dangling), long names and paths, fifo, devices, a sparse file, an empty dir,
    UTF-8 and non-UTF-8 names, a big uid: everything with fixed mtimes."""
    root.mkdir(parents=True)
    (root / "bin").mkdir()
    tool = root / "bin" / "tool"
    tool.write_bytes(b"#!/bin/sh\necho tool\n" * 50)
    tool.chmod(0o4755)
    os.setxattr(tool, "security.capability", CAPABILITY)
    os.setxattr(tool, "user.comment", b"a tool")
    os.setxattr(tool, "trusted.note", b"\x00binary\xff")
    (root / "bin" / "tool.link").hardlink_to(tool)
    (root / "bin" / "sh").symlink_to("tool")
    (root / "etc").mkdir(mode=0o750)
    (root / "etc" / "secret").write_text("s3cret\n")
    os.chown(root / "etc" / "secret", 1234, 5678)
    (root / "etc" / "secret").chmod(0o640)
    (root / "etc" / "passwd-link").symlink_to("/etc/passwd")
    (root / "etc" / "dangling").symlink_to("../nowhere/at/all")
    (root / "tmp").mkdir()
    (root / "tmp").chmod(0o1777)
    (root / "srv").mkdir()
    (root / "srv").chmod(0o2775)
    os.chown(root / "srv", 0, 50)
    (root / "empty").mkdir()
    (root / "big-uid").write_text("owned by a large uid\n")
    os.chown(root / "big-uid", 3_000_000, 3_000_001)
    (root / LONG_NAME).write_text("long name\n")
    (root / "link-to-long").symlink_to(LONG_NAME)
    (root / "x-hard-to-long").hardlink_to(root / LONG_NAME)
    deep = root / DEEP_DIR
    deep.mkdir(parents=True)
    (deep / "file").write_text("deep\n")
    (root / "dev").mkdir()
    os.mkfifo(root / "dev" / "fifo", 0o600)
    os.mknod(root / "dev" / "null", 0o666 | 0o020000, os.makedev(1, 3))
    os.mknod(root / "dev" / "loop0", 0o660 | 0o060000, os.makedev(7, 0))
    with open(root / "sparse", "wb") as f:
        f.truncate(8 << 20)
        f.seek(5 << 20)
        f.write(b"in the middle")
    (root / "café").write_text("utf-8\n")
    (root / os.fsdecode(b"latin-\xe9")).write_text("not utf-8\n")
    set_mtimes(root, MTIME)
    return root


def set_mtimes(root: Path, mtime: int) -> None:
    """Gives every path below `root` (not following symlinks) the same mtime, deepest first."""
    for directory, dirs, files in os.walk(root, topdown=False):
        for name in dirs + files:
            os.utime(os.path.join(directory, name), ns=(mtime * 10**9, mtime * 10**9), follow_symlinks=False)


def tar_bytes(blob: bytes, media_type: str) -> bytes:
    """The uncompressed tar inside a layer blob."""
    with compression.decompressed(io.BytesIO(blob), compression.compression_of(media_type)) as reader:
        return reader.read()


def members_of(blob: bytes, layer: WrittenLayer) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(tar_bytes(blob, layer.media_type)), mode="r:") as archive:
        return archive.getmembers()


@pytest.fixture
def rich_tree(tmp_path: Path) -> Path:
    return make_rich_tree(tmp_path / "rich")
