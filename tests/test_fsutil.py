"""imagekit.fsutil: atomic replacement leaves the old file or the new one and no debris; flock modes exclude as they should."""

from __future__ import annotations

import ctypes
import fcntl
import os
import stat
import struct
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest

from imagekit.fsutil import atomic_write, fsync_dir, locked, new_temp_dir, new_temp_file
from tests.mounts import tmpfs

_IN_CREATE = 0x100


def test_atomic_write_replaces_with_the_mode_asked(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    atomic_write(target, b"one")
    assert target.read_bytes() == b"one" and stat.S_IMODE(target.stat().st_mode) == 0o600
    atomic_write(target, b"two", mode=0o644)
    assert target.read_bytes() == b"two" and stat.S_IMODE(target.stat().st_mode) == 0o644
    atomic_write(target, b"three", mode=0o644, durable=False)  # atomic all the same, only not waiting for the disk
    assert target.read_bytes() == b"three" and stat.S_IMODE(target.stat().st_mode) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


@contextmanager
def _created_in(directory: Path) -> Iterator[list[str]]:
    """The names of the files created in `directory` while the block ran, filled in when it ends: inotify's
    IN_CREATE events, the kernel's record of a temp file that is renamed away before anyone could look."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
    if fd < 0:
        raise OSError(ctypes.get_errno(), "inotify_init1")
    names: list[str] = []
    try:
        if libc.inotify_add_watch(fd, os.fsencode(directory), _IN_CREATE) < 0:
            raise OSError(ctypes.get_errno(), "inotify_add_watch", str(directory))
        yield names
        events = b""
        with suppress(BlockingIOError):
            while chunk := os.read(fd, 65536):
                events += chunk
        while events:
            _wd, _mask, _cookie, length = struct.unpack_from("iIII", events)
            names.append(os.fsdecode(events[16 : 16 + length].rstrip(b"\0")))
            events = events[16 + length :]
    finally:
        os.close(fd)


def test_atomic_write_puts_its_temp_file_where_asked(tmp_path: Path) -> None:
    """In `temp_dir` when given (the store's tmp/, which gc clears of a killed writer's debris), named after
    the target; the target's directory only sees the rename."""
    (tmp_path / "tmp").mkdir()
    with _created_in(tmp_path / "tmp") as in_temp_dir, _created_in(tmp_path) as beside:
        atomic_write(tmp_path / "index.json", b"{}", temp_dir=tmp_path / "tmp")
    assert (tmp_path / "index.json").read_bytes() == b"{}" and not any((tmp_path / "tmp").iterdir())
    assert len(in_temp_dir) == 1 and in_temp_dir[0].startswith(".index.json."), in_temp_dir
    assert beside == []
    with _created_in(tmp_path) as beside:
        atomic_write(tmp_path / "index.json", b"[]")
    assert len(beside) == 1 and beside[0].startswith(".index.json."), beside


def test_atomic_write_makes_its_temp_file_on_the_targets_file_system(tmp_path: Path) -> None:
    """The rename is atomic only within one file system: a temp file in TMPDIR could not be renamed onto a
    target elsewhere (EXDEV), so the default is the target's directory (the target here is on its own tmpfs)."""
    with tmpfs(tmp_path / "fs", "1m") as fs:
        atomic_write(fs / "state.json", b"one")
        (fs / "tmp").mkdir()
        atomic_write(fs / "index.json", b"{}", temp_dir=fs / "tmp")
        assert (fs / "state.json").read_bytes() == b"one" and (fs / "index.json").read_bytes() == b"{}"
        assert sorted(p.name for p in fs.rglob("*")) == ["index.json", "state.json", "tmp"]


def test_a_failed_atomic_write_leaves_the_target_and_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "taken"
    target.mkdir()
    (target / "inside").write_text("keep")
    with pytest.raises(OSError):
        atomic_write(target, b"new")  # renaming a file over a non-empty directory fails
    assert (target / "inside").read_text() == "keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]
    with pytest.raises(FileNotFoundError):
        atomic_write(tmp_path / "missing" / "file", b"x")


@contextmanager
def _other_holder(path: Path, mode: int) -> Iterator[bool]:
    """Whether another open file description can take `mode` on `path` right now (without waiting)."""
    fd = os.open(path, os.O_RDWR)
    try:
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
        else:
            yield True
    finally:
        os.close(fd)


def test_new_temp_files_and_directories_are_private_and_new(tmp_path: Path) -> None:
    """tempfile's mkstemp and mkdtemp, as fsutil makes them: mode 0600 / 0700, the prefix, never an existing name."""
    made = set()
    for _ in range(20):
        fd, path = new_temp_file(tmp_path, ".config.json.")
        os.write(fd, b"x")
        os.close(fd)
        made.add(path)
        assert os.path.dirname(path) == str(tmp_path) and os.path.basename(path).startswith(".config.json.")
        assert stat.S_IMODE(os.lstat(path).st_mode) == 0o600 and Path(path).read_bytes() == b"x"
        directory = new_temp_dir(tmp_path, "scratch-")
        made.add(directory)
        assert os.path.basename(directory).startswith("scratch-") and stat.S_IMODE(os.lstat(directory).st_mode) == 0o700
    assert len(made) == 40


def test_a_temp_name_already_taken_is_never_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """O_EXCL: a name that exists (a symlink someone planted, a directory) is passed over, never opened or followed."""
    names = iter([b"\x00" * 6, b"\x01" * 6, b"\x00" * 6, b"\x02" * 6])
    monkeypatch.setattr(os, "urandom", lambda size: next(names))
    (tmp_path / "p.000000000000").symlink_to(tmp_path / "target")
    fd, path = new_temp_file(tmp_path, "p.")
    os.close(fd)
    assert path == str(tmp_path / "p.010101010101") and not (tmp_path / "target").exists()
    assert new_temp_dir(tmp_path, "p.") == str(tmp_path / "p.020202020202")  # p.000000000000 is taken


def test_locked_excludes_as_flock_does(tmp_path: Path) -> None:
    lock = tmp_path / "x.lock"
    with locked(lock):
        for mode in (fcntl.LOCK_SH, fcntl.LOCK_EX):
            with _other_holder(lock, mode) as granted:
                assert not granted
    with locked(lock, exclusive=False):
        with _other_holder(lock, fcntl.LOCK_SH) as granted:
            assert granted
        with _other_holder(lock, fcntl.LOCK_EX) as granted:
            assert not granted
    with _other_holder(lock, fcntl.LOCK_EX) as granted:
        assert granted  # released at the end of the block
    assert lock.exists()  # never removed: another process may hold it


def test_fsync_dir_needs_a_directory(tmp_path: Path) -> None:
    fsync_dir(tmp_path)
    (tmp_path / "f").write_text("x")
    with pytest.raises(NotADirectoryError):
        fsync_dir(tmp_path / "f")


def test_atomic_write_is_durable_unless_told_otherwise(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """By default the temp file's data is fsynced before the rename and the directory after it (what survives a
    power cut: a rename is durable only with its directory); durable=False skips both. os.fsync still runs: the
    spy only records which descriptors it was given."""
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    target = tmp_path / "state.json"
    atomic_write(target, b"one")
    assert len(synced) == 2 and synced[0].startswith(str(tmp_path / ".state.json.")) and synced[1] == str(tmp_path)
    synced.clear()
    atomic_write(target, b"two", durable=False)
    assert synced == [] and target.read_bytes() == b"two"
