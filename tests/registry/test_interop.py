"""Interoperability with real peers through a real registry: skopeo, oci-image-tool, umoci, buildah, oras-py."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import oras.client
import pytest

from imagekit.digest import Digest
from imagekit.layout import Layout
from imagekit.oci import OCI_EMPTY, OCI_MANIFEST, Descriptor, Manifest
from imagekit.reference import parse_reference
from tests.registry.cli import run_cli
from tests.registry.images import build_image, layer_tar, random_layer
from tests.registry.registry_server import RegistryServer

BUSYBOX = Path("/bin/busybox")
pytestmark = pytest.mark.slow


def run(*argv: str | Path, cwd: Path | None = None) -> str:
    done = subprocess.run([str(a) for a in argv], capture_output=True, text=True, cwd=cwd, timeout=300)
    assert done.returncode == 0, f"{argv[0]} failed: {done.stderr[-2000:]}"
    return done.stdout


def new_name(host: str) -> str:
    return f"{host}/test/{uuid.uuid4().hex[:12]}"


def blob_digests(root: Path, ref: str) -> list[Digest]:
    return [d.digest for d in Layout(root).image(ref).blobs()]


def test_imagekit_push_is_copied_by_skopeo_validated_and_runs(tmp_path: Path, open_registry: RegistryServer, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "store"
    image = build_image(Layout(root), "bb", [layer_tar({"bin/busybox": BUSYBOX.read_bytes()})])
    dest = new_name(open_registry.host) + ":v1"
    code, out, err = run_cli(capsys, "--root", str(root), "push", "-q", "bb", dest)
    assert code == 0, err
    oci = tmp_path / "oci"
    run("skopeo", "copy", "--src-tls-verify=false", f"docker://{dest}", f"oci:{oci}:v1")
    run("oci-image-tool", "validate", "--type", "image", oci)
    index = json.loads((oci / "index.json").read_text())
    assert index["manifests"][0]["digest"] == out.strip() == str(image.digest)
    run("umoci", "unpack", "--image", f"{oci}:v1", tmp_path / "bundle")
    assert run("chroot", tmp_path / "bundle" / "rootfs", "/bin/busybox", "echo", "hello from imagekit") == "hello from imagekit\n"


@pytest.mark.parametrize("fmt", ["oci", "v2s2"])
def test_skopeo_push_is_pulled_by_imagekit(tmp_path: Path, open_registry: RegistryServer, capsys: pytest.CaptureFixture[str], fmt: str) -> None:
    src = tmp_path / "layout"
    build_image(Layout(src), "app", [random_layer(200_000), random_layer(10)])
    dest = new_name(open_registry.host) + ":v1"
    run("skopeo", "copy", "--dest-tls-verify=false", "--format", fmt, f"oci:{src}:{parse_reference('app')}", f"docker://{dest}")
    root = tmp_path / "store"
    code, _, err = run_cli(capsys, "--root", str(root), "pull", dest)
    assert code == 0, err
    pulled = Layout(root).image(dest)
    expected_type = OCI_MANIFEST if fmt == "oci" else "application/vnd.docker.distribution.manifest.v2+json"
    assert pulled.manifest.media_type == expected_type
    assert [d.digest for d in pulled.layers] == [d.digest for d in Layout(src).image(str(parse_reference("app"))).layers]


@pytest.fixture
def buildah(tmp_path: Path) -> Iterator[list[str]]:
    """buildah with its own storage under tmp_path (vfs), unmounted and removed afterwards."""
    base = ["buildah", "--root", str(tmp_path / "bstore"), "--runroot", str(tmp_path / "brun"), "--storage-driver", "vfs"]
    yield base
    subprocess.run([*base, "rm", "--all"], capture_output=True, timeout=60)
    subprocess.run(["umount", "-R", str(tmp_path / "bstore")], capture_output=True, timeout=60)
    shutil.rmtree(tmp_path / "bstore", ignore_errors=True)


def test_buildah_push_is_pulled_by_imagekit(tmp_path: Path, open_registry: RegistryServer, capsys: pytest.CaptureFixture[str], buildah: list[str]) -> None:
    container = run(*buildah, "from", "scratch").strip()
    run(*buildah, "copy", container, BUSYBOX, "/bin/busybox")
    run(*buildah, "config", "--cmd", '["/bin/busybox", "sh"]', container)
    run(*buildah, "commit", "--quiet", container, "imagekit-test-bb")
    dest = new_name(open_registry.host) + ":v1"
    run(*buildah, "push", "--tls-verify=false", "--digestfile", tmp_path / "pushed.digest", "imagekit-test-bb", f"docker://{dest}")
    peer = json.loads(run("skopeo", "inspect", "--tls-verify=false", f"docker://{dest}"))
    assert peer["Digest"] == (tmp_path / "pushed.digest").read_text().strip()  # the peers agree with each other
    root = tmp_path / "store"
    code, out, err = run_cli(capsys, "--root", str(root), "pull", "-q", "--digestfile", str(tmp_path / "digest"), dest)
    assert code == 0, err
    image = Layout(root).image(dest)
    assert str(image.digest) == (tmp_path / "digest").read_text() == peer["Digest"] and out.strip() == dest
    assert [str(d.digest) for d in image.layers] == peer["Layers"]
    assert len(image.layers) == 1 and image.config["config"]["Cmd"] == ["/bin/busybox", "sh"]
    for digest in blob_digests(root, dest):
        assert Layout(root).has_blob(digest)


def test_oras_artifact_is_pulled_by_imagekit(tmp_path: Path, open_registry: RegistryServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "art").mkdir()
    (tmp_path / "art" / "notes.txt").write_bytes(b"an artifact, not an image\n")
    dest = new_name(open_registry.host) + ":v1"
    monkeypatch.chdir(tmp_path / "art")
    client = oras.client.OrasClient(hostname=open_registry.host, insecure=True)
    client.push(files=["notes.txt"], target=dest)
    root = tmp_path / "store"
    code, _, err = run_cli(capsys, "--root", str(root), "pull", dest)
    assert code == 0, err
    image = Layout(root).image(dest)
    (layer,) = image.layers
    assert layer.annotations["org.opencontainers.image.title"] == "notes.txt"
    with Layout(root).open_blob(layer.digest) as blob:
        assert blob.read() == b"an artifact, not an image\n"


def test_imagekit_artifact_is_pulled_by_oras(tmp_path: Path, open_registry: RegistryServer, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "store"
    layout = Layout(root)
    content = b"pushed by imagekit\n"
    config = layout.write_bytes(b"{}")
    blob = layout.write_bytes(content)
    manifest = Manifest(
        OCI_MANIFEST,
        Descriptor(OCI_EMPTY, config, 2),
        (Descriptor("text/plain", blob, len(content), annotations={"org.opencontainers.image.title": "hello.txt"}),),
        artifact_type="application/vnd.imagekit.test",
    ).to_bytes()
    ref = str(parse_reference("artifact:1"))
    layout.set_ref(ref, Descriptor(OCI_MANIFEST, layout.write_bytes(manifest), len(manifest)))
    dest = new_name(open_registry.host) + ":v1"
    code, _, err = run_cli(capsys, "--root", str(root), "push", ref, dest)
    assert code == 0, err
    client = oras.client.OrasClient(hostname=open_registry.host, insecure=True)
    files = client.pull(target=dest, outdir=str(tmp_path / "out"))
    assert [Path(f).name for f in files] == ["hello.txt"]
    assert (tmp_path / "out" / "hello.txt").read_bytes() == content
