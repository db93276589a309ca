"""A tree's observable state as one comparable value, to check that two trees (a source and what some tool
unpacked from a layer) are the same: every path's type, mode (setuid/setgid/sticky included), owner,
mtime, content digest or link target, device number and xattrs, and which paths share an inode.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

#: xattrs that describe the host rather than the tree (see imagekit.layers.changes).
HOST_XATTRS = ("security.selinux", "trusted.overlay.", "user.overlay.")


def tree_manifest(path: Path | str, *, mtimes: bool = True) -> dict[str, tuple[object, ...]]:
    """{relative path: (type, mode, uid, gid, mtime seconds, content sha256 | link target | rdev, xattrs, hardlink)}.

    The root itself is left out. `hardlink` names the first path (in sorted order) sharing the inode,
    or is empty. Directory mtimes are compared too: tools must restore them after filling a directory.
    """
    root = os.fsencode(path)
    entries: dict[str, tuple[object, ...]] = {}
    first_of_inode: dict[tuple[int, int], str] = {}
    for directory, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(dirs + files):
            full = os.path.join(directory, name)
            rel = os.path.relpath(full, root).decode("utf-8", "surrogateescape")
            st = os.lstat(full)
            link = ""
            if not stat.S_ISDIR(st.st_mode) and st.st_nlink > 1:
                link = first_of_inode.setdefault((st.st_dev, st.st_ino), rel)
                link = "" if link == rel else link
            entries[rel] = (
                stat.S_IFMT(st.st_mode),
                stat.S_IMODE(st.st_mode),
                st.st_uid,
                st.st_gid,
                st.st_mtime_ns // 1_000_000_000 if mtimes else None,
                _content(full, st),
                _xattrs(full),
                link,
            )
    return entries


def _content(path: bytes, st: os.stat_result) -> object:
    if stat.S_ISREG(st.st_mode):
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
        return digest.hexdigest()
    if stat.S_ISLNK(st.st_mode):
        return os.readlink(path)
    if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        return (os.major(st.st_rdev), os.minor(st.st_rdev))
    return None


def _xattrs(path: bytes) -> tuple[tuple[str, bytes], ...]:
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return ()
    return tuple(
        sorted((n, os.getxattr(path, n, follow_symlinks=False)) for n in names if not n.startswith(HOST_XATTRS))
    )
