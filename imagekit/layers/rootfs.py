"""Paths inside a root directory that no input can lead out of: the ground the unpacker stands on.

A `Root` holds a file descriptor on the root and resolves every path as if the root were `/`
(`openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`, Linux 5.6+): `..` stops at the root and a
symlink to `/etc` means ROOT/etc, as in a chroot, so a layer's symlink can never point a later
write outside. Where openat2 is missing (ENOSYS, or a seccomp filter answering EPERM) the same
semantics come from a walk one component at a time with O_NOFOLLOW, following symlinks by hand
inside the root (at most 40, as the kernel, then ELOOP). Callers get a descriptor of the *parent*
directory and operate on the last component with `dir_fd=` calls that never follow it, so no path
string is ever handed to the kernel from the host's `/`; string checks are only a first filter.

Operations on an O_PATH descriptor itself (chmod, chown, utime, xattrs) go through
`/proc/self/fd/N`, which the kernel resolves to that very inode (the trick runc uses).

Imports: stdlib only.
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat
from collections import OrderedDict

#: openat2's number is 437 on every architecture that has the unified syscall table (Linux 5.6+). The machine
#: as uname(2) tells it (what platform.machine() returns, without importing platform: a run's start-up).
_OPENAT2 = 437 if os.uname().machine in {"x86_64", "aarch64", "arm64", "armv7l", "armv6l", "i686", "i386", "ppc64le", "s390x", "riscv64"} else None
_RESOLVE_NO_MAGICLINKS = 0x02
_RESOLVE_IN_ROOT = 0x10
_MAX_SYMLINKS = 40
_CACHED_DIRS = 64
_PATH_FLAGS = os.O_PATH | os.O_CLOEXEC
#: Mode for parent directories a layer names only implicitly, as Docker and containerd create them.
IMPLICIT_DIR_MODE = 0o755


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def _openat2(dirfd: int, path: bytes, flags: int) -> int:
    how = _OpenHow(flags, 0, _RESOLVE_IN_ROOT | _RESOLVE_NO_MAGICLINKS)
    for _ in range(8):  # EAGAIN: a concurrent rename raced the lookup; the kernel asks for a retry
        fd = _libc.syscall(_OPENAT2, ctypes.c_int(dirfd), ctypes.c_char_p(path or b"."), ctypes.byref(how), ctypes.c_size_t(ctypes.sizeof(how)))
        if fd >= 0:
            return int(fd)
        code = ctypes.get_errno()
        if code != errno.EAGAIN:
            break
    raise OSError(code, os.strerror(code), path)


def proc_path(fd: int, name: bytes = b"") -> bytes:
    """`/proc/self/fd/FD[/NAME]`: reaches the inode an O_PATH descriptor holds (or NAME inside it)."""
    return b"/proc/self/fd/%d" % fd + (b"/" + name if name else b"")


def openat2_available(fd: int) -> bool:
    """Whether this kernel (and any seccomp filter around us) lets openat2 resolve inside `fd`."""
    if _OPENAT2 is None:
        return False
    try:
        os.close(_openat2(fd, b".", _PATH_FLAGS | os.O_DIRECTORY))
    except OSError as err:
        if err.errno in (errno.ENOSYS, errno.EPERM):
            return False
        raise
    return True


def split(path: bytes) -> tuple[bytes, bytes]:
    """(parent, name) of a clean relative path; the parent of a top-level name is b"" (the root)."""
    parent, _, name = path.rpartition(b"/")
    return parent, name


class Root:
    """A directory that paths resolve inside; owns the descriptors it hands out.

    `directory()` returns a *borrowed* descriptor, cached until `forget()` (call it after anything
    that removes or replaces a path, since a cached descriptor may then name a detached directory)
    or `close()`. Creating paths never invalidates the cache: an existing path keeps its meaning.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self.fd = os.open(self.path, _PATH_FLAGS | os.O_DIRECTORY)
        if not os.path.isdir(proc_path(self.fd)):
            os.close(self.fd)
            raise OSError(errno.ENOENT, "/proc is not mounted (needed to change files through descriptors)", "/proc/self/fd")
        self.uses_openat2 = openat2_available(self.fd)
        self._dirs: OrderedDict[bytes, int] = OrderedDict()

    def close(self) -> None:
        self.forget()
        os.close(self.fd)

    def __enter__(self) -> Root:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def forget(self, keep: int | None = None) -> None:
        """Closes every cached directory descriptor but `keep` (after a removal or replacement).

        `keep` is the directory the caller removed something *in*: that directory itself is unchanged,
        and the caller may go on using its borrowed descriptor.
        """
        for path, fd in list(self._dirs.items()):
            if fd != keep:
                os.close(fd)
                del self._dirs[path]

    def directory(self, path: bytes, *, create: bool = False) -> int:
        """A borrowed O_PATH descriptor of the directory `path` (clean, relative; b"" is the root).

        Symlinks on the way resolve inside the root. With `create`, missing directories are made
        (mode IMPLICIT_DIR_MODE), also at the end of an in-root symlink. Raises OSError: ENOENT, ENOTDIR (a component is not a directory),
        ELOOP (too many symlinks), ENAMETOOLONG.
        """
        if not path:
            return self.fd
        fd = self._dirs.get(path)
        if fd is not None:
            self._dirs.move_to_end(path)
            return fd
        try:
            fd = self._resolve(path)
        except FileNotFoundError:
            if not create:
                raise
            fd = self._create(path)
        if len(self._dirs) >= _CACHED_DIRS:
            os.close(self._dirs.popitem(last=False)[1])
        self._dirs[path] = fd
        return fd

    def parent(self, path: bytes, *, create: bool = False) -> tuple[int, bytes]:
        """(borrowed descriptor of the directory holding `path`, last component of `path`)."""
        parent, name = split(path)
        return self.directory(parent, create=create), name

    def _resolve(self, path: bytes) -> int:
        """An owned O_PATH descriptor of the directory `path` resolves to inside the root."""
        if self.uses_openat2:
            return _openat2(self.fd, path, _PATH_FLAGS | os.O_DIRECTORY)
        return self._walk(path, create=False)

    def _create(self, path: bytes) -> int:
        return self._walk(path, create=True)

    def _walk(self, path: bytes, *, create: bool) -> int:
        """RESOLVE_IN_ROOT by hand: one component at a time with O_NOFOLLOW, symlinks followed by
        reading them and resolving their targets inside the root. With `create`, a missing component
        is made as a directory, also where a symlink leads (as containerd and umoci create through
        in-root symlinks)."""
        todo = [part for part in reversed(path.split(b"/")) if part and part != b"."]
        chain: list[int] = []  # owned descriptors of the directories below the root, innermost last
        links = 0
        try:
            while todo:
                part = todo.pop()
                if part == b"..":
                    if chain:
                        os.close(chain.pop())
                    continue
                here = chain[-1] if chain else self.fd
                try:
                    fd = os.open(part, _PATH_FLAGS | os.O_NOFOLLOW, dir_fd=here)
                except FileNotFoundError:
                    if not create:
                        raise
                    try:
                        os.mkdir(part, IMPLICIT_DIR_MODE, dir_fd=here)
                        os.chmod(proc_path(here, part), IMPLICIT_DIR_MODE)  # whatever the umask
                    except FileExistsError:
                        pass
                    fd = os.open(part, _PATH_FLAGS | os.O_NOFOLLOW, dir_fd=here)
                mode = os.fstat(fd).st_mode
                if stat.S_ISLNK(mode):
                    os.close(fd)
                    links += 1
                    if links > _MAX_SYMLINKS:
                        raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)
                    target = os.readlink(part, dir_fd=here)
                    if target.startswith(b"/"):
                        while chain:
                            os.close(chain.pop())
                    todo.extend(p for p in reversed(target.split(b"/")) if p and p != b".")
                    continue
                chain.append(fd)
                if not stat.S_ISDIR(mode):
                    raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path)
            return chain.pop() if chain else os.dup(self.fd)
        finally:
            for fd in chain:
                os.close(fd)


def remove(parent: int, name: bytes) -> None:
    """Removes `name` in the directory `parent` whatever it is, never following a symlink.

    Directories go depth-first, holding one descriptor at a time (climbing back with `..`), so
    neither a deep tree nor the descriptor limit stops it. Directories below `name` that we own but
    may not write (0555, 0000: what a rootless unpack meets) are opened up as it goes; `parent`
    itself must be writable (see `writable`). Missing `name` is fine.
    """
    try:
        os.unlink(name, dir_fd=parent)
        return
    except FileNotFoundError:
        return
    except IsADirectoryError:
        pass
    fd = os.open(name, _PATH_FLAGS | os.O_NOFOLLOW | os.O_DIRECTORY, dir_fd=parent)
    pending: list[list[bytes]] = []  # per level below `name`: names still to remove
    try:
        names = _listing(fd)
        while True:
            if names:
                child = names.pop()
                try:
                    os.unlink(child, dir_fd=fd)
                    continue
                except FileNotFoundError:
                    continue
                except IsADirectoryError:
                    pass
                except PermissionError:
                    _open_up(fd)
                    names.append(child)
                    continue
                inner = os.open(child, _PATH_FLAGS | os.O_NOFOLLOW | os.O_DIRECTORY, dir_fd=fd)
                os.close(fd)
                fd = inner
                pending.append(names + [child])  # the child is removed (rmdir) on the way back up
                names = _listing(fd)
                continue
            if not pending:
                break
            up = os.open(b"..", _PATH_FLAGS | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = up
            names = pending.pop()
            os.rmdir(names.pop(), dir_fd=fd)
    finally:
        os.close(fd)
    os.rmdir(name, dir_fd=parent)


def remove_path(path: str | os.PathLike[str]) -> None:
    """`remove` for a path: its parent is opened by name (trusted), everything below never followed."""
    directory, name = os.path.split(os.fsencode(path))
    parent = os.open(directory or b".", _PATH_FLAGS | os.O_DIRECTORY)
    try:
        remove(parent, name)
    finally:
        os.close(parent)


def _listing(fd: int) -> list[bytes]:
    try:
        return os.listdir(proc_path(fd))
    except PermissionError:
        _open_up(fd)
        return os.listdir(proc_path(fd))


def writable(fd: int) -> int | None:
    """Gives the owner rwx on the directory `fd` if it lacks them; returns the mode to restore, or None.

    Root needs none of this; a rootless unpack owns every directory it made but must still change
    ones a lower layer left 0555 (it restores the mode afterwards).
    """
    mode = os.fstat(fd).st_mode
    if mode & 0o700 == 0o700:
        return None
    os.chmod(proc_path(fd), stat.S_IMODE(mode) | 0o700)
    return stat.S_IMODE(mode)


def _open_up(fd: int) -> None:
    if os.fstat(fd).st_uid != os.geteuid() or writable(fd) is None:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), proc_path(fd))
