"""`imagekit import`: every compression gives the same layer, kept byte for byte; docker's --change."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import json
import lzma
import tarfile
from pathlib import Path

import pytest
import zstandard

from imagekit.config import ImageConfig
from imagekit.errors import InvalidChange
from imagekit.importer import apply_changes
from imagekit.layout import Layout
from tests.store.conftest import Run, ok, one_line_error

COMPRESSORS = {
    "plain": lambda data: data,
    "gzip": gzip.compress,
    "zstd": lambda data: zstandard.ZstdCompressor().compress(data),
    "xz": lzma.compress,
    "bzip2": bz2.compress,
}


@pytest.mark.parametrize("compression", COMPRESSORS)
def test_every_compression_gives_the_same_layer(root: Path, imagekit: Run, busybox_tar: Path, compression: str, tmp_path: Path) -> None:
    raw = busybox_tar.read_bytes()
    source = tmp_path / f"rootfs.{compression}"
    source.write_bytes(COMPRESSORS[compression](raw))
    image_id = ok(imagekit("import", str(source), "x:1")).strip()
    info = json.loads(ok(imagekit("inspect", "x:1")))[0]
    assert info["Id"] == image_id
    assert info["RootFS"]["Layers"] == ["sha256:" + hashlib.sha256(raw).hexdigest()]
    layer = info["Manifest"]["layers"][0]
    assert layer["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"
    blob = (root / "blobs" / "sha256" / layer["digest"].removeprefix("sha256:")).read_bytes()
    assert len(blob) == layer["size"] and gzip.decompress(blob) == raw
    assert info["Os"] == "linux" and info["Architecture"]
    assert info["History"][0]["comment"] == f"Imported from {source}"


def test_stdin_and_reproducible_with_source_date_epoch(root: Path, busybox_tar: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.store.conftest import run_imagekit

    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    data = busybox_tar.read_bytes()
    first = ok(run_imagekit(root, "import", "-m", "same", "-", "r:1", input=data))
    second = ok(run_imagekit(root, "import", "-m", "same", "-", "r:2", input=gzip.compress(data)))
    assert first == second
    layout = Layout(root)
    assert layout.resolve("docker.io/library/r:1").digest == layout.resolve("docker.io/library/r:2").digest
    created = json.loads(ok(run_imagekit(root, "inspect", "r:1")))[0]["Created"]
    assert created == "2023-11-14T22:13:20Z"


def test_import_without_reference_keeps_a_dangling_image_until_prune(root: Path, imagekit: Run, busybox_tar: Path) -> None:
    done = imagekit("import", str(busybox_tar))
    image_id = ok(done).strip()
    assert image_id.startswith("sha256:") and f"imagekit tag {image_id[7:19]} NAME" in done.stderr
    assert ok(imagekit("images", "-q")) == image_id[7:19] + "\n"
    assert ok(imagekit("images")).splitlines()[1].split()[:3] == ["<none>", "<none>", image_id[7:19]]
    assert ok(imagekit("images", "-q", "-f", "dangling=true")) == image_id[7:19] + "\n"
    assert json.loads(ok(imagekit("inspect", image_id[7:19])))[0]["Id"] == image_id
    assert ok(imagekit("prune", "-f")).splitlines()[0] == f"Deleted image: {image_id}"
    assert ok(imagekit("images", "-q")) == ""
    assert list((root / "blobs" / "sha256").iterdir()) == []


def test_tagging_a_dangling_image_names_it_and_retagging_leaves_the_old_one_dangling(root: Path, imagekit: Run, busybox_tar: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = ok(imagekit("import", "-q", str(busybox_tar))).strip()
    ok(imagekit("tag", first[7:19], "foo:1"))
    assert ok(imagekit("images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}")) == f"foo:1 {first[7:19]}\n"
    assert json.loads((root / "index.json").read_text())["manifests"][0]["annotations"]
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1")  # another image
    second = ok(imagekit("import", str(busybox_tar), "foo:1")).strip()
    listed = ok(imagekit("images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}")).splitlines()
    assert sorted(listed) == sorted([f"foo:1 {second[7:19]}", f"<none>:<none> {first[7:19]}"])
    assert ok(imagekit("images", "-q", "--filter", "dangling=false")) == second[7:19] + "\n"
    ok(imagekit("tag", first[7:19], "bar:1"))  # found by ID although it has no name
    assert ok(imagekit("images", "-q", "-f", "dangling=true")) == ""
    ok(imagekit("rmi", "bar:1"))
    assert ok(imagekit("images", "-q")) == second[7:19] + "\n"


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (["CMD echo hi"], {"Cmd": ["/bin/sh", "-c", "echo hi"]}),
        (['CMD ["/bin/echo", "hi"]'], {"Cmd": ["/bin/echo", "hi"]}),
        (['ENTRYPOINT ["/bin/sh"]', "cmd -c true"], {"Entrypoint": ["/bin/sh"], "Cmd": ["/bin/sh", "-c", "-c true"]}),
        (["ENV A=1 B=\"two words\"", "ENV A 3"], {"Env": ["A=3", "B=two words"]}),  # replaced in place, as docker does
        (['CMD ["serve"]', 'ENTRYPOINT ["/app"]'], {"Entrypoint": ["/app"], "Cmd": ["serve"]}),  # a CMD given before stays
        (["WORKDIR /srv", "WORKDIR app/../www"], {"WorkingDir": "/srv/www"}),
        (["EXPOSE 8000-8002/UDP"], {"ExposedPorts": {"8000/udp": {}, "8001/udp": {}, "8002/udp": {}}}),
        (["WORKDIR /srv", "USER 1000:1000", "STOPSIGNAL SIGINT"], {"WorkingDir": "/srv", "User": "1000:1000", "StopSignal": "SIGINT"}),
        (["EXPOSE 80 53/udp"], {"ExposedPorts": {"80/tcp": {}, "53/udp": {}}}),
        (['VOLUME ["/data", "/logs"]', "VOLUME /cache"], {"Volumes": {"/data": {}, "/logs": {}, "/cache": {}}}),
        (["LABEL a=b c=\"d e\""], {"Labels": {"a": "b", "c": "d e"}}),
    ],
)
def test_changes(changes: list[str], expected: dict[str, object]) -> None:
    assert apply_changes(ImageConfig(), changes).container_config() == expected


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ("RUN make", "unsupported instruction 'RUN'"),
        ("", "unsupported instruction '(empty)'"),
        ("CMD", "CMD needs an argument"),
        ("ENV A=1 B", "expected KEY=VALUE, got 'B'"),
        ("LABEL a=\"unclosed", "No closing quotation"),
        ("EXPOSE abc", "invalid port 'abc'"),
        ("EXPOSE 0", "invalid port '0'"),
        ("EXPOSE 70000", "invalid port '70000'"),
        ("EXPOSE 90-80", "invalid port '90-80'"),
        ("EXPOSE 80/icmp", "unknown protocol 'icmp'"),
    ],
)
def test_bad_changes(change: str, fragment: str) -> None:
    with pytest.raises(InvalidChange) as info:
        apply_changes(ImageConfig(), [change])
    assert fragment in str(info.value)


def test_bad_change_through_the_cli(imagekit: Run, busybox_tar: Path) -> None:
    assert "unsupported instruction 'FROM'" in one_line_error(imagekit("import", "-c", "FROM scratch", str(busybox_tar), "x"))
    assert "--change 'EXPOSE abc': invalid port 'abc'" in one_line_error(imagekit("import", "-c", "EXPOSE abc", str(busybox_tar), "x"))
    assert ok(imagekit("images", "-q")) == ""  # refused before anything was written


def test_zstd_cut_at_a_frame_boundary_inside_the_tar_is_refused(root: Path, imagekit: Run, tmp_path: Path) -> None:
    # Frame 1 holds one whole member, frame 2 the end blocks; cutting frame 2 after its header leaves a
    # decompressed stream that ends cleanly between members: only the frame walk can tell it is cut.
    member = io.BytesIO()
    with tarfile.open(fileobj=member, mode="w", format=tarfile.PAX_FORMAT) as archive:
        info = tarfile.TarInfo("etc/hostname")
        info.size = 5
        archive.addfile(info, io.BytesIO(b"demo\n"))
    data = member.getvalue()  # a 512-byte header and one data block, then the end blocks
    first = zstandard.ZstdCompressor().compress(data[:1024])
    second = zstandard.ZstdCompressor(write_content_size=True).compress(data[1024:])
    complete = tmp_path / "complete.tar.zst"
    complete.write_bytes(first + second)
    ok(imagekit("import", str(complete), "whole:1"))
    cut = tmp_path / "cut.tar.zst"
    cut.write_bytes(first + second[:7])
    assert "truncated" in one_line_error(imagekit("import", str(cut), "cut:1"))
    assert "cut" not in ok(imagekit("images"))
