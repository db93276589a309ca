"""Registry transfers against a local docker-registry: imagekit side by side with skopeo and curl.

- push and pull of a ~400 MB image in 4 incompressible layers (imagekit CLI vs `skopeo copy` between an
  OCI layout and docker://), interleaved; every push goes to a fresh registry so nothing can be skipped
  or mounted, every pull into a fresh store;
- one large blob: `imagekit pull` of a one-layer image vs `curl -s URL | tee FILE | openssl dgst -sha256`;
- peak memory of the imagekit CLI (getrusage of a child that runs only it).
imagekit fsyncs every blob it stores (the store must survive a crash); skopeo and curl do not. Every
timed run starts after an untimed `sync` and, as root, a drop of the page cache (`_settle`): without it the
sync keeps neither side's writes on the other's clock, but on these VMs a page cache that has grown by a few
GB makes new page-cache writes several times costlier in the kernel (perf: copy_folio_from_iter_atomic), so
whichever runs later in the bench pays more. Both sides then start cold, registry reads included.
Targets (issue 5): push/pull ratio >= 1.25, blob >= 0.8, peak memory < 150 MB.
"""

from __future__ import annotations

import gzip
import itertools
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench._report import ratio, shell, time_interleaved
from imagekit.digest import CHUNK, Digest, Hasher
from imagekit.layout import Layout
from imagekit.oci import OCI_CONFIG, OCI_LAYER_GZIP, OCI_MANIFEST, Descriptor, Manifest, canonical_json
from imagekit.reference import parse_reference
from tests.registry.registry_server import RegistryServer, start_registry

LAYER_MB = (100, 100, 100, 100)
BLOB_MB = 400
IMAGEKIT = [str(Path(sys.executable).with_name("imagekit"))]


class _HashingFile:
    """A write-only file that hashes what passes (the compressed layer, i.e. its digest)."""

    def __init__(self, out: object) -> None:
        self.out = out
        self.hasher = Hasher()

    def write(self, data: bytes) -> int:
        self.hasher.update(data)
        return self.out.write(data)  # type: ignore[attr-defined,no-any-return]

    def flush(self) -> None:
        self.out.flush()  # type: ignore[attr-defined]


def _write_random_layer(layout: Layout, megabytes: int, scratch: Path) -> tuple[Descriptor, Digest]:
    """Streams a gzip (level 0) layer of random bytes into the store; returns (descriptor, diff_id)."""
    path = scratch / "layer.gz"
    diff = Hasher()
    with open(path, "wb") as raw:
        hashing = _HashingFile(raw)
        with gzip.GzipFile(fileobj=hashing, mode="wb", compresslevel=0, mtime=0) as gz:  # type: ignore[arg-type]
            for _ in range(megabytes):
                chunk = os.urandom(CHUNK)
                diff.update(chunk)
                gz.write(chunk)
    with open(path, "rb") as blob:
        digest, size = layout.write_blob(blob, hashing.hasher.digest())
    path.unlink()
    return Descriptor(OCI_LAYER_GZIP, digest, size), diff.digest()


def _make_image(layout: Layout, ref: str, layer_mb: tuple[int, ...], scratch: Path) -> None:
    layers, diff_ids = zip(*(_write_random_layer(layout, mb, scratch) for mb in layer_mb))
    config = canonical_json({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [str(d) for d in diff_ids]}})
    manifest = Manifest(OCI_MANIFEST, Descriptor(OCI_CONFIG, layout.write_bytes(config), len(config)), tuple(layers)).to_bytes()
    layout.set_ref(ref, Descriptor(OCI_MANIFEST, layout.write_bytes(manifest), len(manifest)))


def _peak_mb(argv: list[str]) -> float:
    """Peak RSS of `argv`, measured in a fresh parent so no earlier child (skopeo) counts."""
    code = (
        "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL);"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    out = subprocess.run([sys.executable, "-c", code, *argv], check=True, capture_output=True, text=True).stdout
    return int(out) / 1024


def _settle() -> None:
    """Untimed, before every run: flush dirty pages, then (as root) drop the page cache; see the docstring."""
    os.sync()
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3")
    except OSError:
        pass


def _run(argv: list[str]) -> None:
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="imagekit-bench-registry-", dir=os.environ.get("TMPDIR", "/var/tmp")) as tmp:
        work = Path(tmp)
        store = Layout(work / "store")
        image_ref = str(parse_reference("bench/image:1"))
        blob_ref = str(parse_reference("bench/blob:1"))
        _make_image(store, image_ref, LAYER_MB, work)
        _make_image(store, blob_ref, (BLOB_MB,), work)
        rounds = 5
        registries: list[RegistryServer] = [start_registry(work / f"reg{i}") for i in range(2 * rounds + 2)]
        try:
            _bench(work, store, image_ref, blob_ref, registries, rounds)
        finally:
            for registry in registries:
                registry.stop()


def _bench(work: Path, store: Layout, image_ref: str, blob_ref: str, registries: list[RegistryServer], rounds: int) -> None:
    fresh = itertools.count()
    push_targets = iter(registries[1:])
    source = registries[0]
    total_mb = sum(LAYER_MB)

    def ik_push() -> None:
        _run([*IMAGEKIT, "--root", str(store.root), "push", "-q", image_ref, f"{next(push_targets).host}/bench/ik:1"])

    def sk_push() -> None:
        _run(["skopeo", "copy", "-q", "--dest-tls-verify=false", f"oci:{store.root}:{image_ref}", f"docker://{next(push_targets).host}/bench/sk:1"])

    _run([*IMAGEKIT, "--root", str(store.root), "push", "-q", image_ref, f"{source.host}/bench/image:1"])
    _run([*IMAGEKIT, "--root", str(store.root), "push", "-q", blob_ref, f"{source.host}/bench/blob:1"])
    (store.root / "blob-origins.json").unlink(missing_ok=True)

    times = time_interleaved({"imagekit": ik_push, "skopeo": sk_push}, rounds=rounds, before=_settle)
    ratio(f"push {total_mb} MB, {len(LAYER_MB)} layers", times["imagekit"], times["skopeo"], "skopeo copy", ">= 1.25")

    def ik_pull() -> None:
        _run([*IMAGEKIT, "--root", str(work / f"pull{next(fresh)}"), "pull", "-q", f"{source.host}/bench/image:1"])

    def sk_pull() -> None:
        _run(["skopeo", "copy", "-q", "--src-tls-verify=false", f"docker://{source.host}/bench/image:1", f"oci:{work / f'pull{next(fresh)}'}:x"])

    times = time_interleaved({"imagekit": ik_pull, "skopeo": sk_pull}, rounds=rounds, before=_settle)
    ratio(f"pull {total_mb} MB, {len(LAYER_MB)} layers", times["imagekit"], times["skopeo"], "skopeo copy", ">= 1.25")
    _clean(work)

    blob = Layout(store.root).image(blob_ref).layers[0]
    url = f"{source.url}/v2/bench/blob/blobs/{blob.digest}"

    def ik_blob() -> None:
        _run([*IMAGEKIT, "--root", str(work / f"pull{next(fresh)}"), "pull", "-q", f"{source.host}/bench/blob:1"])

    def curl_blob() -> None:
        shell(f"curl -sf {url} | tee {work / f'curl{next(fresh)}'} | openssl dgst -sha256")()

    times = time_interleaved({"imagekit": ik_blob, "curl": curl_blob}, rounds=rounds, before=_settle)
    ratio(f"one {BLOB_MB} MB blob download", times["imagekit"], times["curl"], "curl|tee|openssl", ">= 0.8")
    _clean(work)

    pull_mb = _peak_mb([*IMAGEKIT, "--root", str(work / "peak-pull"), "pull", "-q", f"{source.host}/bench/image:1"])
    push_mb = _peak_mb([*IMAGEKIT, "--root", str(store.root), "push", "-q", image_ref, f"{registries[-1].host}/bench/peak:1"])
    print(f"PEAK imagekit pull {total_mb} MB: {pull_mb:.0f} MB RSS, push: {push_mb:.0f} MB RSS  target < 150 MB", flush=True)


def _clean(work: Path) -> None:
    for path in work.iterdir():
        if path.name.startswith(("pull", "curl")):
            shutil.rmtree(path) if path.is_dir() else path.unlink()
