"""Images made by buildah unpack with imagekit to the same tree as `umoci raw unpack` gives.

buildah (vfs storage in a temp directory, `run --isolation chroot`, as MACHINE-NOTES says works)
builds from busybox-static: symlinks, a user's files, setuid, a hardlink, a fifo, odd modes, set
mtimes, xattrs including a file capability; then a second image deletes and replaces some of it
(whiteouts). skopeo recompresses the result as gzip and zstd. The trees are compared with
tree_manifest: types, modes, owners, link targets, hardlink groups, xattrs and mtimes.
umoci 0.4.7 cannot read zstd layers, so the zstd image is compared with umoci's tree of the same
image uncompressed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from imagekit.layers.unpack import unpack
from imagekit.layout import Layout
from tests.layers.treecmp import diff, tree_manifest
from tests.store.conftest import BUSYBOX, ok, run_imagekit

pytestmark = pytest.mark.slow

SETUP = r"""
set -e
cd /bin && for a in sh ls cat ln mkdir chown chmod touch rm mkfifo; do /bin/busybox ln -s busybox $a; done
mkdir -p /etc /home/u/.config /data/sub /tmp /var/empty
chmod 1777 /tmp; chmod 555 /var/empty; chmod 700 /home/u/.config
echo "root:x:0:0:root:/root:/bin/sh" > /etc/passwd; echo "u:x:1000:1000::/home/u:/bin/sh" >> /etc/passwd
echo hi > /data/f; chown 1000:1000 /data/f /home/u /home/u/.config; chown 0:1000 /data/sub; chmod 4755 /data/f; ln /data/f /data/hard
echo s > /data/sub/s; chmod 2750 /data/sub; mkfifo /data/fifo; ln -s /etc/passwd /data/abs; ln -s ../etc /data/rel
touch -d "2001-02-03 04:05:06" /data/f /data/sub/s; touch -h -d "2002-01-01 00:00:00" /data/abs
"""
CHANGE = r"""
set -e
rm /data/hard /etc/passwd; rm -rf /data/sub; mkdir /data/sub; echo new > /data/sub/n; echo changed > /home/u/x
"""
CAP_NET_RAW = bytes.fromhex("0100000200200000000000000000000000000000")


class Buildah:
    """buildah on a private store, so tests neither see nor touch the machine's images."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.argv = ["buildah", "--root", str(base / "storage"), "--runroot", str(base / "run"), "--storage-driver", "vfs"]

    def __call__(self, *args: str) -> str:
        result = subprocess.run([*self.argv, *args], capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, f"buildah {args}: {result.stderr}"
        return result.stdout.strip()

    def sh(self, container: str, script: str) -> None:
        self("run", "--isolation", "chroot", container, "--", "/bin/busybox", "sh", "-c", script)


@pytest.fixture(scope="module")
def layouts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, str]]:
    """name -> (OCI layout dir, ref): base (1 layer), derived (2 layers, tar), and derived as gzip and zstd."""
    if not shutil.which("buildah") or not Path(BUSYBOX).is_file():
        pytest.fail("buildah and busybox-static are needed (make test installs them)")
    base = tmp_path_factory.mktemp("buildah")
    buildah = Buildah(base)
    xf = base / "xf"
    xf.write_bytes(b"x\n")
    os.setxattr(xf, "user.test", b"val")
    os.setxattr(xf, "security.capability", CAP_NET_RAW)
    os.utime(xf, (1_000_000_000, 1_000_000_000))
    oci = base / "oci"
    ctr = buildah("from", "scratch")
    buildah("copy", ctr, BUSYBOX, "/bin/busybox")
    buildah.sh(ctr, SETUP)
    buildah("copy", ctr, str(xf), "/data/xf")
    buildah("commit", "-q", ctr, f"oci:{oci}:base")
    ctr2 = buildah("from", f"oci:{oci}:base")
    buildah.sh(ctr2, CHANGE)
    buildah("commit", "-q", ctr2, f"oci:{oci}:derived")
    buildah("rm", "--all")
    found = {"base": (oci, "base"), "derived": (oci, "derived")}
    for codec in ("gzip", "zstd"):
        target = base / f"oci-{codec}"
        skopeo = ["skopeo", "copy", "-q", "--dest-compress", "--dest-compress-format", codec, f"oci:{oci}:derived", f"oci:{target}:derived"]
        subprocess.run(skopeo, check=True, capture_output=True, timeout=300)
        found[codec] = (target, "derived")
    return found


@pytest.fixture(scope="module")
def umoci_trees(layouts: dict[str, tuple[Path, str]], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("umoci")
    trees = {}
    for name in ("base", "derived", "gzip"):
        layout, ref = layouts[name]
        trees[name] = out / name
        subprocess.run(["umoci", "raw", "unpack", "--image", f"{layout}:{ref}", str(trees[name])], check=True, capture_output=True, timeout=300)
    return trees


@pytest.mark.parametrize(("name", "reference"), [("base", "base"), ("derived", "derived"), ("gzip", "gzip"), ("zstd", "derived")])
def test_buildah_images_unpack_as_umoci_unpacks_them(name: str, reference: str, layouts: dict[str, tuple[Path, str]], umoci_trees: dict[str, Path], tmp_path: Path) -> None:
    layout, ref = layouts[name]
    image = Layout(layout).image(ref)
    if name in ("gzip", "zstd"):
        assert all(layer.media_type.endswith("+" + name) for layer in image.layers)
    unpack(image, tmp_path / "ours")
    ours, theirs = tree_manifest(tmp_path / "ours"), tree_manifest(umoci_trees[reference])
    assert diff(ours, theirs) == []
    assert len(ours) > 20


def test_the_trees_hold_what_buildah_was_asked_for(layouts: dict[str, tuple[Path, str]], tmp_path: Path) -> None:
    """The comparison above is only as good as its content: check the interesting parts are there."""
    layout, ref = layouts["derived"]
    unpack(Layout(layout).image(ref), tmp_path / "t")
    tree = tree_manifest(tmp_path / "t")
    assert tree["data/f"]["mode"] == "0o4755" and (tree["data/f"]["uid"], tree["data/f"]["gid"]) == (1000, 1000)
    assert tree["data/xf"]["xattrs"] == {"security.capability": CAP_NET_RAW.hex(), "user.test": b"val".hex()}
    assert tree["data/abs"] == {**tree["data/abs"], "type": "symlink", "target": "/etc/passwd"}
    assert tree["data/fifo"]["type"] == "fifo"
    assert tree["var/empty"]["mode"] == "0o555" and tree["tmp"]["mode"] == "0o1777"
    assert "data/hard" not in tree and "etc/passwd" not in tree and "data/sub/s" not in tree  # whiteouts
    assert tree["data/sub/n"]["type"] == "file" and tree["bin/sh"]["target"] == "busybox"
    assert not any(".wh." in path for path in tree)
    assert tree["data/abs"]["mtime"] == 1_009_843_200 * 10**9  # touch -h -d 2002-01-01


def test_buildah_hardlinks_survive(layouts: dict[str, tuple[Path, str]], tmp_path: Path) -> None:
    layout, ref = layouts["base"]
    unpack(Layout(layout).image(ref), tmp_path / "t")
    assert os.stat(tmp_path / "t/data/hard").st_ino == os.stat(tmp_path / "t/data/f").st_ino


def test_cli_unpacks_a_buildah_image_copied_into_the_store(layouts: dict[str, tuple[Path, str]], umoci_trees: dict[str, Path], tmp_path: Path) -> None:
    layout, ref = layouts["gzip"]
    store = tmp_path / "store"
    Layout(store).write_image(Layout(layout).image(ref), "localhost/buildah/derived:gzip")
    ok(run_imagekit(store, "unpack", "localhost/buildah/derived:gzip", str(tmp_path / "cli")))
    assert diff(tree_manifest(tmp_path / "cli"), tree_manifest(umoci_trees["gzip"])) == []
