"""Changesets: an overlayfs upper directory from a real overlay mount and a before/after snapshot
comparison of the same operations give the same OCI whiteouts, in the order the image-spec asks for."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from imagekit.errors import LayerError
from imagekit.layers.changes import OPAQUE, overlay_upper, snapshot_diff, tree
from imagekit.layers.tarformat import DIRTYPE, REGTYPE
from imagekit.layers.write import write_layer
from tests.layers.write.conftest import MTIME, members_of, set_mtimes


def make_lower(root: Path) -> Path:
    for name in ("etc/keep", "etc/gone", "var/cache/a", "var/cache/sub/b", "opt/replaced/x", "opt/replaced/y",
                 "usr/bin/tool", "usr/share/doc/readme", "home/user/.profile", "srv/file-to-dir", "srv/dir-to-file/z"):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{name}\n")
    os.setxattr(root / "usr" / "bin" / "tool", "user.origin", b"lower")
    set_mtimes(root, MTIME)
    return root


def operate(merged: Path) -> None:
    """One build step's worth of changes: deletions, a wholesale replaced directory, edits, type changes."""
    (merged / "etc" / "gone").unlink()
    shutil.rmtree(merged / "var" / "cache")
    shutil.rmtree(merged / "opt" / "replaced")
    (merged / "opt" / "replaced").mkdir()
    (merged / "opt" / "replaced" / "new").write_text("new\n")
    with open(merged / "usr" / "bin" / "tool", "a") as f:
        f.write("changed\n")
    (merged / "home" / "user" / ".profile").chmod(0o600)
    (merged / "srv" / "file-to-dir").unlink()
    (merged / "srv" / "file-to-dir").mkdir()
    (merged / "srv" / "file-to-dir" / "inner").write_text("inner\n")
    shutil.rmtree(merged / "srv" / "dir-to-file")
    (merged / "srv" / "dir-to-file").write_text("now a file\n")
    (merged / "added").write_text("added\n")


EXPECTED = [
    ("added", REGTYPE),
    ("etc", DIRTYPE),
    ("etc/.wh.gone", REGTYPE),
    ("home", DIRTYPE),
    ("home/user", DIRTYPE),
    ("home/user/.profile", REGTYPE),
    ("opt", DIRTYPE),
    ("opt/replaced", DIRTYPE),
    ("opt/replaced/.wh..wh..opq", REGTYPE),
    ("opt/replaced/new", REGTYPE),
    ("srv", DIRTYPE),
    ("srv/dir-to-file", REGTYPE),
    ("srv/file-to-dir", DIRTYPE),
    ("srv/file-to-dir/.wh..wh..opq", REGTYPE),
    ("srv/file-to-dir/inner", REGTYPE),
    ("usr", DIRTYPE),
    ("usr/bin", DIRTYPE),
    ("usr/bin/tool", REGTYPE),
    ("var", DIRTYPE),
    ("var/.wh.cache", REGTYPE),
]


class Overlay:
    """A real overlay mount over a lower tree; unmount() (idempotent) before reading the upper directory.

    With `userxattr` overlayfs keeps its markers in `user.overlay.*` (as it must in a user namespace).
    """

    def __init__(self, base: Path, userxattr: bool) -> None:
        self.xattr_namespace = "user" if userxattr else "trusted"
        self.lower, self.upper, work, self.merged = (base / n for n in ("lower", "upper", "work", "merged"))
        make_lower(self.lower)
        for path in (self.upper, work, self.merged):
            path.mkdir()
        options = f"lowerdir={self.lower},upperdir={self.upper},workdir={work}" + (",userxattr" if userxattr else "")
        subprocess.run(["mount", "-t", "overlay", "overlay", "-o", options, str(self.merged)], check=True)
        self.mounted = True

    def unmount(self) -> None:
        if self.mounted:
            subprocess.run(["umount", str(self.merged)], check=True)
            self.mounted = False


@pytest.fixture(params=[False, True], ids=["trusted-xattrs", "userxattr"])
def overlay(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Overlay]:
    mount = Overlay(tmp_path, request.param)
    try:
        yield mount
    finally:
        mount.unmount()


def kinds(members: Iterator[object]) -> list[tuple[str, bytes]]:
    return [(m.name.decode(), m.type) for m in members]  # type: ignore[attr-defined]


def test_overlay_upper_translates_whiteouts_and_opaque_directories(overlay: Overlay) -> None:
    upper = overlay.upper
    operate(overlay.merged)
    overlay.unmount()
    assert os.major(os.lstat(upper / "etc" / "gone").st_rdev) == 0  # what overlayfs wrote
    assert os.getxattr(upper / "opt" / "replaced", f"{overlay.xattr_namespace}.overlay.opaque") == b"y"
    members = list(overlay_upper(upper))
    assert kinds(members) == EXPECTED
    whiteout = next(m for m in members if m.name == b"etc/.wh.gone")
    assert (whiteout.mode, whiteout.uid, whiteout.gid, whiteout.mtime, whiteout.size) == (0, 0, 0, 0, 0)
    tool = next(m for m in members if m.name == b"usr/bin/tool")
    assert tool.xattrs == (("user.origin", b"lower"),)
    assert not [k for m in members for k, _ in m.xattrs if ".overlay." in k]


def test_snapshot_comparison_gives_the_same_changes(tmp_path: Path) -> None:
    before = make_lower(tmp_path / "before")
    after = tmp_path / "after"
    subprocess.run(["cp", "-a", str(before), str(after)], check=True)
    operate(after)
    assert kinds(snapshot_diff(before, after)) == EXPECTED


@pytest.mark.parametrize("codec", ["gzip", "zstd"])
def test_overlay_and_snapshot_layers_are_byte_identical_under_source_date_epoch(
    overlay: Overlay, tmp_path: Path, codec: str
) -> None:
    before = tmp_path / "before"
    subprocess.run(["cp", "-a", str(overlay.lower), str(before)], check=True)
    after = tmp_path / "after"
    subprocess.run(["cp", "-a", str(overlay.lower), str(after)], check=True)
    operate(overlay.merged)
    operate(after)
    overlay.unmount()
    one, two = io.BytesIO(), io.BytesIO()
    assert write_layer(overlay_upper(overlay.upper), one, codec, source_date_epoch=MTIME) == write_layer(
        snapshot_diff(before, after), two, codec, source_date_epoch=MTIME
    )
    assert one.getvalue() == two.getvalue()


def test_whiteouts_come_before_their_siblings(tmp_path: Path) -> None:
    before, after = tmp_path / "before", tmp_path / "after"
    for root in (before, after):
        (root / "d").mkdir(parents=True)
        for name in ("!first", "-dash", "b", "c"):
            (root / "d" / name).write_text(name)
        set_mtimes(root, MTIME)
    for name in ("b", "c"):
        (after / "d" / name).unlink()
    (after / "d" / "a").write_text("new")
    names = [m.name for m in snapshot_diff(before, after)]
    assert names == [b"d", b"d/.wh.b", b"d/.wh.c", b"d/a"]


def test_an_emptied_directory_gets_whiteouts_and_unchanged_parents_stay_out(tmp_path: Path) -> None:
    before, after = tmp_path / "before", tmp_path / "after"
    for root in (before, after):
        (root / "quiet" / "deep").mkdir(parents=True)
        (root / "quiet" / "deep" / "same").write_text("same")
        (root / "busy" / "d").mkdir(parents=True)
        (root / "busy" / "d" / "x").write_text("x")
        set_mtimes(root, MTIME)
    (after / "busy" / "d" / "x").unlink()
    os.utime(after / "busy" / "d", ns=(MTIME * 10**9, MTIME * 10**9))
    names = [m.name for m in snapshot_diff(before, after)]
    assert names == [b"busy", b"busy/d", b"busy/d/.wh.x"]
    (after / "busy" / "d" / "y").write_text("y")
    names = [m.name for m in snapshot_diff(before, after)]
    assert names == [b"busy", b"busy/d", b"busy/d/" + OPAQUE, b"busy/d/y"]


def test_identical_snapshots_give_an_empty_changeset(tmp_path: Path) -> None:
    before = make_lower(tmp_path / "before")
    after = tmp_path / "after"
    subprocess.run(["cp", "-a", str(before), str(after)], check=True)
    assert list(snapshot_diff(before, after)) == []


@pytest.mark.parametrize(
    "change",
    [
        lambda p: os.chown(p, 1, 1),
        lambda p: os.setxattr(p, "user.new", b"1"),
        lambda p: os.utime(p, ns=(0, (MTIME + 1) * 10**9)),
        lambda p: p.write_text("same size"[::-1]),
    ],
    ids=["owner", "xattr", "mtime", "content-and-mtime"],
)
def test_snapshot_sees_each_kind_of_metadata_change(tmp_path: Path, change: Callable[[Path], None]) -> None:
    before, after = tmp_path / "before", tmp_path / "after"
    for root in (before, after):
        root.mkdir()
        (root / "f").write_text("same size")
        set_mtimes(root, MTIME)
    change(after / "f")
    assert [m.name for m in snapshot_diff(before, after)] == [b"f"]


def test_symlink_retargeted_is_a_change(tmp_path: Path) -> None:
    before, after = tmp_path / "before", tmp_path / "after"
    for root, target in ((before, "aaa"), (after, "bbb")):
        root.mkdir()
        (root / "l").symlink_to(target)
        set_mtimes(root, MTIME)
    assert [(m.name, m.linkname) for m in snapshot_diff(before, after)] == [(b"l", b"bbb")]


def test_overlay_redirect_dir_is_refused(tmp_path: Path) -> None:
    upper = tmp_path / "upper"
    (upper / "moved").mkdir(parents=True)
    os.setxattr(upper / "moved", "trusted.overlay.redirect", b"/old")
    with pytest.raises(LayerError, match="redirect_dir=on.*mount the overlay with redirect_dir=off"):
        list(overlay_upper(upper))


def test_tree_keeps_a_zero_zero_device_as_a_device(tmp_path: Path) -> None:
    (tmp_path / "t").mkdir()
    os.mknod(tmp_path / "t" / "c", 0o600 | 0o020000, 0)
    blob = io.BytesIO()
    layer = write_layer(tree(tmp_path / "t"), blob)
    assert [(m.name, m.ischr()) for m in members_of(blob.getvalue(), layer)] == [("c", True)]


def test_sockets_are_left_out(tmp_path: Path) -> None:
    import socket

    (tmp_path / "t").mkdir()
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(tmp_path / "t" / "sock"))
        (tmp_path / "t" / "file").write_text("")
        assert [m.name for m in tree(tmp_path / "t")] == [b"file"]
