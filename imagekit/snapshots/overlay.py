"""Whether overlayfs works here: one real mount, in a forked child's private mount namespace.

Reading /proc/filesystems is not enough: overlayfs may be listed yet refuse the filesystem the store
lives on (an upper directory on overlayfs itself, on NFS, or on a filesystem without xattrs), or an
unprivileged caller may not be allowed to mount it. So the probe does what a container start will
do: mounts an overlay of a lower, an upper and a work directory made on that very filesystem,
creates a file through it and deletes a lower file, which must leave overlayfs' whiteout (a 0/0
character device) in the upper directory. The child unshares its mount namespace (and, as a
non-root user, a user namespace mapping it to root, mounting with `userxattr` as rootless runtimes
do), so nothing it mounts is ever seen outside it; it exits with the answer.

Imports: stdlib, imagekit.fsutil, imagekit.layers.overlayfs (the whiteout test and the xattr prefix).
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

from imagekit.fsutil import new_temp_dir
from imagekit.layers.overlayfs import is_whiteout, overlay_xattr_prefix

_CLONE_NEWNS = 0x00020000
_CLONE_NEWUSER = 0x10000000
_MS_REC = 0x4000
_MS_PRIVATE = 1 << 18
_libc = ctypes.CDLL(None, use_errno=True)


def mount_options(lowers: list[str], upper: str, work: str) -> str:
    """The overlay mount data for these directories (lowers topmost first), as the sandbox should pass it:
    `userxattr` where whiteout markers are user.* xattrs; no redirects made or followed and no metacopy
    (an upper written with them is not a self-contained changeset). `redirect_dir=off` is not used: some
    kernels read it as "follow", which `userxattr` refuses."""
    options = f"lowerdir={':'.join(lowers)},upperdir={upper},workdir={work},redirect_dir=nofollow,metacopy=off"
    return options + (",userxattr" if overlay_xattr_prefix() == "user.overlay." else "")


def overlay_works(scratch: Path) -> bool:
    """Whether an overlay with its directories under `scratch` (an existing directory) mounts and behaves.

    Leaves nothing in `scratch`. Never raises for an overlay that does not work: that is the answer.
    """
    import shutil  # here: the probe is rare, and loading shutil is a tenth of `imagekit run`

    base = Path(new_temp_dir(scratch, "overlay-probe-"))
    try:
        for name in ("lower", "upper", "work", "merged"):
            (base / name).mkdir()
        (base / "lower" / "gone").write_bytes(b"")
        pid = os.fork()
        if pid == 0:  # the child: only system calls, then _exit, whatever happens
            code = 1
            try:
                code = _probe(base)
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        return os.waitstatus_to_exitcode(status) == 0
    finally:
        _chmod_tree(base / "work")  # overlayfs leaves work/work mode 0, owned by (namespace) root
        shutil.rmtree(base, ignore_errors=True)


def _probe(base: Path) -> int:
    uid, gid = os.geteuid(), os.getegid()
    flags = _CLONE_NEWNS | (_CLONE_NEWUSER if uid != 0 else 0)
    if _libc.unshare(flags) != 0:
        return 2
    if uid != 0:
        Path("/proc/self/setgroups").write_text("deny")
        Path("/proc/self/uid_map").write_text(f"0 {uid} 1")
        Path("/proc/self/gid_map").write_text(f"0 {gid} 1")
    if _libc.mount(None, b"/", None, _MS_REC | _MS_PRIVATE, None) != 0:
        return 3
    options = mount_options([str(base / "lower")], str(base / "upper"), str(base / "work"))
    if _libc.mount(b"overlay", os.fsencode(base / "merged"), b"overlay", 0, options.encode()) != 0:
        return 4
    (base / "merged" / "new").write_bytes(b"probe")
    (base / "merged" / "gone").unlink()
    if not is_whiteout((base / "upper" / "gone").lstat()) or (base / "upper" / "new").read_bytes() != b"probe":
        return 5
    return 0


def _chmod_tree(path: Path) -> None:
    try:
        for name in os.listdir(path):
            os.chmod(path / name, 0o700)
    except OSError:
        return
