"""Three generations of a root filesystem with everything a layer can say, and the image of their changes.

T1 has files, a hardlink pair with an xattr, symlinks, a fifo, a device, a setuid file, a 0555
directory; T2 deletes a file, empties and refills a directory (opaque), turns a directory into a file
and a file into a directory, retargets a symlink, changes an xattr on the hardlinked inode and adds a
new hardlink pair; T3 deletes a whole directory, re-creates a deleted file and removes the refilled
directory. The image's layers are tree(T1), snapshot_diff(T1, T2) and snapshot_diff(T2, T3).
"""

from __future__ import annotations

import os
from pathlib import Path

from imagekit.layers.changes import snapshot_diff, tree
from tests.snapshots.conftest import MTIME, copy_tree, layer


def _file(path: Path, data: bytes = b"", mode: int = 0o644) -> None:
    path.write_bytes(data)
    os.chmod(path, mode)


def generation_one(root: Path) -> Path:
    root.mkdir(mode=0o755, parents=True)
    for name in ("bin", "etc", "data", "d", "d/sub", "swap", "ro"):
        (root / name).mkdir(mode=0o755)
    _file(root / "bin/tool", b"#!/bin/sh\necho tool\n" * 50, 0o755)
    (root / "bin/sh").symlink_to("tool")
    for name in ("conf", "x", "passwd"):
        _file(root / "etc" / name, f"{name}=1\n".encode())
    _file(root / "data/a", b"shared inode\n")
    os.setxattr(root / "data/a", "user.a", b"1")
    os.link(root / "data/a", root / "data/a2")
    os.mkfifo(root / "data/fifo", 0o600)
    os.mknod(root / "data/null", 0o666 | 0o020000, os.makedev(1, 3))
    for name in ("old1", "old2", "sub/deep"):
        _file(root / "d" / name, name.encode())
    _file(root / "swap/child", b"c")
    _file(root / "fileToDir", b"f")
    _file(root / "suid", b"s", 0o4755)
    _file(root / "ro/f", b"ro")
    os.chmod(root / "ro", 0o555)
    os.chown(root / "etc/passwd", 0, 42)
    _clamp(root)
    return root


def generation_two(previous: Path, root: Path) -> Path:
    copy_tree(previous, root)
    (root / "etc/x").unlink()
    for name in ("old1", "old2", "sub/deep"):
        (root / "d" / name).unlink()
    (root / "d/sub").rmdir()
    _file(root / "d/n", b"new in a refilled directory")
    _file(root / "data/new", b"new pair")
    os.link(root / "data/new", root / "data/new2")
    os.chmod(root / "etc/conf", 0o600)
    (root / "swap/child").unlink()
    (root / "swap").rmdir()
    _file(root / "swap", b"now a file")
    (root / "fileToDir").unlink()
    (root / "fileToDir").mkdir(mode=0o750)
    _file(root / "fileToDir/in", b"inside")
    (root / "bin/sh").unlink()
    (root / "bin/sh").symlink_to("/bin/tool")
    os.setxattr(root / "data/a", "user.a", b"2")
    return root


def generation_three(previous: Path, root: Path) -> Path:
    copy_tree(previous, root)
    for path in sorted((root / "data").iterdir()):
        path.unlink()
    (root / "data").rmdir()
    _file(root / "etc/x", b"x is back\n")
    (root / "d/n").unlink()
    (root / "d").rmdir()
    os.chmod(root / "ro", 0o755)
    _file(root / "ro/g", b"g")
    os.chmod(root / "ro", 0o555)
    return root


def _clamp(root: Path) -> None:
    """Generation one's times are fixed, so its layer is the same bytes on every run."""
    for directory, names, files in os.walk(root, topdown=False):
        for name in names + files:
            os.utime(os.path.join(directory, name), ns=(MTIME * 10**9, MTIME * 10**9), follow_symlinks=False)


def three_layers(base: Path, codec: str = "gzip") -> tuple[list[tuple[bytes, str]], Path]:
    """The three layer blobs (with media types) of the generations built under `base`, and T3."""
    one = generation_one(base / "t1")
    two = generation_two(one, base / "t2")
    three = generation_three(two, base / "t3")
    return [layer(tree(one), codec), layer(snapshot_diff(one, two), codec), layer(snapshot_diff(two, three), codec)], three
