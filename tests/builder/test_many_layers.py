"""A base image with 120 layers still builds: the overlay's lower dirs no longer fit in one page of
mount options (the sandbox passes them one by one through fsconfig's `lowerdir+`)."""

from __future__ import annotations

import json
from pathlib import Path

from imagekit.layers.changes import tree
from imagekit.layers.write import write_layer
from imagekit.layout import Layout
from imagekit.oci import OCI_CONFIG, OCI_MANIFEST, Descriptor, Manifest, canonical_json
from imagekit.store import Store
from tests.builder.conftest import build, ok, unpack

LAYERS = 120


def _many_layer_image(root: Path, scratch: Path) -> None:
    """busybox plus 119 one-file layers, named many:1."""
    layout = Layout(root)
    base = Store(root).find("busybox").image
    config = json.loads(base.config_bytes)
    layers = list(base.layers)
    with layout.writing():
        for index in range(1, LAYERS):
            top = scratch / f"layer{index}"
            (top / "layers").mkdir(parents=True)
            (top / "layers" / f"{index:03d}").write_text(f"{index}\n")
            with layout.blob_writer() as writer:
                written = write_layer(tree(top), writer, "gzip")
            layers.append(written.descriptor)
            config["rootfs"]["diff_ids"].append(str(written.diff_id))
            config["history"].append({"created_by": f"layer {index}"})
        config_bytes = canonical_json(config)
        manifest = Manifest(OCI_MANIFEST, Descriptor(OCI_CONFIG, layout.write_bytes(config_bytes), len(config_bytes)), tuple(layers))
        data = manifest.to_bytes()
        layout.set_ref("docker.io/library/many:1", Descriptor(OCI_MANIFEST, layout.write_bytes(data), len(data)))


def test_a_base_with_120_layers_builds(root: Path, tmp_path: Path) -> None:
    _many_layer_image(root, tmp_path / "layers")
    ok(build(root, tmp_path / "ctx", "-t", "on-many:1", text="FROM many:1\nRUN ls /layers | wc -l > /count && cat /layers/119 > /last\n"))
    out = unpack(root, "on-many:1", tmp_path / "out")
    assert (out / "count").read_text().strip() == str(LAYERS - 1)
    assert (out / "last").read_text() == "119\n"
