"""Rootless unpacking, for real: the CLI runs in an unprivileged user namespace.

`unshare --user --map-user=1000` runs imagekit as uid 1000 with no capabilities (mapped onto the
test's own uid, so it can still read the store and the venv): no chown, no mknod of devices, no
writing into a 0555 directory it has not opened up. `--map-root-user` is root inside a namespace
that maps only one id: chown to other owners and device nodes fail there, and must not fail the unpack.
umoci's `--rootless` mode, run the same way, is the reference for the ownership xattr.
"""

from __future__ import annotations

import os
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest

from imagekit.layers.apply import ROOTLESS_XATTR, rootless_owner
from tests.layers.treecmp import diff, tree_manifest
from tests.layers.unpack.conftest import Sandbox
from tests.layers.unpack.hostile import BY_NAME as HOSTILE
from tests.layers.unpack.hostile import blobs
from tests.layers.unpack.tars import MEDIA_TYPES, compress, device, directory, fifo, file, image, layers_image, store_image, symlink, tar, xattrs
from tests.store.conftest import IMAGEKIT

AS_USER = ["unshare", "--user", "--map-user=1000", "--map-group=1000"]
AS_NAMESPACE_ROOT = ["unshare", "--user", "--map-root-user"]
CAP = bytes.fromhex("0100000200200000000000000000000000000000")

LOWER_ENTRIES = [
        directory("home"),
        directory("home/u", uid=1000, gid=1000, mode=0o700),
        file("home/u/f", b"mine", uid=1000, gid=1000, mode=0o600),
        symlink("home/u/link", "f", uid=1000, gid=1000),
        file("group-only", uid=0, gid=5),
        file("su", b"su", mode=0o4755),
        file("sg", b"sg", mode=0o2711),
        directory("dev"),
        device("dev/null", tarfile.CHRTYPE, 1, 3),
        device("dev/sda", tarfile.BLKTYPE, 8, 0),
        fifo("dev/fifo"),
        directory("ro", mode=0o555),
        file("ro/a", b"a"),
        file("ro/keep", b"k"),
        directory("ro/sub", mode=0o555),
        file("ro/sub/deep", b"d"),
        directory("locked", mode=0o000),
        file("locked/inner", b"i"),
        file("note", b"n", pax=xattrs(user_note=b"hello")),
        file("ping", b"ELF", mode=0o755, pax=xattrs(security_capability=CAP)),
]
LOWER = tar(LOWER_ENTRIES)
UPPER = tar([file("ro/b", b"b"), file("ro/.wh.a"), file("ro/sub/.wh..wh..opq"), file("ro/sub/new", b"n"), file("locked/inner", b"replaced")])


def _imagekit(prefix: list[str], store: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*prefix, IMAGEKIT, "--root", str(store), *args], capture_output=True, text=True, timeout=120)


def test_rootless_unpack_keeps_owners_in_the_xattr_and_skips_what_needs_root(tmp_path: Path) -> None:
    store = tmp_path / "store"
    ref = store_image(store, layers_image(LOWER, UPPER, codec="gzip"))
    dest = tmp_path / "rootfs"
    result = _imagekit(AS_USER, store, "unpack", ref, str(dest))
    assert result.returncode == 0, result.stderr
    warnings = result.stderr.splitlines()
    assert any("skipped device nodes (only root may create them): 'dev/null', 'dev/sda'" in w for w in warnings), warnings
    assert any("skipped setuid/setgid bits (only root may keep them): 'su', 'sg'" in w for w in warnings), warnings
    assert any("security.*" in w and "'ping'" in w for w in warnings), warnings
    assert "Traceback" not in result.stderr

    assert not (dest / "dev/null").exists() and not (dest / "dev/sda").exists()
    assert stat.S_ISFIFO(os.lstat(dest / "dev/fifo").st_mode)
    assert stat.S_IMODE(os.stat(dest / "su").st_mode) == 0o755
    assert stat.S_IMODE(os.stat(dest / "sg").st_mode) == 0o711
    assert os.getxattr(dest / "home/u/f", ROOTLESS_XATTR) == rootless_owner(1000, 1000) == b"\x08\xe8\x07\x10\xe8\x07"
    assert os.getxattr(dest / "home/u", ROOTLESS_XATTR) == rootless_owner(1000, 1000)
    assert os.getxattr(dest / "group-only", ROOTLESS_XATTR) == b"\x08\xff\xff\xff\xff\x0f\x10\x05"
    assert ROOTLESS_XATTR not in os.listxattr(dest / "su")  # 0:0 needs no record
    assert os.getxattr(dest / "note", "user.note") == b"hello"
    # the upper layer wrote into, whited out of and emptied 0555 directories, and the modes are back
    assert sorted(os.listdir(dest / "ro")) == ["b", "keep", "sub"]
    assert os.listdir(dest / "ro/sub") == ["new"]
    assert stat.S_IMODE(os.stat(dest / "ro").st_mode) == 0o555
    assert stat.S_IMODE(os.stat(dest / "ro/sub").st_mode) == 0o555
    assert stat.S_IMODE(os.stat(dest / "locked").st_mode) == 0
    os.chmod(dest / "locked", 0o700)
    assert (dest / "locked/inner").read_bytes() == b"replaced"


def test_rootless_ownership_records_match_umoci_rootless(tmp_path: Path) -> None:
    """umoci --rootless writes the same user.rootlesscontainers values. Known, documented differences:
    umoci turns a device into an empty regular file (imagekit skips it) and keeps setuid bits."""
    layer = tar([e for e in LOWER_ENTRIES if e.name not in ("dev/null", "dev/sda", "su", "sg", "ping", "locked", "locked/inner")])
    store = tmp_path / "store"
    ref = store_image(store, layers_image(layer, codec="gzip"))
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    assert _imagekit(AS_USER, store, "unpack", ref, str(ours)).returncode == 0
    umoci = subprocess.run(
        [*AS_USER, "umoci", "raw", "unpack", "--rootless", "--uid-map", "0:1000:1", "--gid-map", "0:1000:1", "--image", f"{store}:{ref}", str(theirs)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert umoci.returncode == 0, umoci.stderr
    assert diff(tree_manifest(ours), tree_manifest(theirs)) == []


def test_root_in_a_user_namespace_records_owners_it_cannot_set(tmp_path: Path) -> None:
    store = tmp_path / "store"
    ref = store_image(store, layers_image(LOWER, codec="zstd"))
    dest = tmp_path / "rootfs"
    result = _imagekit(AS_NAMESPACE_ROOT, store, "unpack", ref, str(dest))
    assert result.returncode == 0, result.stderr
    assert "skipped device nodes (not permitted here): 'dev/null', 'dev/sda'" in result.stderr
    assert "skipped owners (cannot chown here; kept in the user.rootlesscontainers xattr)" in result.stderr
    assert os.getxattr(dest / "home/u/f", ROOTLESS_XATTR) == rootless_owner(1000, 1000)
    assert stat.S_IMODE(os.stat(dest / "su").st_mode) == 0o4755  # root in its namespace keeps setuid


def test_rootless_failure_cleans_up_even_unwritable_directories(tmp_path: Path) -> None:
    broken = compress(tar([file("x")]), "gzip")[:-10]
    store = tmp_path / "store"
    ref = store_image(store, image([(LOWER, MEDIA_TYPES["none"]), (broken, MEDIA_TYPES["gzip"])]))
    out = tmp_path / "out"
    out.mkdir()
    result = _imagekit(AS_USER, store, "unpack", ref, str(out / "rootfs"))
    assert result.returncode == 1 and result.stderr.strip().splitlines()[-1].startswith("imagekit: layer 2/2")
    assert os.listdir(out) == []


@pytest.mark.parametrize("name", ["dotdot", "symlink-absolute-escape", "hardlink-through-symlink", "opaque-through-symlink", "gzip-bomb"])
def test_hostile_layers_rootless(name: str, sandbox: Sandbox, tmp_path: Path) -> None:
    case = HOSTILE[name]
    store = tmp_path / "store"
    ref = store_image(store, image((blob, MEDIA_TYPES[case.codec]) for blob in blobs(case, sandbox.outside)))
    args = ["unpack", ref, str(sandbox.target)]
    if case.limits is not None:
        args[1:1] = ["--max-size", str(case.limits.max_bytes)]
    result = _imagekit(AS_USER, store, *args)
    if case.error is None:
        assert result.returncode == 0, result.stderr
        if case.check is not None:
            case.check(sandbox.target, sandbox.outside)
    else:
        assert result.returncode == 1
        assert result.stderr.count("\n") == 1 and case.error in result.stderr, result.stderr
        assert not sandbox.target.exists()
    sandbox.assert_untouched()
