"""Layer unpack bench: imagekit's unpack against `tar -x` on the same ~300 MB layer of ~5,000 files.

The layer is made once by `tar -c` and compressed by pigz and `zstd -T0`, as layers in the wild
are; all three go into a store. imagekit unpacks each (reading the blob from the store, checking its
digest, applying every entry through the root-confined resolver) and is timed against
`tar -x`, `pigz -dc | tar -x` and `zstd -dc | tar -x` on the same files, interleaved, with pending
writes flushed (untimed) before every run. Everything lives in /dev/shm when there is one: on
tmpfs both sides pay only for their own work, where a disk's writeback would hide an unpacker's
overhead (and make every run take seconds). Peak memory is that of the real `imagekit unpack`
command, one run per codec. Target: ratio >= 0.70, peak RSS < 100 MB.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench._report import ratio, shell, time_interleaved
from imagekit.digest import Digest
from imagekit.layers.unpack import unpack
from imagekit.layout import Layout
from imagekit.oci import OCI_CONFIG, OCI_LAYER, OCI_LAYER_GZIP, OCI_LAYER_ZSTD, OCI_MANIFEST, Descriptor, Manifest, canonical_json

FILES = 5000
TOTAL = 300 << 20
#: codec -> (media type, blob file, the peer pipeline given {blob} and {dest})
CODECS = {
    "uncompressed": (OCI_LAYER, "layer.tar", "tar -C {dest} -xf {blob}"),
    "gzip": (OCI_LAYER_GZIP, "layer.tar.gz", "pigz -dc {blob} | tar -C {dest} -x"),
    "zstd": (OCI_LAYER_ZSTD, "layer.tar.zst", "zstd -dc {blob} | tar -C {dest} -x"),
}
_PEAK_RSS = "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"


def _tree(root: Path) -> None:
    """~5,000 files in 100 directories, 1 KB to ~120 KB each: half random, half text-like."""
    rng = random.Random(7)
    words = [bytes(rng.choices(b"abcdefghijklmnopqrstuvwxyz", k=rng.randint(2, 9))) for _ in range(2000)]
    text = b" ".join(rng.choices(words, k=1 << 20))
    for i in range(FILES):
        directory = root / f"usr/lib/pkg{i % 100:03d}"
        directory.mkdir(parents=True, exist_ok=True)
        size = rng.randint(1024, 2 * TOTAL // FILES - 1024)
        start = rng.randrange(len(text) - size)
        (directory / f"file{i:04d}").write_bytes(rng.randbytes(size // 2) + text[start : start + size - size // 2])
        if i % 50 == 0:
            (directory / f"link{i:04d}").symlink_to(f"file{i:04d}")


def _store(work: Path) -> Path:
    """A store holding one single-layer image per codec, named bench:<codec>."""
    layout = Layout(work / "store")
    with open(work / "layer.tar", "rb") as tar:
        diff_id = Digest.of_stream(tar)[0]
    with layout.writing():
        for codec, (media_type, name, _) in CODECS.items():
            with open(work / name, "rb") as blob:
                digest, size = layout.write_blob(blob)
            config = canonical_json({"architecture": "amd64", "os": "linux", "config": {}, "rootfs": {"type": "layers", "diff_ids": [str(diff_id)]}})
            manifest = Manifest(OCI_MANIFEST, Descriptor(OCI_CONFIG, layout.write_bytes(config), len(config)), (Descriptor(media_type, digest, size),)).to_bytes()
            layout.set_ref(f"docker.io/library/bench:{codec}", Descriptor(OCI_MANIFEST, layout.write_bytes(manifest), len(manifest)))
    return work / "store"


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="imagekit-bench-unpack.", dir="/dev/shm" if os.path.isdir("/dev/shm") else None))
    try:
        _tree(work / "tree")
        subprocess.run(f"tar -C {work}/tree -cf {work}/layer.tar . && pigz -c {work}/layer.tar > {work}/layer.tar.gz && zstd -q -T0 -c {work}/layer.tar > {work}/layer.tar.zst", shell=True, check=True)
        shutil.rmtree(work / "tree")
        store = _store(work)
        out = work / "out"
        out.mkdir()

        def fresh() -> None:
            shutil.rmtree(out)
            out.mkdir()
            os.sync()

        mb = (work / "layer.tar").stat().st_size / 1e6
        for codec, (_, name, peer) in CODECS.items():
            image = Layout(store).image(f"docker.io/library/bench:{codec}")
            pipeline = peer.format(blob=work / name, dest=out / "peer")
            times = time_interleaved(
                {"imagekit": lambda: unpack(image, out / "ours"), "peer": shell(f"mkdir {out}/peer && {pipeline}")},
                rounds=5,
                before=fresh,
            )
            label = peer.format(blob=name, dest="DIR")
            ratio(f"unpack {codec} layer ({mb:.0f} MB, {FILES} files)", times["imagekit"], times["peer"], label, target=">= 0.70")
        for codec in CODECS:
            fresh()
            imagekit = str(Path(sys.executable).with_name("imagekit"))
            peak = subprocess.run([sys.executable, "-c", _PEAK_RSS, imagekit, "--root", str(store), "unpack", f"bench:{codec}", str(out / "cli")], check=True, capture_output=True, text=True)
            print(f"PEAK RSS imagekit unpack {codec}: {int(peak.stdout) / 1024:.0f} MB  target < 100 MB", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
