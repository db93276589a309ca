"""Extraction: one layer alone, overlay-style, verified against its diff_id, once per diff_id, atomically."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from imagekit.errors import DigestMismatch, ImagekitError, LayerError
from imagekit.layers.unpack import unpack
from imagekit.snapshots import Snapshots
from imagekit.store import Store
from tests.layers.treecmp import diff, tree_manifest
from tests.layers.unpack.conftest import Sandbox
from tests.layers.unpack.hostile import CASES, Case, blobs
from tests.layers.unpack import test_fuzz as fuzz
from tests.layers.unpack.tars import MEDIA_TYPES, compress, directory, file, hardlink, image, layers_image, tar
from tests.snapshots.conftest import REPO, as_json, merged_manifest, stored
from tests.snapshots.trees import three_layers

OPAQUE_XATTR = "trusted.overlay.opaque"


def _layer_dirs(store: Store) -> list[str]:
    base = store.root / "layers" / "sha256"
    return sorted(os.listdir(base)) if base.is_dir() else []


def _scratch(store: Store) -> list[str]:
    base = store.root / "layers" / "tmp"
    return sorted(os.listdir(base)) if base.is_dir() else []


def test_whiteouts_become_overlayfs_markers(store: Store, snapshots: Snapshots) -> None:
    lower = tar([directory("etc"), file("etc/x", b"x"), directory("d"), file("d/old", b"o")])
    upper = tar([directory("etc"), file("etc/.wh.x"), directory("d"), file("d/.wh..wh..opq"), file("d/new", b"n"), file("top/.wh.gone")])
    img = stored(store, [(compress(lower, "gzip"), MEDIA_TYPES["gzip"]), (compress(upper, "zstd"), MEDIA_TYPES["zstd"])])
    path = snapshots.extract(img, 1)
    assert path == snapshots.layer_dir(img.diff_ids[1]) == store.root / "layers" / "sha256" / img.diff_ids[1].split(":")[1]
    whiteout = (path / "etc/x").lstat()
    assert stat.S_ISCHR(whiteout.st_mode) and whiteout.st_rdev == 0
    assert stat.S_ISCHR((path / "top/gone").lstat().st_mode)  # its directory comes from below: made here
    assert os.getxattr(path / "d", OPAQUE_XATTR) == b"y"
    assert (path / "d/new").read_bytes() == b"n"
    assert OPAQUE_XATTR not in os.listxattr(path / "etc")
    assert not [name for _, dirs, files in os.walk(path) for name in dirs + files if name.startswith(".wh.")]
    assert _layer_dirs(store) == [img.diff_ids[1].split(":")[1]]  # only the layer asked for
    assert _scratch(store) == []


def test_a_directory_replacing_what_its_layer_whited_out_is_opaque(store: Store, snapshots: Snapshots, tmp_path: Path) -> None:
    lower = tar([directory("a"), file("a/old", b"o"), directory("b"), file("b/old", b"o")])
    upper = tar([file(".wh.a"), directory("a"), file("a/new", b"n"), file(".wh.b"), file("b/implicit", b"i")])
    img = stored(store, [(lower, MEDIA_TYPES["none"]), (upper, MEDIA_TYPES["none"])])
    path = snapshots.extract(img, 1)
    assert os.getxattr(path / "a", OPAQUE_XATTR) == b"y" and os.getxattr(path / "b", OPAQUE_XATTR) == b"y"
    unpack(img, tmp_path / "flat")
    merged = merged_manifest(snapshots.prepare("check", snapshots.lowers(img)), _dir(tmp_path / "mnt"), dir_mtimes=False)
    assert diff(merged, as_json(tree_manifest(tmp_path / "flat", dir_mtimes=False))) == []  # b: made implicitly, now
    assert sorted(merged) == ["a", "a/new", "b", "b/implicit"]


@pytest.mark.parametrize("count", [1, 2, 3])
def test_overlay_of_the_extracted_layers_is_the_unpacked_tree(store: Store, snapshots: Snapshots, tmp_path: Path, count: int) -> None:
    """The key correctness test: deletions, opaque dirs, type changes, hardlinks, symlinks, xattrs, devices,
    for the first `count` generations of trees.py."""
    layers, generation_three = three_layers(tmp_path / "trees")
    img = stored(store, layers[:count])
    unpack(img, tmp_path / "flat")
    reference = tree_manifest(tmp_path / "flat")
    if count == 3:
        same_as_written = {"whole_seconds": True, "dir_mtimes": False}
        assert diff(tree_manifest(tmp_path / "flat", **same_as_written), tree_manifest(generation_three, **same_as_written)) == []
    lowers = snapshots.lowers(img)
    assert lowers == tuple(snapshots.layer_dir(d) for d in reversed(img.diff_ids))
    merged = merged_manifest(snapshots.prepare("check", lowers), _dir(tmp_path / "mnt"))
    assert diff(merged, as_json(reference)) == []
    if count == 2:  # what the comparison covers
        assert reference["data/a2"]["link"] == "data/a" and reference["data/a2"]["xattrs"] == {"user.a": b"2".hex()}
        assert reference["data/new2"]["link"] == "data/new" and reference["data/null"]["rdev"] == (1, 3)
        assert sorted(k for k in reference if k.startswith("d/")) == ["d/n"] and reference["swap"]["type"] == "file"
        assert reference["bin/sh"]["target"] == "/bin/tool" and "etc/x" not in reference and reference["suid"]["mode"] == "0o4755"
    if count == 3:
        assert "data" not in reference and "d" not in reference and reference["etc/x"]["type"] == "file" and reference["ro/g"]["type"] == "file"


def test_each_layer_is_extracted_once(store: Store, snapshots: Snapshots, tmp_path: Path) -> None:
    layers, _ = three_layers(tmp_path / "trees")
    img = stored(store, layers)
    first = snapshots.lowers(img)
    marker = first[0] / "marker"
    marker.write_bytes(b"")  # a second extraction would replace the directory
    assert Snapshots(store).lowers(img) == first and marker.exists()
    again = stored(store, [layers[0]], "docker.io/library/base:1")  # another image sharing the bottom layer
    assert Snapshots(store).extract(again, 0) == first[-1]
    assert len(_layer_dirs(store)) == 3


@pytest.mark.parametrize("codec", ["none", "gzip", "zstd"])
def test_a_wrong_diff_id_is_refused_and_nothing_kept(store: Store, snapshots: Snapshots, codec: str) -> None:
    data = tar([file("a", b"a" * 10_000)])
    other = tar([file("b", b"b")])
    img = image([(compress(data, codec), MEDIA_TYPES[codec])], [image([(other, MEDIA_TYPES["none"])]).diff_ids[0]])
    with pytest.raises(DigestMismatch, match=r"^layer 1/1 \(\w+\): uncompressed content \(diff_id\): expected sha256:\w+, got sha256:"):
        snapshots.extract(img, 0)
    assert _layer_dirs(store) == [] and _scratch(store) == []


def test_a_config_without_diff_ids_and_a_missing_index(store: Store, snapshots: Snapshots) -> None:
    data = tar([file("a", b"a")])
    with pytest.raises(LayerError, match="lists 0 diff_ids for 1 layers"):
        snapshots.extract(image([(data, MEDIA_TYPES["none"])], []), 0)
    with pytest.raises(ImagekitError, match="has no layer 1"):
        snapshots.extract(image([(data, MEDIA_TYPES["none"])]), 1)


def test_a_hardlink_into_a_lower_layer_is_refused_with_its_reason(store: Store, snapshots: Snapshots, tmp_path: Path) -> None:
    """unpack links to the lower file; a layer extracted alone cannot (containerd refuses it too)."""
    img = stored(store, [(tar([file("a", b"a")]), MEDIA_TYPES["none"]), (tar([hardlink("b", "a")]), MEDIA_TYPES["none"])])
    unpack(img, tmp_path / "flat")
    with pytest.raises(LayerError, match=r"hardlink target 'a' does not exist \(it must come earlier in this layer \(extracted alone, it cannot link into the layers below\)\)$"):
        snapshots.extract(img, 1)


# --- several processes -----------------------------------------------------------------------------------
_EXTRACT = """
import sys
from imagekit.snapshots import Snapshots
from imagekit.store import Store
store = Store(sys.argv[1])
print(Snapshots(store).extract(store.find(sys.argv[2]).image, 0))
"""


def _big_layer(files: int = 400, size: int = 64 << 10) -> bytes:
    return tar([directory("big")] + [file(f"big/f{i}", bytes([i % 251]) * size) for i in range(files)])


def test_two_processes_extracting_one_layer_both_succeed(store: Store) -> None:
    img = stored(store, [(compress(_big_layer(), "gzip"), MEDIA_TYPES["gzip"])])
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, "-c", _EXTRACT, str(store.root), "test:1"], stdout=subprocess.PIPE, text=True, env=env) for _ in range(2)]
    outputs = [proc.communicate(timeout=120)[0].strip() for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0]
    expected = str(Snapshots(store).layer_dir(img.diff_ids[0]))
    assert outputs == [expected, expected]
    assert len(os.listdir(Path(expected) / "big")) == 400
    assert _scratch(store) == [] and len(_layer_dirs(store)) == 1


_SLOW_EXTRACT = """
import sys
from imagekit.image import Image
from imagekit.snapshots import Snapshots
from imagekit.store import Store

class FromFifo:
    def open_blob(self, descriptor):
        return open(sys.argv[2], "rb")

store = Store(sys.argv[1])
stored = store.find("test:1").image
Snapshots(store).extract(Image(stored.manifest_bytes, stored.config_bytes, FromFifo(), stored.media_type), 0)
"""


def test_a_killed_extraction_leaves_only_scratch_which_gc_removes(store: Store, tmp_path: Path) -> None:
    data = _big_layer()
    img = stored(store, [(data, MEDIA_TYPES["none"])])
    fifo = tmp_path / "blob"
    os.mkfifo(fifo)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_EXTRACT, str(store.root), str(fifo)], env=env)
    try:
        with open(fifo, "wb") as feed:
            feed.write(data[: len(data) // 2])  # half the layer; the extraction then waits for more
            feed.flush()
            deadline = time.monotonic() + 60
            while not list((store.root / "layers" / "tmp").glob("*/fs/big/f100")) and time.monotonic() < deadline:
                time.sleep(0.05)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    except BrokenPipeError:
        pass
    assert proc.returncode == -signal.SIGKILL
    assert len(_scratch(store)) == 1 and _layer_dirs(store) == []
    freed = Snapshots(store).gc(keep=set(img.diff_ids))
    assert freed > 100 * (64 << 10)
    assert _scratch(store) == [] and _layer_dirs(store) == []
    assert Snapshots(store).extract(img, 0).is_dir()  # and the layer extracts cleanly afterwards


# --- hostile layers ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_hostile_layers_extracted_overlay_style_stay_inside(case: Case, sandbox: Sandbox, resolver: str) -> None:
    """Every case of the corpus, each layer extracted alone: refused with its one-line error (and nothing
    kept) or extracted wholly inside the store, never a `.wh.` name left, nothing outside touched."""
    store = Store(sandbox.target)
    img = image((blob, MEDIA_TYPES[case.codec]) for blob in blobs(case, sandbox.outside))
    snapshots = Snapshots(store)
    try:
        for index in range(len(img.layers)):
            path = snapshots.extract(img, index, limits=case.limits)
            assert not [n for _, dirs, files in os.walk(path) for n in dirs + files if n.startswith(".wh.")]
        assert case.error is None, f"extracted, but unpack refuses it with {case.error!r}"
    except ImagekitError as err:
        message = str(err)
        assert case.error is not None, message
        assert "\n" not in message and case.error in message and message.startswith("layer "), message
        assert _scratch(store) == []
        assert len(_layer_dirs(store)) == index  # the layers before it, not the refused one
    sandbox.assert_untouched()


def _dir(path: Path) -> Path:
    path.mkdir()
    return path


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fuzz.layers)
def test_random_layers_extracted_overlay_style_stay_inside(spec: list[list[tuple[str, str, object]]]) -> None:
    """test_fuzz's random layers, each extracted alone: inside the store, or one LayerError line and nothing kept."""
    with tempfile.TemporaryDirectory() as base:
        sandbox = Sandbox(Path(base))
        outside = str(sandbox.outside)
        img = layers_image(*(tar([fuzz._entry(kind, name, extra, outside) for kind, name, extra in layer]) for layer in spec))
        store = Store(sandbox.target)
        for index in range(len(img.layers)):
            try:
                Snapshots(store).extract(img, index)
            except LayerError as err:
                assert "\n" not in str(err) and str(err).startswith("layer ")
                assert not Snapshots(store).layer_dir(img.diff_ids[index]).exists() and _scratch(store) == []
        sandbox.assert_untouched()
