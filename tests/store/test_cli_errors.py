"""Every way a store command can fail gives exit status != 0 and one stderr line naming the problem,
never a traceback: bad references, a corrupt index.json, missing or corrupt blobs, a read-only store,
bad import input."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import mounts

from imagekit.layout import Layout
from imagekit.oci import Manifest
from tests.store.conftest import Run, ok, one_line_error


@pytest.fixture
def store_with_image(root: Path, imagekit: Run, busybox_tar: Path) -> Path:
    ok(imagekit("import", str(busybox_tar), "demo/busybox:latest"))
    return root


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("image", "inspect", "Bad:ref"), "must be lowercase: 'Bad'"),
        (("image", "inspect", "a:-tag"), "invalid tag '-tag'"),
        (("tag", "demo/busybox", "x//y"), "empty component"),
        (("tag", "demo/busybox", "UPPER:ok"), "'UPPER'"),
        (("tag", "demo/busybox", "x@sha256:123"), "invalid digest 'sha256:123'"),
        (("rmi", "host:port/x"), "registry host 'host:port'"),
        (("images", "bad..name"), "'bad..name'"),
        (("import", "-", "No/Good"), "must be lowercase"),
    ],
)
def test_bad_references(store_with_image: Path, imagekit: Run, args: tuple[str, ...], fragment: str) -> None:
    line = one_line_error(imagekit(*args, input=b""))
    assert fragment in line and line.startswith("imagekit: invalid reference")


@pytest.mark.parametrize("command", [("images",), ("inspect", "demo/busybox"), ("tag", "demo/busybox", "b"), ("prune",)])
@pytest.mark.parametrize("content", [b"{not json", b"[]", b'{"schemaVersion": 2, "manifests": [{"digest": "sha256:00"}]}'])
def test_corrupt_index_json(store_with_image: Path, imagekit: Run, command: tuple[str, ...], content: bytes) -> None:
    (store_with_image / "index.json").write_bytes(content)
    line = one_line_error(imagekit(*command))
    assert f"corrupt {store_with_image / 'index.json'}" in line


def _manifest(root: Path) -> Manifest:
    layout = Layout(root)
    return Manifest.from_bytes(layout.read_blob(layout.refs()[0][1].digest))


@pytest.mark.parametrize("which", ["manifest", "config"])
def test_missing_blob(store_with_image: Path, imagekit: Run, which: str) -> None:
    layout = Layout(store_with_image)
    digest = layout.refs()[0][1].digest if which == "manifest" else _manifest(store_with_image).config.digest
    layout.blob_path(digest).unlink()
    # prune must read manifests to know what they keep alive; configs it only has to keep
    commands = [("images",), ("inspect", "demo/busybox")] + ([("prune",)] if which == "manifest" else [])
    for args in commands:
        line = one_line_error(imagekit(*args))
        assert f"blob {digest} is missing" in line


def test_missing_layer_blob_still_lists(store_with_image: Path, imagekit: Run) -> None:
    """Listing and inspecting read only manifests and configs, so a lost layer does not hide the image."""
    layer = _manifest(store_with_image).layers[0].digest
    Layout(store_with_image).blob_path(layer).unlink()
    assert "demo/busybox" in ok(imagekit("images"))
    assert json.loads(ok(imagekit("inspect", "demo/busybox")))[0]["RootFS"]["Layers"]


def test_corrupt_blob(store_with_image: Path, imagekit: Run) -> None:
    digest = _manifest(store_with_image).config.digest
    Layout(store_with_image).blob_path(digest).write_bytes(b'{"tampered": true}')
    line = one_line_error(imagekit("inspect", "demo/busybox"))
    assert f"blob {digest}" in line and "corrupt" in line


def test_unknown_image_and_ambiguous_prefix(store_with_image: Path, imagekit: Run) -> None:
    assert "no image 'nothere:latest'" in one_line_error(imagekit("image", "inspect", "nothere"))
    assert "no image 'ffffffffffff'" in one_line_error(imagekit("rmi", "ffffffffffff"))


@pytest.fixture
def read_only(store_with_image: Path) -> Iterator[Path]:
    """The store, bind-mounted read-only over itself (we are root); unmounted afterwards."""
    with mounts.read_only(store_with_image):
        yield store_with_image


@pytest.mark.parametrize(
    "args",
    [("tag", "demo/busybox", "other:1"), ("rmi", "demo/busybox"), ("prune",), ("import", "TARBALL", "x:1")],
)
def test_read_only_store(read_only: Path, imagekit: Run, busybox_tar: Path, args: tuple[str, ...]) -> None:
    args = tuple(str(busybox_tar) if a == "TARBALL" else a for a in args)
    line = one_line_error(imagekit(*args))
    assert f"store at {read_only} is not writable (Read-only file system)" in line
    # reading still works
    assert "demo/busybox" in ok(imagekit("images"))
    assert json.loads(ok(imagekit("inspect", "demo/busybox")))[0]["RepoTags"] == ["demo/busybox:latest"]


def test_store_root_is_a_file(tmp_path: Path, busybox_tar: Path) -> None:
    from tests.store.conftest import run_imagekit

    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    line = one_line_error(run_imagekit(not_a_dir / "store", "import", str(busybox_tar), "x"))
    assert "store at" in line


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"", "the tarball is empty"),
        (b"hello, not a tar" * 64, "not a valid tar archive"),
        (b"\x1f\x8b\x08\x00garbage" * 8, "not a valid gzip-compressed tar archive"),
        (gzip.compress(b"plain text, compressed, still not a tar" * 64, mtime=0), "not a valid gzip-compressed tar archive"),
        (b"\x28\xb5\x2f\xfdjunkjunk", "not a valid zstd-compressed tar archive"),
    ],
    ids=["empty", "text", "bad-gzip", "gzip-text", "bad-zstd"],
)
def test_import_rejects_non_tar_input_and_writes_nothing(root: Path, imagekit: Run, content: bytes, fragment: str) -> None:
    line = one_line_error(imagekit("import", "-", "x:1", input=content))
    assert fragment in line
    assert not list((root / "tmp").iterdir())
    assert not list((root / "blobs" / "sha256").iterdir())
    assert json.loads((root / "index.json").read_text())["manifests"] == []


def test_import_truncated_gzip_tar(root: Path, imagekit: Run, busybox_tar: Path) -> None:
    data = gzip.compress(busybox_tar.read_bytes())
    line = one_line_error(imagekit("import", "-", "x:1", input=data[: len(data) // 2]))
    assert "not a valid gzip-compressed tar archive" in line
    assert not list((root / "tmp").iterdir())


def test_import_missing_file_and_bad_change(root: Path, imagekit: Run, busybox_tar: Path) -> None:
    assert "cannot read /nonexistent/x.tar: No such file or directory" in one_line_error(imagekit("import", "/nonexistent/x.tar", "x"))
    line = one_line_error(imagekit("import", "-c", "RUN rm -rf /", str(busybox_tar), "x"))
    assert "unsupported instruction 'RUN'" in line
    assert not (root / "index.json").exists() or json.loads((root / "index.json").read_text())["manifests"] == []


@pytest.fixture
def tiny_fs(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs, too small for a busybox layer; unmounted afterwards."""
    with mounts.tmpfs(tmp_path / "tiny", "256k") as mountpoint:
        yield mountpoint


def test_full_disk(tiny_fs: Path, busybox_tar: Path) -> None:
    from tests.store.conftest import run_imagekit

    root = tiny_fs / "store"
    line = one_line_error(run_imagekit(root, "import", str(busybox_tar), "big:1"))
    assert f"no space left on the device of the store at {root}" in line
    assert list((root / "tmp").iterdir()) == []
    assert json.loads((root / "index.json").read_text())["manifests"] == []
    assert ok(run_imagekit(root, "images")).splitlines()[1:] == []


def test_rmi_by_id_across_repositories_needs_force(store_with_image: Path, imagekit: Run) -> None:
    ok(imagekit("tag", "demo/busybox", "other/busybox:2"))
    image_id = ok(imagekit("images", "-q")).strip()
    line = one_line_error(imagekit("rmi", image_id))
    assert f"image '{image_id}' is named in 2 repositories" in line
    out = ok(imagekit("rmi", "-f", image_id))
    assert "Untagged: demo/busybox:latest" in out and "Untagged: other/busybox:2" in out and "Deleted: sha256:" in out
