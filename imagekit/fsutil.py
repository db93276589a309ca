"""Crash-safe file primitives: atomic_write, locked, fsync_dir. The one copy of what the store, the origins
file and the credential store each need, so each gets the same guarantees. Also du's count of disk
use (disk_usage, DiskMeter): the measure `system df` and `builder prune` report in.

- `atomic_write` replaces a file so that readers, and the file system after a crash or SIGKILL at any
  instant, see the old content or the new, never a mix or an empty file: a temp file on the same file
  system, fsync, rename over the target, fsync of the directory (the rename itself is durable only then).
- `locked` is an flock(2) on a lock file: advisory, shared by every process that takes it, released
  when the block ends or the process dies (no stale lock files to clean up).

OS errors pass through: callers know what they were doing and turn them into their own ImagekitError.

Imports: stdlib only.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

TYPE_CHECKING = False  # typing's import is a run's start-up cost; its names are for the type checker
if TYPE_CHECKING:
    from typing import TypeVar

    T = TypeVar("T")


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Makes the entries of directory `path` (a rename, a new file) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def locked(path: str | os.PathLike[str], exclusive: bool = True) -> Iterator[None]:
    """Holds an flock on `path` (created if missing, mode 0644) for the block: exclusive, or shared.

    Blocks until the lock is granted. The lock file itself is never removed: removing it would let
    two processes lock two different files of the same name.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike[str], data: bytes, *, mode: int = 0o600, temp_dir: str | os.PathLike[str] | None = None,
                 durable: bool = True) -> None:
    """Replaces `path` with `data` (file mode `mode`) atomically and, unless `durable` is False, durably (fsynced:
    state that a reboot voids anyway, as the bridge's leases, need not wait for the disk); on error `path` is
    untouched.

    The temp file is `.<name>.<random>` in `temp_dir` (default: the directory of `path`; it must be on
    the same file system) and is removed if anything fails before the rename.
    """
    target = Path(path)
    fd, temp = new_temp_file(temp_dir if temp_dir is not None else target.parent, f".{target.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), mode)
            out.write(data)
            out.flush()
            if durable:
                os.fsync(out.fileno())
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    if durable:
        fsync_dir(target.parent)


def new_temp_file(directory: str | os.PathLike[str], prefix: str = "") -> tuple[int, str]:
    """tempfile.mkstemp(dir=directory, prefix=prefix): (fd, path) of a new file of mode 0600 that nobody else can
    have opened. Not tempfile itself: importing it loads shutil, random and three compression modules (6 ms of
    an `imagekit run`, whose container records go through atomic_write)."""
    return _new_temp(directory, prefix, lambda path: os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600))


def new_temp_dir(directory: str | os.PathLike[str], prefix: str = "") -> str:
    """tempfile.mkdtemp(dir=directory, prefix=prefix): the path of a new directory of mode 0700."""
    return _new_temp(directory, prefix, lambda path: os.mkdir(path, 0o700))[1]


def _new_temp(directory: str | os.PathLike[str], prefix: str, make: Callable[[str], T]) -> tuple[T, str]:
    while True:
        path = os.path.join(directory, prefix + os.urandom(6).hex())
        try:
            return make(path), path
        except FileExistsError:  # 2**-48 a try: another writer's name
            continue


def disk_usage(paths: Sequence[Path]) -> int:
    """Allocated bytes under `paths`, each inode counted once (`du -s --block-size=1` of them all)."""
    return DiskMeter().measure(paths)


class DiskMeter:
    """Allocated bytes (st_blocks * 512) of trees, each inode counted once across every measure() of one
    meter, as one `du -s --block-size=1` counts them: so what several callers claim in turn adds up to
    du of the whole, and a tree already measured (its directory's inode seen) is not walked again."""

    def __init__(self) -> None:
        self._seen: set[tuple[int, int]] = set()

    def measure(self, paths: Sequence[Path]) -> int:
        """Bytes under `paths` that no earlier measure() of this meter counted; missing paths count 0."""
        total = 0
        pending = [os.fsencode(path) for path in paths]
        while pending:
            path = pending.pop()
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                continue
            if (st.st_dev, st.st_ino) in self._seen:
                continue
            self._seen.add((st.st_dev, st.st_ino))
            total += st.st_blocks * 512
            if stat.S_ISDIR(st.st_mode):
                try:
                    pending += [path + b"/" + name for name in os.listdir(path)]
                except (PermissionError, FileNotFoundError):
                    continue
        return total
