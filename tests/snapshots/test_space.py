"""Space: usage() counts as du does; gc keeps what images and live snapshots need and removes the rest;
`imagekit prune` and `rmi` remove the extracted layers of removed images."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from imagekit.errors import SnapshotError
from imagekit.snapshots import Snapshots
from imagekit.store import Store
from tests.layers.unpack.tars import MEDIA_TYPES, compress, directory, file, tar
from tests.snapshots.conftest import REPO, stored
from tests.store.conftest import ok, run_imagekit


def _du(*paths: Path) -> int:
    """`du -s -c --block-size=1`: allocated bytes, each inode once across all of them."""
    out = subprocess.run(["du", "-s", "-c", "--block-size=1", *map(str, paths)], capture_output=True, text=True, check=True).stdout
    return int(out.splitlines()[-1].split()[0])


def _bytes(human: str) -> float:
    """Bytes from docker's human size (`412kB`, `1.2MB`: powers of 1000)."""
    number = human.rstrip("kMGTPB")
    return float(number) * 1000 ** "BkMGTP".index(human[len(number)])


def _image(store: Store, name: str, *contents: bytes) -> list[str]:
    """Stores image NAME:1 with one layer per content (the same content, the same layer); returns its diff_ids."""
    layers = [tar([directory("d"), file(f"d/f{i}", data), file(f"d/g{i}", data[::-1])]) for i, data in enumerate(contents)]
    return list(stored(store, [(compress(t, "gzip"), MEDIA_TYPES["gzip"]) for t in layers], f"docker.io/library/{name}:1").diff_ids)


def test_usage_counts_what_du_counts(store: Store, snapshots: Snapshots) -> None:
    assert snapshots.usage().layers == snapshots.usage().snapshots == 0
    _image(store, "big", os.urandom(300_000), os.urandom(50_000))
    lowers = snapshots.lowers(store.find("big:1").image)
    (lowers[0] / "d" / "hard").hardlink_to(lowers[0] / "d" / "f1")  # counted once, as du counts it
    rootfs = snapshots.prepare("s1", lowers)
    Path(rootfs.upper, "written").write_bytes(os.urandom(70_000))
    snapshots.prepare("s2", ())
    usage = snapshots.usage()
    assert (usage.layers, usage.snapshots) == (2, 2)
    assert usage.layer_bytes == _du(*lowers) > 350_000
    assert usage.snapshot_bytes == _du(store.root / "snapshots" / "s1", store.root / "snapshots" / "s2") > 70_000


def test_gc_keeps_what_is_listed_or_stood_on_and_removes_the_rest(store: Store, snapshots: Snapshots) -> None:
    kept = _image(store, "kept", b"k" * 10_000)
    used = _image(store, "used", b"u" * 10_000)
    gone = _image(store, "gone", b"g" * 20_000)
    for name in ("kept", "used", "gone"):
        snapshots.lowers(store.find(f"{name}:1").image)
    persistent = snapshots.prepare("container", snapshots.lowers(store.find("used:1").image), persistent=True)
    before = snapshots.usage()
    freed = snapshots.gc(keep=set(kept))
    after = snapshots.usage()
    assert freed == before.layer_bytes - after.layer_bytes > 20_000
    assert sorted(p.name for p in (store.root / "layers" / "sha256").iterdir()) == sorted(d.split(":")[1] for d in kept + used)
    assert Path(persistent.upper).is_dir() and not snapshots.layer_dir(gone[0]).exists()
    snapshots.remove("container")
    snapshots.gc(keep=set(kept))
    assert not snapshots.layer_dir(used[0]).exists() and snapshots.layer_dir(kept[0]).is_dir()


_PREPARE_AND_EXIT = """
import sys
from pathlib import Path
from imagekit.snapshots import Snapshots
from imagekit.store import Store
store = Store(sys.argv[1])
snapshots = Snapshots(store)
snapshots.prepare("ephemeral", snapshots.lowers(store.find("base:1").image))
if sys.argv[2] == "wait":
    print("ready", flush=True)
    sys.stdin.read()
"""


def test_gc_removes_ephemeral_snapshots_once_their_process_is_gone(store: Store, snapshots: Snapshots) -> None:
    base = _image(store, "base", b"b" * 10_000)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    alive = subprocess.Popen([sys.executable, "-c", _PREPARE_AND_EXIT, str(store.root), "wait"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert alive.stdout is not None and alive.stdout.readline() == "ready\n"
        snapshots.gc(keep=set())  # its owner lives: the snapshot and the layer it stands on stay
        assert (store.root / "snapshots" / "ephemeral" / "upper").is_dir() and snapshots.layer_dir(base[0]).is_dir()
    finally:
        alive.communicate("", timeout=60)
    assert alive.returncode == 0
    assert snapshots.gc(keep=set()) > 0
    assert os.listdir(store.root / "snapshots") == [] and os.listdir(store.root / "layers" / "sha256") == []


def test_gc_removes_a_snapshot_whose_prepare_was_killed_before_its_metadata(store: Store, snapshots: Snapshots) -> None:
    half = store.root / "snapshots" / "half-made"
    (half / "upper" / "x").mkdir(parents=True)
    assert snapshots.gc(keep=set()) > 0 and not half.exists()


def test_gc_inside_hold_is_refused_rather_than_waiting_for_itself(snapshots: Snapshots) -> None:
    with snapshots.hold(), pytest.raises(SnapshotError, match=r"gc\(\) inside hold\(\)"):
        snapshots.gc(keep=set())
    assert snapshots.gc(keep=set()) == 0


def test_our_own_ephemeral_snapshot_survives_gc(store: Store, snapshots: Snapshots) -> None:
    base = _image(store, "base", b"b" * 10_000)
    rootfs = snapshots.prepare("mine", snapshots.lowers(store.find("base:1").image))
    snapshots.gc(keep=set())
    assert Path(rootfs.upper).is_dir() and snapshots.layer_dir(base[0]).is_dir()


def test_prune_and_rmi_remove_the_extracted_layers_of_removed_images(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    shared = os.urandom(100_000)
    one = _image(store, "one", shared, b"1" * 300_000)
    two = _image(store, "two", shared)
    snapshots = Snapshots(store)
    for name in ("one", "two"):
        snapshots.lowers(store.find(f"{name}:1").image)
    ok(run_imagekit(store.root, "rmi", "--no-prune", "one:1"))
    assert snapshots.layer_dir(one[1]).is_dir()
    removed = snapshots.usage().layer_bytes
    out = ok(run_imagekit(store.root, "prune")).splitlines()
    removed -= snapshots.usage().layer_bytes
    assert removed > 300_000 and out[-1].startswith("Total reclaimed space: ")
    assert _bytes(out[-1].removeprefix("Total reclaimed space: ")) >= removed * 0.99  # the layers are counted
    assert not snapshots.layer_dir(one[1]).exists() and snapshots.layer_dir(one[0]).is_dir()  # two still lists it
    assert one[0] == two[0]
    ok(run_imagekit(store.root, "rmi", "two:1"))
    assert os.listdir(store.root / "layers" / "sha256") == []
