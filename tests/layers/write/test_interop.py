"""Peers read imagekit's layers: GNU tar lists and extracts them to the source tree, and `umoci unpack` of
an image holding one gives back the same tree (modes, owners, links, xattrs, devices, mtimes)."""

from __future__ import annotations

import io
import os
import subprocess
from pathlib import Path

import pytest

from imagekit.layers.changes import tree
from imagekit.layers.write import WrittenLayer, write_layer
from imagekit.layout import Layout
from imagekit.oci import OCI_CONFIG, OCI_MANIFEST, Descriptor, Manifest, canonical_json
from tests.layers.treecmp import tree_manifest
from tests.layers.write.conftest import members_of, set_mtimes

GNU_TAR_CODEC = {"gzip": "--gzip", "zstd": "--zstd", "none": "--no-auto-compress"}


def gnu_tar(*args: str) -> bytes:
    return subprocess.run(["tar", *args], check=True, capture_output=True).stdout


@pytest.mark.parametrize("codec", ["gzip", "zstd", "none"])
def test_gnu_tar_lists_and_extracts_the_source_tree(rich_tree: Path, tmp_path: Path, codec: str) -> None:
    blob_path = tmp_path / "layer"
    with open(blob_path, "wb") as blob:
        layer = write_layer(tree(rich_tree), blob, codec)
    listed = gnu_tar("-t", "--quoting-style=literal", GNU_TAR_CODEC[codec], "-f", str(blob_path)).splitlines()
    ours = [m.name.encode("utf-8", "surrogateescape") + (b"/" if m.isdir() else b"") for m in members_of(blob_path.read_bytes(), layer)]
    assert listed == ours
    out = tmp_path / "out"
    out.mkdir()
    gnu_tar("-x", GNU_TAR_CODEC[codec], "--xattrs", "--xattrs-include=*", "--numeric-owner", "-p", "-f", str(blob_path), "-C", str(out))
    assert tree_manifest(out, whole_seconds=True) == tree_manifest(rich_tree, whole_seconds=True)


def test_gnu_tar_reads_pre_1970_and_far_future_mtimes(tmp_path: Path) -> None:
    root = tmp_path / "t"
    root.mkdir()
    (root / "old").write_text("old")
    (root / "future").write_text("future")
    os.utime(root / "old", ns=(0, -300_000_000 * 10**9))
    os.utime(root / "future", ns=(0, 9_000_000_000 * 10**9))  # past the 11 octal digits of ustar
    sink = io.BytesIO()
    write_layer(tree(root), sink, "none")
    (tmp_path / "layer.tar").write_bytes(sink.getvalue())
    out = tmp_path / "out"
    out.mkdir()
    gnu_tar("-x", "-f", str(tmp_path / "layer.tar"), "-C", str(out))
    assert os.lstat(out / "old").st_mtime == -300_000_000
    assert os.lstat(out / "future").st_mtime == 9_000_000_000


def store_image(layout: Layout, layer: WrittenLayer, ref: str) -> None:
    """A one-layer linux/amd64 image around an already stored layer (what the builder will do)."""
    config = canonical_json(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": [str(layer.diff_id)]},
        }
    )
    with layout.writing():
        config_descriptor = Descriptor(OCI_CONFIG, layout.write_bytes(config), len(config))
        manifest = Manifest(OCI_MANIFEST, config_descriptor, (layer.descriptor,)).to_bytes()
        layout.set_ref(ref, Descriptor(OCI_MANIFEST, layout.write_bytes(manifest), len(manifest)))


@pytest.mark.slow
def test_umoci_unpacks_a_layer_to_the_source_tree(rich_tree: Path, tmp_path: Path) -> None:
    layout = Layout(tmp_path / "store")
    with layout.writing(), layout.blob_writer() as writer:
        layer = write_layer(tree(rich_tree), writer, "gzip")  # type: ignore[arg-type]
    store_image(layout, layer, "rich:1")
    bundle = tmp_path / "bundle"
    result = subprocess.run(
        ["umoci", "unpack", "--image", f"{layout.root}:rich:1", str(bundle)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert tree_manifest(bundle / "rootfs", whole_seconds=True) == tree_manifest(rich_tree, whole_seconds=True)


@pytest.mark.slow
def test_umoci_applies_overlay_whiteouts_over_a_base_layer(tmp_path: Path) -> None:
    from imagekit.layers.changes import snapshot_diff
    from tests.layers.write.test_changes import make_lower, operate

    before = make_lower(tmp_path / "before")
    after = tmp_path / "after"
    subprocess.run(["cp", "-a", str(before), str(after)], check=True)
    operate(after)
    set_mtimes(after, 1_700_000_000)
    layout = Layout(tmp_path / "store")
    layers = []
    with layout.writing():
        for changes in (tree(before), snapshot_diff(before, after)):
            with layout.blob_writer() as writer:
                layers.append(write_layer(changes, writer, "gzip"))  # type: ignore[arg-type]
    config = canonical_json(
        {"architecture": "amd64", "os": "linux", "config": {}, "rootfs": {"type": "layers", "diff_ids": [str(x.diff_id) for x in layers]}}
    )
    with layout.writing():
        config_descriptor = Descriptor(OCI_CONFIG, layout.write_bytes(config), len(config))
        manifest = Manifest(OCI_MANIFEST, config_descriptor, tuple(x.descriptor for x in layers)).to_bytes()
        layout.set_ref("two:1", Descriptor(OCI_MANIFEST, layout.write_bytes(manifest), len(manifest)))
    bundle = tmp_path / "bundle"
    result = subprocess.run(["umoci", "unpack", "--image", f"{layout.root}:two:1", str(bundle)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert tree_manifest(bundle / "rootfs", mtimes=False) == tree_manifest(after, mtimes=False)
