"""tree_manifest(path): a directory tree as comparable data (types, modes, owners, links, xattrs, times).

Two trees unpacked by different tools compare equal when their manifests do; a failing assert
shows only the paths that differ (see `diff`).
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path
from typing import Any

#: xattrs that describe the host rather than the tree (see imagekit.layers.changes).
HOST_XATTRS = ("security.selinux", "trusted.overlay.", "user.overlay.")
_TYPES = {stat.S_IFREG: "file", stat.S_IFDIR: "dir", stat.S_IFLNK: "symlink", stat.S_IFCHR: "char", stat.S_IFBLK: "block", stat.S_IFIFO: "fifo", stat.S_IFSOCK: "socket"}


def tree_manifest(
    path: Path | str, *, mtimes: bool = True, dir_mtimes: bool = True, root: bool = False, whole_seconds: bool = False
) -> dict[str, dict[str, Any]]:
    """{relative path: {type, mode, uid, gid, size, sha256 | target | rdev, link, xattrs, mtime}} for
    everything under `path` (and `.` itself with `root`). `link` names the first path (in sorted
    order) of a group of hardlinks, so hardlinked files compare by structure, not inode numbers.
    `whole_seconds` compares a source tree with what a tar (whole-second mtimes) gave back."""
    base = Path(path)
    found: dict[str, dict[str, Any]] = {}
    inodes: dict[tuple[int, int], str] = {}
    names = sorted(_walk(base))
    for rel in names if root else [n for n in names if n != "."]:
        full = base / rel
        st = full.lstat()
        kind = _TYPES[stat.S_IFMT(st.st_mode)]
        item: dict[str, Any] = {"type": kind, "mode": oct(stat.S_IMODE(st.st_mode)), "uid": st.st_uid, "gid": st.st_gid}
        if kind == "file":
            item["size"] = st.st_size
            item["sha256"] = hashlib.sha256(full.read_bytes()).hexdigest()
            if st.st_nlink > 1:
                item["link"] = inodes.setdefault((st.st_dev, st.st_ino), rel)
        elif kind == "symlink":
            item["target"] = os.readlink(full)
        elif kind in ("char", "block"):
            item["rdev"] = (os.major(st.st_rdev), os.minor(st.st_rdev))
        item["xattrs"] = {
            k: os.getxattr(full, k, follow_symlinks=False).hex()
            for k in sorted(os.listxattr(full, follow_symlinks=False))
            if not k.startswith(HOST_XATTRS)
        }
        if mtimes and (dir_mtimes or kind != "dir"):
            item["mtime"] = st.st_mtime_ns // 1_000_000_000 if whole_seconds else st.st_mtime_ns
        found[rel] = item
    return found


def diff(left: dict[str, dict[str, Any]], right: dict[str, dict[str, Any]]) -> list[str]:
    """Human-readable differences between two manifests (empty when equal)."""
    lines = []
    for rel in sorted(left.keys() | right.keys()):
        a, b = left.get(rel), right.get(rel)
        if a != b:
            if a is None or b is None:
                lines.append(f"{rel}: only in {'right' if a is None else 'left'}")
            else:
                lines.append(f"{rel}: " + ", ".join(f"{k} {a.get(k)!r} != {b.get(k)!r}" for k in sorted(a.keys() | b.keys()) if a.get(k) != b.get(k)))
    return lines


def _walk(base: Path) -> list[str]:
    out = ["."]
    for dirpath, dirnames, filenames in os.walk(base):
        rel = os.path.relpath(dirpath, base)
        for name in dirnames + filenames:
            out.append(name if rel == "." else f"{rel}/{name}")
    return out
