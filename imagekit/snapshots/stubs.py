"""Mount stubs out of a snapshot: the empty files and directories a sandbox made to mount things on,
and the traces they left on the directories above them, so a step that changed nothing adds nothing.

Making `/etc/resolv.conf` in a container changes `/etc` (its mtime, and under overlayfs a copy-up), so
removing the stub alone would still put `/etc` into the layer, with a new mtime, as BuildKit's mount
stub cleaner also found. So, after a stub goes, each directory above it is put back as it was:
- one that did not exist before the step (made on the way to the stub) goes if it is now empty;
- copy fallback: one whose entries are again those of the `before` tree gets its old times back;
- overlayfs: an empty, non-opaque upper directory over a lower directory with the same mode and owner
  is a copy-up that carries nothing, and goes (the lower one shows through again).
A directory the step changed otherwise stays, as the changes must. Everything is resolved inside its
tree (the step's process may have planted symlinks) and nothing is followed.

Imports: stdlib, imagekit.errors, imagekit.layers.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Sequence
from pathlib import Path

from imagekit.errors import LayerError
from imagekit.layers.apply import clean
from imagekit.layers.overlayfs import is_whiteout, overlay_xattr_prefix
from imagekit.layers.rootfs import Root, proc_path, split

_GONE = (errno.ENOENT, errno.ENOTDIR, errno.ELOOP)


def remove_stubs(upper: Path, paths: Sequence[str], *, lowers: Sequence[Path] = (), before: Path | None = None) -> None:
    """Removes each of `paths` (container paths) from `upper` if it is an empty file or directory there, then
    tidies the directories above it (see the module docstring) against `before` (copy fallback) or the
    `lowers` (overlayfs, topmost first). A path that is missing or not empty is left alone."""
    with Root(upper) as root:
        for text in paths:
            try:
                path = clean(os.fsencode(text), "mount stub")
            except LayerError:
                continue
            if path and _remove_empty(root, path):
                _tidy(root, split(path)[0], lowers, before)


def _remove_empty(root: Root, path: bytes) -> bool:
    """Removes `path` if it is an empty regular file or an empty directory; whether it did."""
    try:
        parent, name = root.parent(path)
        st = os.lstat(name, dir_fd=parent)
        if stat.S_ISREG(st.st_mode) and st.st_size == 0:
            os.unlink(name, dir_fd=parent)
        elif stat.S_ISDIR(st.st_mode):
            os.rmdir(name, dir_fd=parent)
        else:
            return False
    except OSError as err:
        if err.errno in (*_GONE, errno.ENOTEMPTY):
            return False
        raise
    root.forget(keep=parent)
    return True


def _tidy(root: Root, path: bytes, lowers: Sequence[Path], before: Path | None) -> None:
    while path:
        original = _original(path, lowers, before)
        if original is None:  # made on the way to the stub
            if not _remove_empty(root, path):
                return
        elif before is not None:
            _restore_times(root, path, before, original)
            return
        elif not _drop_copy_up(root, path, original):
            return
        path = split(path)[0]


def _original(path: bytes, lowers: Sequence[Path], before: Path | None) -> os.stat_result | None:
    """The directory `path` as the step found it (in `before`, or the topmost lower that has it); None if none."""
    for tree in [before] if before is not None else lowers:
        with Root(tree) as root:
            try:
                parent, name = root.parent(path)
                st = os.lstat(name, dir_fd=parent)
            except OSError as err:
                if err.errno in _GONE:
                    continue
                raise
        if is_whiteout(st) or not stat.S_ISDIR(st.st_mode):
            return None
        return st
    return None


def _restore_times(root: Root, path: bytes, before: Path, original: os.stat_result) -> None:
    directory = root.directory(path)
    with Root(before) as old:
        same = sorted(os.listdir(proc_path(directory))) == sorted(os.listdir(proc_path(old.directory(path))))
    if same:
        os.utime(proc_path(directory), ns=(original.st_atime_ns, original.st_mtime_ns))


def _drop_copy_up(root: Root, path: bytes, original: os.stat_result) -> bool:
    """Removes the upper directory `path` if it is an empty, non-opaque copy-up of `original`; whether it did."""
    directory = root.directory(path)
    st = os.fstat(directory)
    if (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) != (stat.S_IMODE(original.st_mode), original.st_uid, original.st_gid):
        return False
    try:
        os.getxattr(proc_path(directory), overlay_xattr_prefix() + "opaque")
        return False
    except OSError as err:
        if err.errno not in (errno.ENODATA, errno.ENOTSUP):
            raise
    return _remove_empty(root, path)
