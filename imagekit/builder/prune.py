"""`imagekit builder prune`: what it removes, named once so that `system df` counts the same paths.

The build cache no image uses, as `docker builder prune` frees BuildKit's: step records whose layer no
image has (cache.BuildCache.prunable), RUN cache mounts and the context's file digests (ROOT/cache/mounts
and ROOT/cache/context, whole), and what the extracted-layer cache holds for builds alone: layers no
image lists and no snapshot stands on (a stage that is no image's, a step whose image was removed),
build steps' snapshots whose process is gone and scratch dirs of killed extractions
(Snapshots.garbage). Sizes are allocated bytes, as `du` counts them (fsutil.disk_usage).

Imports: stdlib, imagekit.fsutil, store, snapshots, builder.cache.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from imagekit.builder.cache import BuildCache
from imagekit.fsutil import disk_usage
from imagekit.snapshots import Snapshots
from imagekit.store import Store

#: ROOT/cache's directories that go whole
_WHOLE = ("mounts", "context")


def garbage(store: Store) -> list[Path]:
    """Every path prune() would remove now (records, cache dirs, layers, snapshots, scratch dirs)."""
    return [path for group in _plan(store) for path in group]


def prune(store: Store) -> tuple[int, int]:
    """Removes garbage(store); returns (step records removed, bytes freed)."""
    stale, whole, snapshots = _plan(store)
    freed = disk_usage([*stale, *whole, *snapshots])
    for path in stale:
        path.unlink(missing_ok=True)
    for path in whole:
        shutil.rmtree(path, ignore_errors=True)
    Snapshots(store).gc(keep=store.diff_ids())  # under its lock, what garbage() saw of the snapshots
    return len(stale), freed


def _plan(store: Store) -> tuple[list[Path], list[Path], list[Path]]:
    """(stale step records, cache dirs that go whole, extracted layers and snapshots gc would remove)."""
    in_use = {d.digest for stored in store.images() for d in stored.image.layers}
    cache = store.root / "cache"
    whole = [cache / name for name in _WHOLE if (cache / name).exists()]
    return BuildCache(cache / "build").prunable(in_use), whole, Snapshots(store).garbage(store.diff_ids())
