"""Which codec settings layers use: gzip implementations and levels, zstd workers and job sizes.

Each contender compresses the same 64 MB layer tar (a /usr sample made by bench/layer_create.py's
tree, written by write_layer uncompressed) in memory, 1 MiB at a time as write_layer feeds it; the
median of 3 rounds is printed as MB/s with the compression ratio. zlib-ng is measured when the
`zlib-ng` package happens to be installed (it is not a dependency).

Figures of this bench on the 2-core CI machine (2026-11-28; MB/s, ratio):
  zlib 1: 98, 3.29    zlib 6: 39, 3.69    isal 0: 778, 2.91   isal 1: 739, 3.26
  isal 2: 687, 3.29   isal 3: 411, 3.33   pigz -1: 227, 3.29  pigz -6: 82, 3.69
  zlib-ng (pip install zlib-ng, measured once on a 128 MB sample): level 1 at 2.6x zlib 1's speed but
  a worse ratio; level 6 at 2x zlib 6's speed: both far slower than ISA-L.
  zstd 3: 0 workers 359, 3.76;  2 workers, 3 MiB jobs 694, 3.77;  2 workers, 8 MiB 602;  4 workers, 3 MiB 585.
  -> gzip is ISA-L level 1 (compression.GZIP_LEVEL): level 0's speed, level 2's size, 9x pigz -6.
zstd level 3, whole write_layer of bench/layer_create.py's 330 MB tree, wall time / peak RSS (ru_maxrss):
  8 MiB jobs (zstd's default), 2 workers: 0.82 s / 117 MB;  4 MiB, 2: 0.84 s / 84 MB;
  3 MiB, 2: 0.86 s / 68 MB;  2 MiB, 2: 0.90 s / 58 MB;  2 MiB, 4: 0.87 s / 69 MB;  4 MiB, 4: 0.86 s / 99 MB;
  single-threaded (0 workers): 0.92 s for the bare compressor, and other bytes than any worker count.
  -> zstd runs 3 MiB jobs on at most 4 workers (compression.ZSTD_JOB_SIZE, ZSTD_THREADS): under
  100 MB of memory for ~5% of the speed; its output does not depend on the worker count.
"""

from __future__ import annotations

import io
import shutil
import statistics
import subprocess
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import zstandard
from isal import isal_zlib

from bench.layer_create import make_tree
from imagekit.layers.changes import tree
from imagekit.layers.write import write_layer

CHUNK = 1 << 20
ROUNDS = 3


def _deflate(module: object, level: int) -> Callable[[bytes], int]:
    def run(data: bytes) -> int:
        compressor = module.compressobj(level, module.DEFLATED, 31)  # type: ignore[attr-defined]
        view = memoryview(data)
        return sum(len(compressor.compress(view[i : i + CHUNK])) for i in range(0, len(data), CHUNK)) + len(compressor.flush())

    return run


def _zstd(workers: int, job_mb: int) -> Callable[[bytes], int]:
    def run(data: bytes) -> int:
        params = zstandard.ZstdCompressionParameters.from_level(3, threads=workers, job_size=job_mb << 20)
        compressor = zstandard.ZstdCompressor(compression_params=params).compressobj()
        view = memoryview(data)
        return sum(len(compressor.compress(view[i : i + CHUNK])) for i in range(0, len(data), CHUNK)) + len(compressor.flush())

    return run


def _pigz(level: int, path: Path) -> Callable[[bytes], int]:
    def run(_: bytes) -> int:
        with open(path, "rb") as source:
            return len(subprocess.run(["pigz", f"-{level}"], stdin=source, capture_output=True, check=True).stdout)

    return run


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="imagekit-bench-codecs."))
    try:
        make_tree(work / "tree", files_wanted=1000, megabytes=64)
        sink = io.BytesIO()
        write_layer(tree(work / "tree"), sink, "none")  # type: ignore[arg-type]
        data = sink.getvalue()
        (work / "layer.tar").write_bytes(data)
        contenders: dict[str, Callable[[bytes], int]] = {f"zlib {level}": _deflate(zlib, level) for level in (1, 6)}
        contenders |= {f"isal {level}": _deflate(isal_zlib, level) for level in (0, 1, 2, 3)}
        try:
            from zlib_ng import zlib_ng  # type: ignore[import-not-found]

            contenders |= {f"zlib-ng {level}": _deflate(zlib_ng, level) for level in (1, 6)}
        except ImportError:
            print("zlib-ng: not installed, not measured", flush=True)
        contenders |= {f"pigz -{level}": _pigz(level, work / "layer.tar") for level in (1, 6)}
        contenders |= {f"zstd 3, {workers} workers, {job} MiB jobs": _zstd(workers, job) for workers, job in ((0, 3), (2, 3), (2, 8), (4, 3))}
        samples: dict[str, list[float]] = {name: [] for name in contenders}
        sizes: dict[str, int] = {}
        for _ in range(ROUNDS):
            for name, run in contenders.items():
                start = time.perf_counter()
                sizes[name] = run(data)
                samples[name].append(time.perf_counter() - start)
        for name, times in samples.items():
            seconds = statistics.median(times)
            print(f"CODEC {name}: {len(data) / seconds / 2**20:.0f} MB/s, ratio {len(data) / sizes[name]:.2f}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
