"""Real processes sharing one store: concurrent writers lose no ref, SIGKILL at any point leaves a
valid store, and garbage collection never deletes a blob a concurrent writer is about to reference."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from imagekit.layout import Layout
from tests.store.conftest import IMAGEKIT, Run, oci_image_tool_validate, ok, one_line_error


def _validate(root: Path) -> None:
    result = oci_image_tool_validate(root)
    assert result.returncode == 0, result.stdout + result.stderr


def test_two_imagekit_processes_tag_and_import_at_once(root: Path, imagekit: Run, busybox_tar: Path) -> None:
    ok(imagekit("import", str(busybox_tar), "base:1"))
    loops = [
        f"for i in $(seq 0 11); do {IMAGEKIT} --root {root} tag base:1 worker{w}/img:$i || exit 1; done"
        for w in (0, 1)
    ]
    loops.append(f"for i in 0 1 2; do {IMAGEKIT} --root {root} import {busybox_tar} imported:$i || exit 1; done")
    workers = [subprocess.Popen(["bash", "-c", loop], stderr=subprocess.PIPE, text=True) for loop in loops]
    for worker in workers:
        _, err = worker.communicate(timeout=300)
        assert worker.returncode == 0, err
    names = {name for name, _ in Layout(root).refs()}
    expected = {f"docker.io/worker{w}/img:{i}" for w in (0, 1) for i in range(12)}
    expected |= {f"docker.io/library/imported:{i}" for i in range(3)} | {"docker.io/library/base:1"}
    assert names == expected
    _validate(root)


WRITER = """
import sys
from imagekit.digest import Digest
from imagekit.layout import Layout
from imagekit.oci import Descriptor, OCI_MANIFEST
layout = Layout(sys.argv[1])
manifest = layout.read_blob(Digest.parse(sys.argv[2]))
for i in range(int(sys.argv[4])):
    layout.set_ref(f"docker.io/{sys.argv[3]}/x:{i}", Descriptor(OCI_MANIFEST, Digest.parse(sys.argv[2]), len(manifest)))
"""


def test_many_index_updates_from_two_processes_lose_nothing(root: Path, imagekit: Run, busybox_tar: Path) -> None:
    """Hundreds of read-modify-write cycles of index.json racing each other: the lock must serialise them."""
    ok(imagekit("import", str(busybox_tar), "base:1"))
    manifest = str(Layout(root).resolve("docker.io/library/base:1").digest)
    workers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(root), manifest, f"w{w}", "150"], stderr=subprocess.PIPE, text=True)
        for w in (0, 1)
    ]
    for worker in workers:
        _, err = worker.communicate(timeout=300)
        assert worker.returncode == 0, err
    names = {name for name, _ in Layout(root).refs()}
    assert len(names) == 301
    assert all(f"docker.io/w{w}/x:{i}" in names for w in (0, 1) for i in range(150))


@pytest.fixture(scope="module")
def big_tar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A rootfs tarball of ~48 MB (half incompressible), big enough that an import takes a while."""
    path = tmp_path_factory.mktemp("big") / "big.tar"
    rng = random.Random(7)
    with tarfile.open(path, "w") as archive:
        for i in range(24):
            data = rng.randbytes(1 << 20) + bytes(1 << 20)
            info = tarfile.TarInfo(f"data/file{i:02d}")
            info.size = len(data)
            archive.addfile(info, __import__("io").BytesIO(data))
    return path


@pytest.mark.slow
def test_sigkill_during_big_imports_leaves_a_valid_store(root: Path, imagekit: Run, busybox_tar: Path, big_tar: Path) -> None:
    ok(imagekit("import", str(busybox_tar), "base:1"))
    started = time.monotonic()
    ok(imagekit("import", str(big_tar), "big:whole", timeout=300))
    duration = time.monotonic() - started
    rng = random.Random(os.getpid())
    killed = 0
    for attempt in range(5):
        process = subprocess.Popen([IMAGEKIT, "--root", str(root), "import", str(big_tar), f"big:{attempt}"], stderr=subprocess.PIPE)
        time.sleep(rng.uniform(0.0, duration))
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            killed += 1
        process.wait(timeout=300)
        _validate(root)
        listing = ok(imagekit("images"))
        assert "base" in listing and "whole" in listing
        for name, _ in Layout(root).refs():
            ok(imagekit("inspect", name))
    assert killed >= 1, "no import was interrupted: the test proved nothing"
    ok(imagekit("prune"))
    assert list((root / "tmp").iterdir()) == []
    _validate(root)


HOLDING_WRITER = """
import io, json, sys, tarfile
from imagekit.digest import Digest
from imagekit.layout import Layout
from imagekit.oci import OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, Descriptor, Manifest, canonical_json
layout = Layout(sys.argv[1])
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w") as t:
    info = tarfile.TarInfo("hello"); data = sys.argv[2].encode(); info.size = len(data); t.addfile(info, io.BytesIO(data))
layer = buf.getvalue()
with layout.writing():
    layer_digest, _ = layout.write_blob(io.BytesIO(layer))
    config = canonical_json({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [str(layer_digest)]}})
    config_digest = layout.write_bytes(config)
    print(layer_digest, flush=True)
    sys.stdin.readline()
    manifest = Manifest(OCI_MANIFEST, Descriptor(OCI_CONFIG, config_digest, len(config)), (Descriptor(OCI_LAYER, layer_digest, len(layer)),)).to_bytes()
    layout.set_ref("docker.io/library/held:1", Descriptor(OCI_MANIFEST, layout.write_bytes(manifest), len(manifest)))
"""


def test_prune_waits_for_a_writer_and_keeps_what_it_then_references(root: Path, imagekit: Run, busybox_tar: Path) -> None:
    ok(imagekit("import", str(busybox_tar), "base:1"))
    writer = subprocess.Popen([sys.executable, "-c", HOLDING_WRITER, str(root), "held"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    layer_digest = writer.stdout.readline().strip()  # type: ignore[union-attr]
    assert layer_digest.startswith("sha256:")
    layer_path = root / "blobs" / "sha256" / layer_digest.removeprefix("sha256:")
    assert layer_path.is_file()
    pruner = subprocess.Popen([IMAGEKIT, "--root", str(root), "prune"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)
    assert pruner.poll() is None, "prune ran while a writer held unreferenced blobs"
    assert layer_path.is_file()
    writer.communicate("go\n", timeout=60)
    assert writer.returncode == 0
    out, err = pruner.communicate(timeout=60)
    assert pruner.returncode == 0, err
    assert layer_digest not in out
    assert layer_path.is_file()
    assert json.loads(ok(imagekit("inspect", "held:1")))[0]["RootFS"]["Layers"] == [layer_digest]
    _validate(root)


IMPORT_LOOP = """
import io, sys, tarfile
from imagekit.importer import import_tarball
from imagekit.layout import Layout
from imagekit.oci import Platform
from imagekit.reference import parse_reference
layout = Layout(sys.argv[1])
for i in range(int(sys.argv[2])):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        info = tarfile.TarInfo(f"file{i}"); data = f"content {i}".encode() * 1000; info.size = len(data); t.addfile(info, io.BytesIO(data))
    buf.seek(0)
    import_tarball(layout, buf, parse_reference(f"loop:{i}"), platform=Platform("linux", "amd64"))
"""

PRUNE_LOOP = """
import sys, time
from imagekit.layout import Layout
layout = Layout(sys.argv[1])
deadline = time.monotonic() + 120
while time.monotonic() < deadline and not __import__("os").path.exists(sys.argv[2]):
    layout.collect_garbage()
"""


@pytest.mark.slow
def test_prune_in_a_loop_against_an_import_loop(root: Path, imagekit: Run, busybox_tar: Path, tmp_path: Path) -> None:
    ok(imagekit("import", str(busybox_tar), "base:1"))
    stop = tmp_path / "stop"
    pruner = subprocess.Popen([sys.executable, "-c", PRUNE_LOOP, str(root), str(stop)], stderr=subprocess.PIPE, text=True)
    importer = subprocess.Popen([sys.executable, "-c", IMPORT_LOOP, str(root), "25"], stderr=subprocess.PIPE, text=True)
    _, err = importer.communicate(timeout=300)
    stop.touch()
    _, prune_err = pruner.communicate(timeout=300)
    assert importer.returncode == 0, err
    assert pruner.returncode == 0, prune_err
    layout = Layout(root)
    assert len(layout.refs()) == 26
    for name, descriptor in layout.refs():
        image = layout.image_at(descriptor)
        assert all(layout.has_blob(d.digest) for d in image.blobs()), name
    _validate(root)


def test_processes_creating_the_same_fresh_store_lose_nothing(root: Path, busybox_tar: Path) -> None:
    """Several processes creating one store at once (directories, lock files, index.json, oci-layout)
    all succeed and every ref survives the others' set-up."""
    for attempt in range(3):
        fresh = root / f"fresh{attempt}"
        workers = [
            subprocess.Popen([IMAGEKIT, "--root", str(fresh), "import", str(busybox_tar), f"w{w}:1"], stderr=subprocess.PIPE, text=True)
            for w in range(4)
        ]
        for worker in workers:
            _, err = worker.communicate(timeout=120)
            assert worker.returncode == 0, err
        assert sorted(name for name, _ in Layout(fresh).refs()) == [f"docker.io/library/w{w}:1" for w in range(4)]


def test_an_index_write_cut_off_midway_leaves_the_old_index_whole(root: Path, imagekit: Run, busybox_tar: Path) -> None:
    """index.json is replaced (temp file, fsync, rename), never rewritten in place.

    The tagging process runs under a file-size limit a little above the old index, so writing the new,
    longer index fails part-way (EFBIG, as a full disk fails a write): the old index must stay byte for
    byte, with no temp file left, and the next tag must work.
    """
    ok(imagekit("import", str(busybox_tar), "base:1"))
    ok(imagekit("tag", "base:1", "other:1"))
    before = (root / "index.json").read_bytes()
    name = "long/" + "n" * 100 + ":" + "t" * 100
    env = {k: v for k, v in os.environ.items() if k != "IMAGEKIT_ROOT"}
    cut = subprocess.run(
        ["prlimit", f"--fsize={len(before) + 64}", IMAGEKIT, "--root", str(root), "tag", "base:1", name],
        capture_output=True, text=True, timeout=60, env=env,
    )
    assert "File too large" in one_line_error(cut)
    assert (root / "index.json").read_bytes() == before
    assert list((root / "tmp").iterdir()) == []
    ok(imagekit("tag", "base:1", name))
    assert {n for n, _ in Layout(root).refs()} == {"docker.io/library/base:1", "docker.io/library/other:1", f"docker.io/{name}"}
    _validate(root)
