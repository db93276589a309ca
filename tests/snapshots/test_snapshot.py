"""Active snapshots: prepare a Rootfs over extracted layers, let a process change it, commit the changes,
adopt the upper as the next layer; overlayfs and the copy fallback give the same layer for the same change."""

from __future__ import annotations

import io
import os
import subprocess
from pathlib import Path

import pytest

from imagekit.errors import SnapshotError
from imagekit.layers.unpack import unpack
from imagekit.layers.write import write_layer
from imagekit.layers.write import WrittenLayer
from imagekit.sandbox.spec import Rootfs
from imagekit.snapshots import Snapshots
from imagekit.snapshots.overlay import overlay_works
from imagekit.store import Store
from tests.layers.treecmp import diff, tree_manifest
from tests.snapshots.conftest import merged_manifest, mount_and_run, stored
from tests.snapshots.trees import three_layers

#: A build step: deletions, an emptied and refilled directory, a mode change, new files and a new hardlink
#: pair, new directories, and two mount stubs (an empty file, an empty directory) the sandbox would have made.
STEP = (
    "rm etc/conf && echo added > etc/added && rm -rf d && mkdir d && echo n > d/n2 && chmod 0700 bin/tool"
    " && echo pair > pair && ln pair pair2 && mkdir -p deep/er && echo z > deep/er/z && rm -rf swap"
    " && touch etc/resolv.conf && mkdir proc && mkdir -p mnt/data && echo kept > mnt/data/f"
)
STUBS = ("/etc/resolv.conf", "/proc", "/mnt/data", "/not/there")
EPOCH = 1_500_000_000


def _run_step(rootfs: Rootfs, tmp_path: Path) -> None:
    if rootfs.is_overlay:
        mnt = tmp_path / "mnt-step"
        mnt.mkdir()
        mount_and_run(rootfs, mnt, "sh", "-c", STEP)
    else:
        subprocess.run(["sh", "-c", STEP], cwd=rootfs.upper, check=True)


def _write(changes: object, epoch: int = 1 << 40) -> tuple[WrittenLayer, bytes]:
    """The layer of `changes`, mtimes after `epoch` clamped (by default none: the adopted dir keeps them)."""
    out = io.BytesIO()
    written = write_layer(changes, out, "gzip", source_date_epoch=epoch)  # type: ignore[arg-type]
    return written, out.getvalue()


@pytest.fixture
def base(store: Store, tmp_path: Path) -> list[tuple[bytes, str]]:
    layers, _ = three_layers(tmp_path / "trees")
    return layers[:2]


@pytest.mark.parametrize("use_overlay", [True, False], ids=["overlay", "copy"])
def test_prepare_commit_adopt_round_trip(store: Store, base: list[tuple[bytes, str]], tmp_path: Path, use_overlay: bool) -> None:
    snapshots = Snapshots(store, use_overlay=use_overlay)
    img = stored(store, base)
    lowers = snapshots.lowers(img)
    rootfs = snapshots.prepare("step1", lowers)
    if use_overlay:
        assert rootfs == Rootfs(lowers=tuple(map(str, lowers)), upper=str(store.root / "snapshots/step1/upper"), work=str(store.root / "snapshots/step1/work"))
    else:
        assert rootfs == Rootfs(upper=str(store.root / "snapshots/step1/upper"))
        assert diff(tree_manifest(rootfs.upper), tree_manifest(unpack_to(img, tmp_path / "base"))) == []  # a copy of the merged lowers
    _run_step(rootfs, tmp_path)
    changes = list(snapshots.commit("step1", remove_paths=STUBS))
    names = [member.name.decode() for member in changes]
    assert "etc/resolv.conf" not in names and "proc" not in names  # empty stubs go
    assert "mnt/data/f" in names  # a stub that was filled stays
    assert {"etc/.wh.conf", "d/.wh..wh..opq", "d/n2", "pair", "pair2", "deep/er/z", ".wh.swap"} <= set(names)
    written, blob = _write(changes)
    adopted = snapshots.adopt("step1", written.diff_id)
    assert adopted == snapshots.layer_dir(written.diff_id) and adopted.is_dir()
    assert not (store.root / "snapshots" / "step1").exists()
    # the next step stands on the adopted dir: its overlay shows what unpacking the new image gives
    built = stored(store, [*base, (blob, written.media_type)], "docker.io/library/built:1")
    assert snapshots.lowers(built) == (adopted, *lowers)
    reference = tree_manifest(unpack_to(built, tmp_path / "flat"), whole_seconds=True)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    merged = merged_manifest(Snapshots(store).prepare("step2", (adopted, *lowers)), mnt, whole_seconds=True)
    assert diff(merged, _jsonish(reference)) == []


def test_overlay_and_copy_write_the_same_layer_for_the_same_change(store: Store, base: list[tuple[bytes, str]], tmp_path: Path) -> None:
    img = stored(store, base)
    digests = []
    for use_overlay in (True, False):
        snapshots = Snapshots(store, use_overlay=use_overlay)
        key = f"same-{use_overlay}"
        _run_step(snapshots.prepare(key, snapshots.lowers(img)), _fresh(tmp_path / key))
        written, _ = _write(snapshots.commit(key, remove_paths=STUBS), EPOCH)  # the two runs' new mtimes differ
        digests.append((written.digest, written.diff_id))
        snapshots.remove(key)
    assert digests[0] == digests[1]


@pytest.mark.parametrize("use_overlay", [True, False], ids=["overlay", "copy"])
def test_a_step_that_only_made_mount_stubs_adds_nothing(store: Store, base: list[tuple[bytes, str]], tmp_path: Path, use_overlay: bool) -> None:
    """The stubs go, and so do their traces: /etc's copy-up and new mtime, /run made on the way to /run/secrets/x."""
    snapshots = Snapshots(store, use_overlay=use_overlay)
    rootfs = snapshots.prepare("stubs", snapshots.lowers(stored(store, base)))
    stubs = "touch etc/resolv.conf etc/hosts && mkdir -p run/secrets && touch run/secrets/x && mkdir -p data/mnt"
    if rootfs.is_overlay:
        mount_and_run(rootfs, _fresh(tmp_path / "mnt"), "sh", "-c", stubs)
        assert os.listdir(rootfs.upper) != []
    else:
        subprocess.run(["sh", "-c", stubs], cwd=rootfs.upper, check=True)
    changes = list(snapshots.commit("stubs", remove_paths=("/etc/resolv.conf", "/etc/hosts", "/run/secrets/x", "/data/mnt")))
    assert changes == []
    if rootfs.is_overlay:
        assert os.listdir(rootfs.upper) == []


def test_a_stub_in_a_directory_the_step_also_changed_keeps_the_directory(store: Store, base: list[tuple[bytes, str]], tmp_path: Path) -> None:
    snapshots = Snapshots(store)
    rootfs = snapshots.prepare("busy", snapshots.lowers(stored(store, base)))
    mount_and_run(rootfs, _fresh(tmp_path / "mnt"), "sh", "-c", "touch etc/resolv.conf && echo 1 > etc/new && mkdir ro/stub && chmod 0700 ro")
    names = [m.name for m in snapshots.commit("busy", remove_paths=("/etc/resolv.conf", "/ro/stub"))]
    assert names == [b"etc", b"etc/new", b"ro"]  # ro: its mode changed


def test_a_snapshot_without_lowers_is_a_plain_directory(store: Store, snapshots: Snapshots) -> None:
    rootfs = snapshots.prepare("scratch", ())
    assert not rootfs.is_overlay and os.listdir(rootfs.upper) == []
    Path(rootfs.upper, "hello").write_bytes(b"hi")
    assert [m.name for m in snapshots.commit("scratch")] == [b"hello"]


def test_keys_and_lowers_are_checked(store: Store, snapshots: Snapshots, tmp_path: Path) -> None:
    snapshots.prepare("taken", ())
    with pytest.raises(SnapshotError, match="snapshot 'taken' already exists"):
        snapshots.prepare("taken", ())
    for bad in ("../escape", "", "a/b", ".hidden", "x" * 200):
        with pytest.raises(SnapshotError, match="invalid snapshot key"):
            snapshots.prepare(bad, ())
    with pytest.raises(SnapshotError, match=r"lower layer .*/gone is gone \(was it pruned\?\)"):
        snapshots.prepare("orphan", (tmp_path / "gone",))
    assert not (store.root / "snapshots" / "orphan").exists()
    with pytest.raises(SnapshotError, match="no snapshot 'missing'"):
        list(snapshots.commit("missing"))
    snapshots.remove("taken")
    snapshots.remove("taken")  # idempotent
    assert os.listdir(store.root / "snapshots") == []


def test_remove_copes_with_modes_that_lock_the_owner_out(store: Store, snapshots: Snapshots) -> None:
    rootfs = snapshots.prepare("locked", ())
    inner = Path(rootfs.upper, "a", "b")
    inner.mkdir(parents=True)
    (inner / "f").write_bytes(b"x")
    os.chmod(inner, 0)
    os.chmod(inner.parent, 0o500)
    snapshots.remove("locked")
    assert not (store.root / "snapshots" / "locked").exists()


def test_overlay_works_here_and_leaves_nothing(tmp_path: Path) -> None:
    assert overlay_works(tmp_path)  # root with overlayfs (MACHINE-NOTES): the probe must say so
    assert os.listdir(tmp_path) == []


def unpack_to(image: object, path: Path) -> Path:
    unpack(image, path)  # type: ignore[arg-type]
    return path


def _fresh(path: Path) -> Path:
    path.mkdir()
    return path


def _jsonish(manifest: dict[str, dict[str, object]]) -> dict[str, dict[str, object]]:
    return {k: {f: list(v) if isinstance(v, tuple) else v for f, v in item.items()} for k, item in manifest.items()}
