"""Layer creation: imagekit's write_layer against `tar -c | <compressor> | openssl dgst -sha256` on one tree.

The tree: ~5,000 files, ~300 MB, copied from this machine's /usr (ELF binaries, shared libraries,
Python, text, docs, already-compressed .gz: what a rootfs holds), picked in a fixed pseudo-random
order, then topped up with large files from /usr to reach the size. It is generated once per run in
a temp directory and read from the page cache by every contender alike.

Contenders, interleaved (bench/_report.py), 3 rounds each:
- zstd: `write_layer(tree, codec="zstd")` vs `tar -c | zstd -T0 -3 | openssl dgst -sha256`;
- gzip: `write_layer(tree, codec="gzip")` vs `tar -c | pigz | openssl dgst -sha256` (pigz's level 6);
- none: `write_layer(tree, codec="none")` vs `tar -c | openssl dgst -sha256`.
imagekit does more than the peers: it also hashes the uncompressed tar (the diff_id) and sorts the
tree. Its sink discards the blob, as the peers' pipelines do. Peak memory: one child process runs
write_layer alone and reports ru_maxrss. Targets (issue 3): ratio >= 0.70, peak memory < 100 MB.
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
from imagekit.layers.changes import tree
from imagekit.layers.write import write_layer

FILES = 5000
TOTAL_MB = 300
SOURCES = ("/usr/bin", "/usr/lib", "/usr/share", "/usr/libexec", "/usr/sbin")
MAX_FILE = 16 << 20


class _Discard:
    """A sink that keeps nothing (the peers' pipelines keep nothing either)."""

    def write(self, data: bytes | memoryview) -> int:
        return len(data)


def _candidates() -> list[Path]:
    found = []
    for top in SOURCES:
        for directory, _, names in os.walk(top):
            for name in names:
                path = Path(directory, name)
                if path.is_file() and not path.is_symlink() and 0 < path.stat().st_size <= MAX_FILE and os.access(path, os.R_OK):
                    found.append(path)
    found.sort()
    random.Random(1).shuffle(found)
    return found


def make_tree(root: Path, files_wanted: int = FILES, megabytes: int = TOTAL_MB) -> tuple[int, int]:
    """Copies ~`files_wanted` files (~`megabytes`) from /usr into `root`, keeping their relative paths;
    returns (files, bytes)."""
    target = megabytes << 20
    files = total = 0
    candidates = _candidates()
    small = iter(candidates)
    large = iter(sorted(candidates, key=lambda p: -p.stat().st_size))
    for path in small:
        if files >= files_wanted * 0.99 or total >= target:
            break
        total += _copy(path, root)
        files += 1
    for path in large:  # top up to the size with a few large files (libraries, binaries)
        if total >= target or files >= files_wanted:
            break
        if not (root / path.relative_to("/")).exists():
            total += _copy(path, root)
            files += 1
    return files, total


def _copy(path: Path, root: Path) -> int:
    out = root / path.relative_to("/")
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, out)
    return out.stat().st_size


def _write(root: Path, codec: str) -> None:
    write_layer(tree(root), _Discard(), codec)  # type: ignore[arg-type]


def peak_rss_mb(root: Path, codec: str) -> float:
    """Peak resident memory of a child that only writes the layer, in MiB (its ru_maxrss).

    The child is forked by a shell, not by this process: Linux carries the high-water mark of a
    forked child across exec, so a child of this (large) process would report this process's size.
    """
    code = (
        "import resource, sys; from bench.layer_create import _write; from pathlib import Path; "
        "_write(Path(sys.argv[1]), sys.argv[2]); print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    out = subprocess.run(
        ["sh", "-c", '"$0" "$@"; exit $?', sys.executable, "-c", code, str(root), codec],
        check=True,
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    return int(out.stdout) / 1024


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="imagekit-bench-layer."))
    try:
        root = work / "tree"
        files, total = make_tree(root)
        os.sync()  # so writing back the new tree does not run on anyone's clock
        print(f"tree: {files} files, {total / 2**20:.0f} MB from /usr", flush=True)
        tar = f"tar -C {root} -c ."
        pairs = {
            "zstd": f"{tar} | zstd -q -T0 -3 | openssl dgst -sha256",
            "gzip": f"{tar} | pigz | openssl dgst -sha256",
            "none": f"{tar} | openssl dgst -sha256",
        }
        for codec, pipeline in pairs.items():
            times = time_interleaved({"imagekit": lambda: _write(root, codec), "peer": shell(pipeline)}, rounds=3)
            peer = pipeline.replace(f" -C {root}", "")
            ratio(f"create layer {codec} ({total / 2**20:.0f} MB, {files} files)", times["imagekit"], times["peer"], peer, ">= 0.70")
        for codec in pairs:
            print(f"PEAK RSS write_layer {codec}: {peak_rss_mb(root, codec):.0f} MB  target < 100 MB", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
