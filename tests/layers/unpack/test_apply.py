"""What applying layers produces: whiteouts, links, xattrs, devices, owners, times, clashes (as root)."""

from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from imagekit.digest import CHUNK, Digest
from imagekit.errors import LayerError
from imagekit.layers.apply import PATH_MAX, ROOTLESS_XATTR, Budget, Limits, apply_layer, clean
from imagekit.layers.overlayfs import overlay_xattr_prefix
from imagekit.layers.rootfs import Root
from imagekit.layers.unpack import unpack
from imagekit.oci import OCI_LAYER
from tests.layers.unpack.tars import (
    END,
    MTIME,
    E,
    device,
    directory,
    fifo,
    file,
    hardlink,
    header,
    layers_image,
    pad,
    pax_entry,
    symlink,
    tar,
    xattrs,
)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="these expectations are root's (test_rootless.py has the others)")


def unpacked(tmp_path: Path, *tars: bytes, codec: str = "none") -> Path:
    target = tmp_path / "rootfs"
    unpack(layers_image(*tars, codec=codec), target)
    return target


def listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_whiteouts_delete_lower_files_and_trees_and_are_never_written(tmp_path: Path, resolver: str) -> None:
    lower = tar([directory("a"), file("a/x", b"x"), file("a/y", b"y"), directory("b"), directory("b/deep"), file("b/deep/z"), file("c")])
    upper = tar([file("a/.wh.x"), file(".wh.b"), file(".wh.c"), file(".wh.never-existed"), file("gone/.wh.z")])
    root = unpacked(tmp_path, lower, upper)
    assert listing(root) == ["a", "a/y"]


def test_opaque_whiteout_hides_lower_contents_but_keeps_this_layers(tmp_path: Path, resolver: str) -> None:
    lower = tar([directory("d"), file("d/old"), directory("d/sub"), file("d/sub/old2"), file("keep")])
    # the opaque marker may come after entries of the same layer: those stay
    upper = tar([directory("d"), file("d/new", b"n"), directory("d/newsub"), file("d/newsub/f"), file("d/.wh..wh..opq")])
    root = unpacked(tmp_path, lower, upper)
    assert listing(root) == ["d", "d/new", "d/newsub", "d/newsub/f", "keep"]


def test_opaque_whiteouts_keep_the_implicit_parents_and_whiteout_directories_of_this_layer(tmp_path: Path) -> None:
    # nothing in `upper` names d/made or d/sub as a directory entry: they are this layer's because
    # a file inside them (d/made/f) or an opaque whiteout (d/sub/.wh..wh..opq) is; at the top level
    # too, where the opaque marker's prefix is empty
    lower = tar([directory("d"), file("d/old"), directory("d/sub"), file("d/sub/old"), file("top-old")])
    upper = tar([file("d/made/f"), file("d/sub/.wh..wh..opq"), file("d/.wh..wh..opq"), file("top-new"), file(".wh..wh..opq")])
    root = unpacked(tmp_path, lower, upper)
    assert listing(root) == ["d", "d/made", "d/made/f", "d/sub", "top-new"]


def test_opaque_whiteout_first_in_its_directory(tmp_path: Path) -> None:
    lower = tar([directory("d"), file("d/old")])
    upper = tar([directory("d"), file("d/.wh..wh..opq"), file("d/new")])
    assert listing(unpacked(tmp_path, lower, upper)) == ["d", "d/new"]


def test_aufs_bookkeeping_names_are_ignored(tmp_path: Path) -> None:
    root = unpacked(tmp_path, tar([file("a"), directory(".wh..wh.plnk"), file(".wh..wh.aufs")]))
    assert listing(root) == ["a"]


def test_hardlinks_share_an_inode_within_and_across_layers(tmp_path: Path, resolver: str) -> None:
    lower = tar([directory("bin"), file("bin/busybox", b"BB", mode=0o755)])
    upper = tar([hardlink("bin/sh", "bin/busybox"), file("x", b"X"), hardlink("y", "x"), file("z", b"old"), hardlink("z", "/x")])
    root = unpacked(tmp_path, lower, upper)
    assert os.stat(root / "bin/sh").st_ino == os.stat(root / "bin/busybox").st_ino
    assert os.stat(root / "x").st_nlink == 3
    assert (root / "z").read_bytes() == b"X"


def test_hardlink_to_a_symlink_links_the_symlink_itself(tmp_path: Path) -> None:
    root = unpacked(tmp_path, tar([symlink("l", "/etc/passwd"), hardlink("l2", "l")]))
    assert os.readlink(root / "l2") == "/etc/passwd"
    assert os.lstat(root / "l2").st_ino == os.lstat(root / "l").st_ino


def test_symlinks_are_kept_verbatim_with_owner_and_time(tmp_path: Path) -> None:
    root = unpacked(tmp_path, tar([symlink("abs", "/usr/bin/env", uid=7, gid=8, mtime=MTIME + 5), symlink("rel", "../../x"), symlink("odd", "a//b/./c/")]))
    assert os.readlink(root / "abs") == "/usr/bin/env"
    assert os.readlink(root / "rel") == "../../x"
    assert os.readlink(root / "odd") == "a//b/./c/"
    st = os.lstat(root / "abs")
    assert (st.st_uid, st.st_gid, st.st_mtime) == (7, 8, MTIME + 5)


def test_xattrs_including_file_capabilities(tmp_path: Path) -> None:
    cap = bytes.fromhex("0100000200200000000000000000000000000000")  # cap_net_raw=ep
    root = unpacked(
        tmp_path,
        tar([file("ping", b"ELF", mode=0o755, pax=xattrs(security_capability=cap, user_note=b"\x00\xffbinary")), directory("d", pax=xattrs(trusted_x=b"t"))]),
    )
    assert os.getxattr(root / "ping", "security.capability") == cap
    assert os.getxattr(root / "ping", "user.note") == b"\x00\xffbinary"
    assert os.getxattr(root / "d", "trusted.x") == b"t"


def test_capabilities_survive_the_owner_change(tmp_path: Path) -> None:
    """chown clears security.capability, so it must be set after the owner."""
    cap = bytes.fromhex("0100000200200000000000000000000000000000")
    root = unpacked(tmp_path, tar([file("ping", b"ELF", uid=1000, gid=1000, mode=0o755, pax=xattrs(security_capability=cap))]))
    assert os.getxattr(root / "ping", "security.capability") == cap
    assert os.stat(root / "ping").st_uid == 1000


def test_a_layers_own_rootless_xattr_is_not_trusted_and_the_warning_names_the_entries(tmp_path: Path) -> None:
    forged = xattrs(user_rootlesscontainers=b"\x08\x01")
    entries = [directory(".", pax=forged), E("p", tarfile.FIFOTYPE, mode=0o600, pax=forged), symlink("l", "d/f", pax=forged), directory("d", pax=forged), file("d/f", pax={**forged, **xattrs(user_after=b"kept")})]
    image = layers_image(tar(entries))
    (report,) = unpack(image, tmp_path / "rootfs")
    assert ROOTLESS_XATTR not in os.listxattr(tmp_path / "rootfs/d/f")
    assert os.getxattr(tmp_path / "rootfs/d/f", "user.after") == b"kept"  # the xattrs after it still apply
    what = f"layer 1/1 ({image.manifest.layers[0].digest.short})"
    assert report.warnings == (f"{what}: skipped user.rootlesscontainers xattrs in the layer (imagekit writes its own): '.', 'p', 'l' and 2 more",)


def test_devices_fifos_owners_and_setuid_as_root(tmp_path: Path) -> None:
    root = unpacked(
        tmp_path,
        tar(
            [
                directory("dev"),
                device("dev/null", tarfile.CHRTYPE, 1, 3),
                device("dev/loop0", tarfile.BLKTYPE, 7, 0),
                fifo("dev/initctl"),
                file("su", b"su", mode=0o4755, uid=0, gid=0),
                file("wall", b"w", mode=0o2755, uid=0, gid=5),
                directory("tmp", mode=0o1777),
                file("home", b"h", uid=1000, gid=100, mode=0o600),
            ]
        ),
    )
    null = os.lstat(root / "dev/null")
    assert stat.S_ISCHR(null.st_mode) and (os.major(null.st_rdev), os.minor(null.st_rdev)) == (1, 3)
    assert stat.S_IMODE(null.st_mode) == 0o666
    assert stat.S_ISBLK(os.lstat(root / "dev/loop0").st_mode)
    assert stat.S_ISFIFO(os.lstat(root / "dev/initctl").st_mode)
    assert stat.S_IMODE(os.stat(root / "su").st_mode) == 0o4755
    assert stat.S_IMODE(os.stat(root / "wall").st_mode) == 0o2755
    assert stat.S_IMODE(os.stat(root / "tmp").st_mode) == 0o1777
    home = os.stat(root / "home")
    assert (home.st_uid, home.st_gid, stat.S_IMODE(home.st_mode)) == (1000, 100, 0o600)
    assert not os.listxattr(root / "home")  # owners are real as root: no rootless record


def test_times_are_restored_directories_after_their_children(tmp_path: Path) -> None:
    root = unpacked(
        tmp_path,
        tar(
            [
                directory("d", mtime=MTIME - 100),
                file("d/f", b"x", mtime=MTIME - 50),
                directory("d/e", mtime=MTIME - 70),
                file("d/e/g", mtime=MTIME),
                file("frac", pax={"mtime": "1600000000.123456789", "atime": "1500000000.5"}),
                directory("dfrac", pax={"mtime": "1600000000.25", "atime": "1500000000.75"}),
            ]
        ),
    )
    dfrac = os.stat(root / "dfrac")  # a directory's atime is set last, with its mtime
    assert (dfrac.st_mtime_ns, dfrac.st_atime_ns) == (1600000000_250000000, 1500000000_750000000)
    assert os.stat(root / "d").st_mtime == MTIME - 100
    assert os.stat(root / "d/e").st_mtime == MTIME - 70
    assert os.stat(root / "d/f").st_mtime == MTIME - 50
    frac = os.stat(root / "frac")
    assert frac.st_mtime_ns == 1600000000_123456789
    assert frac.st_atime_ns == 1500000000_500000000


def test_a_directory_replaced_later_in_the_layer_does_not_stop_the_others_metadata(tmp_path: Path) -> None:
    # a/gone's deferred mode has no directory left to go to; a's (shallower, so set after it) still lands
    root = unpacked(tmp_path, tar([directory("a", mode=0o751, mtime=MTIME - 5), directory("a/gone"), file("a/gone", b"file now")]))
    st = os.stat(root / "a")
    assert (stat.S_IMODE(st.st_mode), st.st_mtime) == (0o751, MTIME - 5)
    assert (root / "a/gone").read_bytes() == b"file now"


def test_directory_modes_apply_after_children_even_when_unwritable(tmp_path: Path) -> None:
    root = unpacked(tmp_path, tar([directory("ro", mode=0o555), file("ro/f", b"x", mode=0o444), directory("locked", mode=0), file("locked/f")]))
    assert stat.S_IMODE(os.stat(root / "ro").st_mode) == 0o555
    assert stat.S_IMODE(os.stat(root / "locked").st_mode) == 0
    assert (root / "ro/f").read_bytes() == b"x"


@pytest.mark.parametrize(
    ("lower", "upper", "kind"),
    [
        ([directory("p"), file("p/child")], [file("p", b"now a file")], stat.S_IFREG),
        ([file("p", b"file")], [directory("p"), file("p/child")], stat.S_IFDIR),
        ([directory("p"), file("p/child")], [symlink("p", "/elsewhere")], stat.S_IFLNK),
        ([directory("real"), symlink("p", "real")], [directory("p"), file("p/child")], stat.S_IFDIR),
        ([symlink("p", "/x")], [file("p", b"f")], stat.S_IFREG),
        ([fifo("p")], [hardlink("p", "q")], stat.S_IFREG),
        ([file("p", b"file")], [fifo("p")], stat.S_IFIFO),
    ],
    ids=["file-over-dir", "dir-over-file", "symlink-over-dir", "dir-over-symlink", "file-over-symlink", "hardlink-over-fifo", "fifo-over-file"],
)
def test_type_clashes_replace_as_docker_does(tmp_path: Path, lower: list[E], upper: list[E], kind: int, resolver: str) -> None:
    if any(e.linkname == "q" for e in upper):
        lower = [*lower, file("q", b"target")]
    root = unpacked(tmp_path, tar(lower), tar(upper))
    assert stat.S_IFMT(os.lstat(root / "p").st_mode) == kind
    if kind == stat.S_IFDIR:
        assert (root / "p/child").exists()
        assert not (root / "real/child").exists()  # the symlink was replaced, not followed


def test_directory_onto_directory_merges_and_takes_the_new_metadata(tmp_path: Path) -> None:
    lower = tar([directory("d", mode=0o700, uid=1), file("d/old")])
    upper = tar([directory("d", mode=0o750, uid=2, mtime=MTIME + 9), file("d/new")])
    root = unpacked(tmp_path, lower, upper)
    assert listing(root) == ["d", "d/new", "d/old"]
    st = os.stat(root / "d")
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_mtime) == (0o750, 2, MTIME + 9)


def test_the_root_entry_sets_the_roots_metadata(tmp_path: Path) -> None:
    root = unpacked(tmp_path, tar([directory(".", mode=0o700, mtime=MTIME + 1), file("f")]))
    st = os.stat(root)
    assert (stat.S_IMODE(st.st_mode), st.st_mtime) == (0o700, MTIME + 1)


def test_xattrs_the_kernel_refuses_are_skipped_with_a_warning_except_user_ones_on_symlinks(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.write_bytes(b"host")
    layer = tar(
        [
            file("f", pax=xattrs(bogus_x=b"1", user_ok=b"2")),
            symlink("l", "f", pax=xattrs(user_x=b"3")),  # Linux allows no user.* xattr on a symlink: nothing to report
            symlink("m", "f", pax=xattrs(bogus_y=b"4")),
            symlink("host", str(outside), pax=xattrs(user_pwned=b"5")),  # must not follow the link to the host's file
        ]
    )
    image = layers_image(layer)
    (report,) = unpack(image, tmp_path / "rootfs")
    what = f"layer 1/1 ({image.manifest.layers[0].digest.short})"
    assert report.warnings == (f"{what}: skipped xattrs this filesystem or user may not set (bogus.*): 'f', 'm'",)
    assert os.getxattr(tmp_path / "rootfs/f", "user.ok") == b"2"
    assert not os.listxattr(outside)


def test_a_root_without_a_root_entry_is_0755(tmp_path: Path) -> None:
    assert stat.S_IMODE(os.stat(unpacked(tmp_path, tar([file("f")]))).st_mode) == 0o755


def test_implicit_parents_are_created_0755(tmp_path: Path, resolver: str) -> None:
    old = os.umask(0o077)
    try:
        root = unpacked(tmp_path, tar([file("a/b/c", b"x")]))
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(root / "a/b").st_mode) == 0o755
    assert (root / "a/b/c").read_bytes() == b"x"


def test_writes_through_an_in_root_symlink_land_at_its_target(tmp_path: Path, resolver: str) -> None:
    """Debian's merged /usr: lib -> usr/lib, and a layer writing lib/x writes usr/lib/x."""
    root = unpacked(tmp_path, tar([directory("usr"), directory("usr/lib"), symlink("lib", "usr/lib")]), tar([file("lib/x", b"x")]))
    assert (root / "usr/lib/x").read_bytes() == b"x"
    assert (root / "lib").is_symlink()


def test_global_pax_headers_are_skipped_as_docker_skips_them(tmp_path: Path) -> None:
    data = pax_entry({b"comment": b"git archive", b"path": b"ignored"}, kind=b"g") + header(b"f", size=2) + pad(b"hi") + END
    root = unpacked(tmp_path, data)
    assert listing(root) == ["f"]
    assert (root / "f").read_bytes() == b"hi"


def test_gnu_long_names_and_base256_numbers(tmp_path: Path) -> None:
    long = "d/" + "n" * 150
    gnu = tar([file(long, b"x", uid=1 << 22), symlink("l", "t" * 200)], fmt=tarfile.GNU_FORMAT)
    root = unpacked(tmp_path, gnu)
    assert (root / long).read_bytes() == b"x"
    assert os.stat(root / long).st_uid == 1 << 22
    assert os.readlink(root / "l") == "t" * 200


def test_non_utf8_names_are_kept_as_bytes(tmp_path: Path) -> None:
    name = b"caf\xe9".decode("utf-8", "surrogateescape")
    root = unpacked(tmp_path, tar([file(name, b"latin-1 name")]))
    assert os.listdir(os.fsencode(root)) == [b"caf\xe9"]


def test_clean_makes_archive_paths_relative_and_refuses_the_parent_and_path_max() -> None:
    # apply relies on clean() alone for a relative path: the resolver's containment is the second wall
    assert clean(b"/etc/passwd", "t") == b"etc/passwd"
    assert clean(b"//Xorg/./x/", "t") == b"Xorg/x"
    assert clean(b"/", "t") == clean(b"", "t") == clean(b"./", "t") == b""
    for name in (b"..", b"/..", b"a/../..", b"../x"):
        with pytest.raises(LayerError, match="leaves the root through"):
            clean(name, "t")
    assert clean(b"d/" * 2047 + b"f", "t") == b"d/" * 2047 + b"f"  # PATH_MAX - 1 bytes: the kernel's longest
    with pytest.raises(LayerError, match=f"a path of {PATH_MAX} bytes or more"):
        clean(b"d/" * 2047 + b"ff", "t")


def test_apply_layer_reports_entries_bytes_and_warnings_and_caps_by_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    layer = tar([directory("d"), file("d/f", b"x" * 5000, pax=xattrs(user_rootlesscontainers=b"\x08\x01"))])
    (tmp_path / "r").mkdir()
    with Root(tmp_path / "r") as root:
        report = apply_layer(io.BytesIO(layer), OCI_LAYER, root)
    # bytes: d's header, d/f's PAX header and records, its header and 10 data blocks, the two end blocks
    # (not the zeros tarfile pads its output with up to 10 KiB)
    assert (report.entries, report.bytes) == (2, 512 + 1024 + 512 + 10 * 512 + 1024)
    assert report.warnings == ("layer: skipped user.rootlesscontainers xattrs in the layer (imagekit writes its own): 'd/f'",)
    monkeypatch.setenv("IMAGEKIT_MAX_LAYER_BYTES", "4K")  # without a budget, the cap is the environment's
    (tmp_path / "s").mkdir()
    with Root(tmp_path / "s") as root, pytest.raises(LayerError, match=r"^layer: entry 'd/f': the image would unpack to more than 4 KiB"):
        apply_layer(io.BytesIO(layer), OCI_LAYER, root)


def test_the_caps_admit_exactly_their_limit() -> None:
    budget = Budget(Limits(max_bytes=100, max_inodes=2))
    budget.admit(b"a", 100, "t")
    budget.admit(b"b", 100, "t")  # a second entry ending at byte 100 of the same layer: still 100 bytes
    with pytest.raises(LayerError, match="^t: entry 'c': the image has more than 2 entries"):
        budget.admit(b"c", 0, "t")
    budget = Budget(Limits(max_bytes=100, max_inodes=2))
    with pytest.raises(LayerError, match="^t: entry 'a': the image would unpack to more than 100 B"):
        budget.admit(b"a", 101, "t")


def test_data_after_the_tar_end_counts_against_the_size_cap_to_the_byte(tmp_path: Path) -> None:
    """What follows the end-of-archive blocks (padding; a hostile layer may send gigabytes) is read for the diff_id
    and counted with the layer's bytes, chunk by chunk as it comes after the chunk the tar ended in: exactly the cap
    passes, one byte more is refused."""
    layer = tar([file("f", b"x" * 100)])
    padded = layer + bytes(CHUNK)  # the first chunk holds the tar; len(layer) bytes come after it
    diff_id = Digest.of_bytes(padded)
    with Root(tmp_path) as root:
        offset = apply_layer(io.BytesIO(padded), OCI_LAYER, root, diff_id=diff_id).bytes
        apply_layer(io.BytesIO(padded), OCI_LAYER, root, budget=Budget(Limits(max_bytes=offset + len(layer))), diff_id=diff_id)
        with pytest.raises(LayerError, match="^layer: more than .* of data after the end of the tar archive"):
            apply_layer(io.BytesIO(padded), OCI_LAYER, root, budget=Budget(Limits(max_bytes=offset + len(layer) - 1)), diff_id=diff_id)


def _overlay(tmp_path: Path, name: str, *entries: E) -> Path:
    """`entries` as one layer applied alone in overlay mode (as imagekit.snapshots extracts a layer) into
    tmp_path/name."""
    (tmp_path / name).mkdir()
    with Root(tmp_path / name) as root:
        apply_layer(io.BytesIO(tar(entries)), OCI_LAYER, root, whiteouts="overlay")
    return tmp_path / name


def test_overlay_mode_whiteouts_replace_this_layers_entries_and_nested_ones_become_opaque_directories(tmp_path: Path) -> None:
    """A whiteout of something the same layer made replaces it (the removal goes through its directory's
    descriptor); a path whited out in a subdirectory and then written below is a directory again, opaque, at
    any depth, 0755 whatever the umask (as implicit parents are)."""
    old = os.umask(0o077)
    try:
        root = _overlay(tmp_path, "a", directory("d"), file("d/x"), file("d/.wh.x"), file("d/.wh.y"), file("d/y/sub/f", b"f"))
    finally:
        os.umask(old)
    whiteout = os.lstat(root / "d/x")
    assert stat.S_ISCHR(whiteout.st_mode) and whiteout.st_rdev == 0
    assert os.getxattr(root / "d/y", overlay_xattr_prefix() + "opaque") == b"y" and stat.S_IMODE(os.stat(root / "d/y").st_mode) == 0o755
    assert (root / "d/y/sub/f").read_bytes() == b"f"
    assert overlay_xattr_prefix() + "opaque" not in os.listxattr(root / "d/y/sub")


def test_overlay_mode_opaque_markers_and_directories_made_again_at_the_top(tmp_path: Path) -> None:
    """`.wh..wh..opq` makes its directory opaque (made here if only a lower layer has it); a top-level path
    whited out and then made again as a directory, or written below, is an opaque directory."""
    root = _overlay(tmp_path, "a", file(".wh.e"), directory("e"), file("e/f"), file(".wh.t"), file("t/g"), file("p/.wh..wh..opq"))
    opaque = overlay_xattr_prefix() + "opaque"
    for name in ("e", "t", "p"):
        assert stat.S_ISDIR(os.lstat(root / name).st_mode) and os.getxattr(root / name, opaque) == b"y", name
    assert sorted(os.listdir(root)) == ["e", "p", "t"] and os.listdir(root / "p") == []
    assert (root / "e/f").exists() and (root / "t/g").exists()


def test_overlay_mode_hardlinks_reach_this_layers_files_but_not_what_it_whited_out(tmp_path: Path) -> None:
    root = _overlay(tmp_path, "a", file("a", b"a"), hardlink("b", "a"))
    assert os.lstat(root / "b").st_ino == os.lstat(root / "a").st_ino
    with pytest.raises(LayerError, match=r"^layer: entry 'd': hardlink target 'c' does not exist \(it must come earlier in this layer"):
        _overlay(tmp_path, "b", file("c"), file(".wh.c"), hardlink("d", "c"))


def test_overlay_mode_drops_the_layers_own_overlay_xattrs_and_keeps_the_others(tmp_path: Path) -> None:
    layer = tar([file("f", pax={f"SCHILY.xattr.{k}": v for k, v in (("trusted.overlay.opaque", "y"), ("user.overlay.redirect", "/x"), ("user.after", "kept"))})])
    (tmp_path / "lower").mkdir()
    with Root(tmp_path / "lower") as root:
        report = apply_layer(io.BytesIO(layer), OCI_LAYER, root, whiteouts="overlay")
    assert os.listxattr(tmp_path / "lower/f") == ["user.after"]
    assert report.warnings == ("layer: skipped overlayfs xattrs in the layer (they would steer the overlay mount): 'f', 'f'",)
