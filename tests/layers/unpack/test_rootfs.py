"""Root: every path resolves as if the root were `/`, with openat2 and with the walk that stands in for it."""

from __future__ import annotations

import errno
import os
import resource
import subprocess
from pathlib import Path

import pytest

from imagekit.layers.rootfs import Root, openat2_available, proc_path, remove


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """ROOT with real dirs, and symlinks that would leave it if the kernel followed them from the host's /."""
    root = tmp_path / "root"
    (root / "usr/lib").mkdir(parents=True)
    (root / "etc").mkdir()
    (tmp_path / "host").mkdir()
    os.symlink("usr/lib", root / "lib")
    os.symlink("/etc", root / "abs-etc")
    os.symlink("../../../../..", root / "up")
    os.symlink(str(tmp_path / "host"), root / "host")
    os.symlink("/etc", root / "usr/lib/abs-etc")  # absolute in the middle of a path: restarts at the root
    os.symlink("/usr/lib/abs-etc", root / "etc/via")
    os.symlink("loop2", root / "loop1")
    os.symlink("loop1", root / "loop2")
    (root / "file").write_text("f")
    return root


def _where(root: Root, fd: int) -> str:
    return os.fsdecode(os.readlink(proc_path(fd)))


def test_openat2_is_there_on_this_kernel(tmp_path: Path) -> None:
    fd = os.open(tmp_path, os.O_PATH)
    try:
        assert openat2_available(fd)
    finally:
        os.close(fd)
    with Root(tmp_path) as root:
        assert root.uses_openat2 is True  # so the "openat2" resolver cases test it, not the walk


@pytest.mark.parametrize(
    ("path", "expected"),
    [(b"lib", "usr/lib"), (b"abs-etc", "etc"), (b"up", ""), (b"up/etc", "etc"), (b"up/up/usr/lib", "usr/lib"), (b"lib/..", "usr"), (b"lib/../../..", ""),
     (b"usr/lib/abs-etc", "etc"), (b"lib/abs-etc", "etc"), (b"usr/lib/abs-etc/via/..", ""), (b"etc/via", "etc")],
)
def test_symlinks_and_dotdot_resolve_inside_the_root(tree: Path, path: bytes, expected: str, resolver: str) -> None:
    with Root(tree) as root:
        assert _where(root, root.directory(path)) == str(tree / expected).rstrip("/")


def test_an_absolute_link_to_the_host_means_the_same_path_inside(tree: Path, resolver: str) -> None:
    with Root(tree) as root:
        with pytest.raises(FileNotFoundError):
            root.directory(b"host")
        made = root.directory(b"host/sub", create=True)
        assert _where(root, made) == str(tree) + str(tree.parent / "host" / "sub")
    assert not (tree.parent / "host" / "sub").exists()


@pytest.mark.parametrize(("path", "code"), [(b"loop1", errno.ELOOP), (b"loop1/x", errno.ELOOP), (b"file/x", errno.ENOTDIR), (b"file", errno.ENOTDIR)])
def test_loops_and_files_are_errors(tree: Path, path: bytes, code: int, resolver: str) -> None:
    with Root(tree) as root, pytest.raises(OSError) as caught:
        root.directory(path, create=True)
    assert caught.value.errno == code


@pytest.mark.parametrize(("links", "ok"), [(40, True), (41, False)])
def test_forty_symlinks_resolve_and_the_forty_first_is_a_loop(tmp_path: Path, resolver: str, links: int, ok: bool) -> None:
    """The kernel's limit (MAXSYMLINKS, 40), kept exactly by the walk too: a chain of 40 links resolves."""
    root = tmp_path / "root"
    (root / "end").mkdir(parents=True)
    os.symlink("end", root / "l1")
    for n in range(2, links + 1):
        os.symlink(f"l{n - 1}", root / f"l{n}")
    with Root(root) as rooted:
        if ok:
            assert _where(rooted, rooted.directory(b"l%d" % links)) == str(root / "end")
        else:
            with pytest.raises(OSError) as caught:
                rooted.directory(b"l%d" % links)
            assert caught.value.errno == errno.ELOOP


def test_forget_keeps_only_the_descriptor_in_use(tree: Path) -> None:
    with Root(tree) as root:
        kept = root.directory(b"usr/lib")
        other = root.directory(b"etc")
        root.forget(keep=kept)
        assert _where(root, kept) == str(tree / "usr/lib")
        with pytest.raises(OSError):
            os.fstat(other)


def test_directories_are_cached_up_to_a_bound_and_parent_creates_only_when_asked(tmp_path: Path, resolver: str) -> None:
    for i in range(100):
        (tmp_path / f"d{i}").mkdir()
    with Root(tmp_path) as root:
        first = root.directory(b"d0")
        assert root.directory(b"d0") == first  # cached: the same borrowed descriptor, nothing leaks
        found = [root.directory(f"d{i}".encode()) for i in range(100)]  # past the cache's bound, oldest closed first
        assert _where(root, found[-1]) == str(tmp_path / "d99")
        assert _where(root, root.directory(b"d0")) == str(tmp_path / "d0")
        with pytest.raises(FileNotFoundError):
            root.parent(b"missing/x")
        assert not (tmp_path / "missing").exists()
        parent, name = root.parent(b"made/x", create=True)
        assert (_where(root, parent), name) == (str(tmp_path / "made"), b"x")


def test_remove_never_follows_symlinks(tree: Path) -> None:
    (tree.parent / "host" / "precious").write_text("p")
    parent = os.open(tree.parent, os.O_PATH)
    try:
        remove(parent, b"root")
    finally:
        os.close(parent)
    assert not tree.exists()
    assert (tree.parent / "host" / "precious").read_text() == "p"


def test_remove_handles_trees_deeper_than_recursion_and_descriptor_limits(tmp_path: Path) -> None:
    depth = 1500
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    fd = os.open(tmp_path, os.O_PATH)
    try:
        here = os.open(tmp_path, os.O_PATH)
        os.mkdir("deep", dir_fd=here)
        for _ in range(depth):
            inner = os.open("deep" if _ == 0 else "d", os.O_PATH, dir_fd=here)
            os.close(here)
            here = inner
            os.mkdir("d", 0o500, dir_fd=here)  # unwritable on the way down, as a rootless unpack may leave them
        os.close(here)
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
        remove(fd, b"deep")
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        os.close(fd)
        left = os.listdir(tmp_path)
        # A tree this deep breaks pytest's own cleanup of old temp dirs (shutil.rmtree recurses): never leave it.
        subprocess.run(["rm", "-rf", str(tmp_path / "deep")], check=True)
    assert left == []


def test_remove_of_missing_and_of_plain_files(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    os.mkfifo(tmp_path / "p")
    fd = os.open(tmp_path, os.O_PATH)
    try:
        for name in (b"f", b"p", b"missing"):
            remove(fd, name)
    finally:
        os.close(fd)
    assert os.listdir(tmp_path) == []
