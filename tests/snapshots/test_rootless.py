"""Extraction and overlay snapshots in user namespaces: whiteouts an unprivileged user may make, opaque
markers as `user.overlay.opaque`, and an overlay mounted with `userxattr` that shows the unpacked tree."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

from imagekit.store import Store
from tests.layers.unpack.tars import MEDIA_TYPES, directory, file, tar
from tests.snapshots.conftest import REPO, stored
from tests.snapshots.trees import three_layers

_IN_NAMESPACE = """
import json, subprocess, sys
from pathlib import Path
from imagekit.layers.unpack import unpack
from imagekit.layers.overlayfs import overlay_xattr_prefix
from imagekit.snapshots import Snapshots, mount_options
from imagekit.store import Store
from tests.layers.treecmp import diff, tree_manifest

store, work = Store(sys.argv[1]), Path(sys.argv[2])
snapshots = Snapshots(store)
image = store.find("test:1").image
rootfs = snapshots.prepare("userns", snapshots.lowers(image))
(work / "mnt").mkdir()
options = mount_options(list(rootfs.lowers), rootfs.upper, rootfs.work)
subprocess.run(["mount", "-t", "overlay", "overlay", "-o", options, str(work / "mnt")], check=True)
unpack(image, work / "flat")
print(json.dumps({"prefix": overlay_xattr_prefix(), "overlay": rootfs.is_overlay, "diff": diff(tree_manifest(work / "mnt"), tree_manifest(work / "flat")), "paths": len(tree_manifest(work / "flat"))}))
"""

_EXTRACT = """
import sys
from imagekit.snapshots import Snapshots
from imagekit.store import Store
store = Store(sys.argv[1])
print(Snapshots(store).extract(store.find("test:1").image, 1))
"""


def _python(prefix: list[str], code: str, *args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([*prefix, sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120, env=env, cwd=REPO)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_root_in_a_user_namespace_extracts_and_mounts_with_userxattr(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    layers, _ = three_layers(tmp_path / "trees")
    stored(store, layers)
    work = tmp_path / "work"
    work.mkdir()
    report = json.loads(_python(["unshare", "--user", "--map-root-user", "--mount"], _IN_NAMESPACE, str(store.root), str(work)))
    assert report == {"prefix": "user.overlay.", "overlay": True, "diff": [], "paths": report["paths"]} and report["paths"] >= 14


def test_an_unprivileged_user_makes_whiteouts_and_opaque_markers(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    lower = tar([directory("etc"), file("etc/x", b"x"), directory("d"), file("d/old")])
    upper = tar([directory("etc"), file("etc/.wh.x"), directory("d"), file("d/.wh..wh..opq"), file("d/new", b"n")])
    stored(store, [(lower, MEDIA_TYPES["none"]), (upper, MEDIA_TYPES["none"])])
    # uid 1000 in the namespace is our own uid outside: it owns the store, without a capability
    path = Path(_python(["unshare", "--user", "--map-user=1000", "--map-group=1000"], _EXTRACT, str(store.root)).strip())
    assert stat.S_ISCHR((path / "etc/x").lstat().st_mode) and (path / "etc/x").lstat().st_rdev == 0
    assert os.getxattr(path / "d", "user.overlay.opaque") == b"y"
    assert "trusted.overlay.opaque" not in os.listxattr(path / "d")
