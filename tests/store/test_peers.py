"""Other OCI tools accept a store imagekit wrote: skopeo, umoci, oci-image-tool, and the image-spec's
JSON schemas, with several refs (tags, a registry host with port, nested repositories)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from imagekit.layout import Layout
from imagekit.oci import REF_NAME, Manifest
from tests import oci_schema
from tests.store.conftest import Run, oci_image_tool_validate, ok, run_imagekit

REFS = ("docker.io/demo/busybox:latest", "docker.io/library/bb:1", "localhost:5000/team/app/bb:v1.2")


@pytest.fixture
def written_store(root: Path, imagekit: Run, busybox_tar: Path) -> Path:
    ok(imagekit("import", "-c", "CMD [\"/bin/sh\", \"-c\", \"echo hello\"]", "-c", "ENV GREETING=hi", str(busybox_tar), "demo/busybox"))
    ok(imagekit("tag", "demo/busybox", "bb:1"))
    ok(imagekit("import", str(busybox_tar), "localhost:5000/team/app/bb:v1.2", "-c", "WORKDIR /etc"))
    return root


def test_refs_are_full_normalised_references(written_store: Path) -> None:
    index = json.loads((written_store / "index.json").read_text())
    assert sorted(m["annotations"][REF_NAME] for m in index["manifests"]) == sorted(REFS)


@pytest.mark.parametrize("ref", REFS)
def test_skopeo_inspects_each_ref(written_store: Path, ref: str) -> None:
    result = subprocess.run(["skopeo", "inspect", f"oci:{written_store}:{ref}"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    manifest = Layout(written_store).resolve(ref)
    assert info["Digest"] == str(manifest.digest)
    assert info["Os"] == "linux" and len(info["Layers"]) == 1


def test_umoci_unpacks_a_runnable_bundle(written_store: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    result = subprocess.run(["umoci", "unpack", "--image", f"{written_store}:{REFS[0]}", str(bundle)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert (bundle / "rootfs" / "bin" / "busybox").is_file()
    assert (bundle / "rootfs" / "bin" / "sh").is_symlink()
    process = json.loads((bundle / "config.json").read_text())["process"]
    assert process["args"] == ["/bin/sh", "-c", "echo hello"]
    assert "GREETING=hi" in process["env"]


def test_oci_image_tool_validates_every_ref(written_store: Path) -> None:
    result = oci_image_tool_validate(written_store)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Validation succeeded" in result.stdout + result.stderr


def test_everything_written_matches_the_oci_schemas(written_store: Path) -> None:
    layout = Layout(written_store)
    assert oci_schema.errors(oci_schema.LAYOUT, json.loads((written_store / "oci-layout").read_text())) == []
    assert oci_schema.errors(oci_schema.INDEX, json.loads((written_store / "index.json").read_text())) == []
    for _, descriptor in layout.refs():
        manifest_bytes = layout.read_blob(descriptor.digest)
        assert oci_schema.errors(oci_schema.MANIFEST, json.loads(manifest_bytes)) == []
        config = json.loads(layout.read_blob(Manifest.from_bytes(manifest_bytes).config.digest))
        assert oci_schema.errors(oci_schema.CONFIG, config) == []


def test_umoci_writes_a_store_imagekit_reads(written_store: Path, tmp_path: Path, imagekit: Run) -> None:
    """Interop both ways: a tag umoci adds to the layout shows up in `imagekit images`."""
    subprocess.run(["umoci", "tag", "--image", f"{written_store}:{REFS[0]}", "docker.io/demo/umoci:tagged"], check=True, timeout=60)
    listing = ok(imagekit("images"))
    assert "demo/umoci" in listing and "tagged" in listing
    layout = Layout(written_store)
    assert layout.resolve("docker.io/demo/umoci:tagged").digest == layout.resolve(REFS[0]).digest
    assert json.loads(ok(imagekit("inspect", "demo/umoci:tagged")))[0]["Id"] == str(layout.image(REFS[0]).manifest.config.digest)


def test_names_other_tools_write_are_found_normalised(tmp_path: Path, busybox_tar: Path) -> None:
    """skopeo writes `busybox:1` or a bare `1` as the ref name; imagekit finds, lists and removes them
    by any spelling of the same reference, and says which name it used when two images match."""
    source, store = tmp_path / "source", tmp_path / "store"
    image_id = ok(run_imagekit(source, "import", "-q", str(busybox_tar), "demo/busybox:latest")).strip()
    for name in ("busybox:1", "1"):
        subprocess.run(["skopeo", "copy", "-q", f"oci:{source}:docker.io/demo/busybox:latest", f"oci:{store}:{name}"],
                       check=True, capture_output=True, timeout=120)
    listed = ok(run_imagekit(store, "images", "--format", "{{.Repository}} {{.Tag}}")).splitlines()
    assert sorted(listed) == ["1 latest", "busybox 1"]
    for text in ("busybox:1", "docker.io/library/busybox:1", "1", "1:latest"):
        assert json.loads(ok(run_imagekit(store, "inspect", text)))[0]["Id"] == image_id
    assert json.loads(ok(run_imagekit(store, "inspect", "busybox:1")))[0]["RepoTags"] == ["busybox:1", "1:latest"]
    ok(run_imagekit(store, "unpack", "busybox:1", str(tmp_path / "rootfs")))
    assert (tmp_path / "rootfs" / "bin" / "busybox").is_file()
    # a second image under imagekit's full spelling of the same name: that one wins, and a warning says so
    other = ok(run_imagekit(store, "import", "-q", "-m", "other", str(busybox_tar), "busybox:1")).strip()
    done = run_imagekit(store, "inspect", "-f", "{{.Id}}", "busybox:1")
    assert ok(done) == other + "\n"
    assert "using 'docker.io/library/busybox:1' (not 'busybox:1')" in done.stderr
    assert ok(run_imagekit(store, "rmi", "--no-prune", "1")) == "Untagged: 1:latest\n"
    assert ok(run_imagekit(store, "rmi", "docker.io/library/busybox:1")).startswith("Untagged: busybox:1\n")
    assert ok(run_imagekit(store, "inspect", "-f", "{{.Id}}", "busybox:1")) == image_id + "\n"
    assert ok(run_imagekit(store, "rmi", "busybox:1")).startswith("Untagged: busybox:1\n")
    assert ok(run_imagekit(store, "images", "-q")) == ""
