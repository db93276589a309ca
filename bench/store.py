"""Store bench: `imagekit import` of a rootfs tarball against the shell pipeline doing the same work.

The peer hashes the tarball (the diff_id), gzips it at docker's level 6 and hashes and writes the
result: exactly the bytes imagekit's import moves, without the store's fsyncs and bookkeeping.
"""

from __future__ import annotations

import io
import random
import shutil
import tarfile
import tempfile
from pathlib import Path

from bench._report import ratio, shell, time_interleaved

SIZE_MB = 64


def _rootfs_tar(path: Path) -> None:
    """Half text-like (compressible), half random: roughly what a rootfs compresses like."""
    rng = random.Random(1)
    words = [bytes(rng.choices(b"abcdefghijklmnopqrstuvwxyz", k=rng.randint(2, 9))) for _ in range(2000)]
    with tarfile.open(path, "w") as archive:
        for i in range(SIZE_MB):
            data = rng.randbytes(1 << 19) + b" ".join(rng.choices(words, k=1 << 16))[: 1 << 19]
            info = tarfile.TarInfo(f"usr/lib/file{i:03d}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="imagekit-bench-store."))
    try:
        tar = work / "rootfs.tar"
        _rootfs_tar(tar)
        counter = iter(range(1000))

        def ours() -> object:
            n = next(counter)
            return shell(f"imagekit --root {work}/store{n} import {tar} bench:{n} >/dev/null && rm -rf {work}/store{n}")()

        peer = shell(
            f"tee >(openssl dgst -sha256 >/dev/null) < {tar} | gzip -6 -n | tee {work}/peer.gz | openssl dgst -sha256 >/dev/null"
        )
        times = time_interleaved({"imagekit": ours, "peer": peer}, rounds=3)
        ratio(f"import {SIZE_MB} MB rootfs tar", times["imagekit"], times["peer"], "tee|openssl dgst|gzip -6|openssl dgst")
    finally:
        shutil.rmtree(work, ignore_errors=True)
