"""Build-context hashing: `COPY . /app/` planned by imagekit against `tar -c | openssl dgst -sha256` on one tree.

The tree is bench.layer_create's (~5,000 files, ~300 MB from /usr), read from the page cache by
every contender alike. Contenders, interleaved, 3 rounds:
- cold: a fresh stat cache, so every file is read and hashed (HASH_THREADS threads), against the
  peer pipeline that reads every byte once and hashes the stream with openssl (SHA instructions);
- warm: the stat cache of a previous build (files older than the racy window), so nothing is read:
  printed as seconds and files per second, no peer.
Target: cold ratio >= 0.8 (the plan also walks, stats and records every node).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

from bench._report import ratio, shell, time_interleaved
from bench.layer_create import make_tree
from builderfile.instructions import load
from imagekit.builder.context import BuildContext
from imagekit.builder.copy_plan import plan_copy

STEP = load("FROM scratch\nCOPY . /app/\n").stages[0].instructions[0]


def _plan(root: Path, cache: Path, fresh: bool) -> BuildContext:
    if fresh:
        shutil.rmtree(cache, ignore_errors=True)
    context = BuildContext(root, None, cache_dir=cache)
    plan_copy(STEP, context, "/")  # type: ignore[arg-type]
    context.save()
    return context


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="imagekit-bench-context."))
    try:
        root = work / "tree"
        files, total = make_tree(root)
        old = time.time() - 3600
        for directory, _, names in os.walk(root):
            for name in names:
                os.utime(os.path.join(directory, name), (old, old))
        os.sync()
        print(f"tree: {files} files, {total / 2**20:.0f} MB from /usr", flush=True)
        cache = work / "cache"
        times = time_interleaved({"imagekit": lambda: _plan(root, cache, True), "peer": shell(f"tar -C {root} -c . | openssl dgst -sha256")})
        ratio("context hash (cold)", times["imagekit"], times["peer"], "tar | openssl dgst", ">= 0.8")
        print(f"cold: {total / 2**20 / times['imagekit']:.0f} MB/s", flush=True)
        _plan(root, cache, True)
        start = time.perf_counter()
        context = _plan(root, cache, False)
        warm = time.perf_counter() - start
        print(f"warm: {warm:.3f}s for {files} files ({files / warm:.0f} files/s), {context.hashed_files} files re-hashed", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
