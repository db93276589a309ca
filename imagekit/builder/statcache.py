"""Content digests of build-context files, and the stat cache that spares re-reading unchanged ones.

Owns hashing (sha256 in 1 MiB reads, on HASH_THREADS threads: hashlib and reads release the GIL)
and `StatCache`: digests keyed by (inode, size, mtime_ns, ctime_ns) in one JSON file per context,
with git's racy-entry rule, written atomically. imagekit.builder.context decides what to hash.

Imports: stdlib, imagekit.errors.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tempfile
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from imagekit.errors import BuildError

#: Git's "racy" window: a file modified this close to (or after) the cache write is always re-hashed.
RACY_NS = 1_000_000_000
#: Threads hashing files: hashlib and reads release the GIL, so they run on every core.
HASH_THREADS = max(2, min(os.cpu_count() or 1, 8))
_CACHE_VERSION = 1
_CHUNK = 1 << 20
_BATCH_FILES = 64
_BATCH_BYTES = 8 << 20
#: Entries kept in a stat cache file beyond those used by the last build (renamed files age out).
_CACHE_SLACK = 100_000


class StatCache:
    """Content digests of files keyed by (inode, size, mtime_ns, ctime_ns), kept in one JSON file.

    Like git's index, an entry is trusted only when the file's mtime is older than the cache file's
    own write time minus RACY_NS: a file rewritten with the same size within the timestamp
    granularity of the last build could otherwise keep a stale digest. Written atomically.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.entries: dict[str, list[int | str]] = {}
        self.used: set[str] = set()
        self.dirty = False  # an entry was added or changed: save() has something to write
        self.written_ns = 0
        if path is None:
            return
        try:
            with open(path, "rb") as handle:
                self.written_ns = os.fstat(handle.fileno()).st_mtime_ns
                data = json.load(handle)
            if data.get("version") == _CACHE_VERSION and isinstance(data.get("entries"), dict):
                self.entries = data["entries"]
        except (OSError, ValueError, AttributeError):
            self.entries = {}  # no cache, or one we cannot read: every file is hashed again

    @staticmethod
    def key(info: os.stat_result) -> list[int]:
        return [info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns]

    def get(self, name: str, info: os.stat_result) -> str | None:
        """The cached digest of `name` if its stat is unchanged and it is not racy, else None."""
        entry = self.entries.get(name)
        if entry is None or entry[:4] != self.key(info) or info.st_mtime_ns >= self.written_ns - RACY_NS:
            return None
        self.used.add(name)
        return str(entry[4])

    def put(self, name: str, info: os.stat_result, digest: str) -> None:
        entry: list[int | str] = [*self.key(info), digest]
        if self.entries.get(name) != entry or info.st_mtime_ns >= self.written_ns - RACY_NS:
            self.entries[name] = entry  # a racy entry, too: a new write time may make it trusted
            self.dirty = True
        self.used.add(name)

    def save(self) -> None:
        """Writes the entries (those used by this build first) to a temp file and renames it in place.

        Nothing is written when nothing changed: the old write time keeps the old entries trusted.
        """
        if self.path is None or not self.dirty:
            return
        keep = {k: v for k, v in self.entries.items() if k in self.used}
        for name, entry in self.entries.items():
            if len(keep) >= len(self.used) + _CACHE_SLACK:
                break
            keep.setdefault(name, entry)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(json.dumps({"version": _CACHE_VERSION, "entries": keep}, separators=(",", ":")))  # one C pass
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, self.path)
            self.dirty = False
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise


def file_digest(path: str) -> str:
    """The sha256 (hex) of a regular file's content, read in chunks (never through a symlink)."""
    hasher = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)  # a FIFO swapped in must not block
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise BuildError(f"{path}: changed while the build read it (no longer a regular file)")
        while chunk := os.read(fd, _CHUNK):
            hasher.update(chunk)
    finally:
        os.close(fd)
    return hasher.hexdigest()


class Hashing:
    """The digests of one walk's files: from the stat cache, or from HASH_THREADS threads fed in
    batches of up to _BATCH_FILES files or _BATCH_BYTES bytes (a task per file costs more than
    hashing a small one). `want` as the walk goes, `flush` at its end, then `digest` per file.
    `host` maps a root-relative path to the host path to read."""

    def __init__(self, cache: StatCache, host: Callable[[str], str]) -> None:
        self.cache = cache
        self.host = host
        self.hashed_files = 0  # files whose content was read (the rest came from the cache)
        self.hashed_bytes = 0
        self.pool = ThreadPoolExecutor(HASH_THREADS)
        self.found: dict[str, str | tuple[Future[list[str]], int]] = {}
        self.batch: list[str] = []
        self.batch_bytes = 0

    def __enter__(self) -> Hashing:
        return self

    def __exit__(self, *exc: object) -> None:
        self.pool.shutdown(cancel_futures=True)

    def want(self, path: str, info: os.stat_result) -> None:
        if not stat.S_ISREG(info.st_mode):
            return
        cached = self.cache.get(path, info)
        if cached is not None:
            self.found[path] = cached
            return
        self.batch.append(path)
        self.batch_bytes += info.st_size
        if len(self.batch) >= _BATCH_FILES or self.batch_bytes >= _BATCH_BYTES:
            self.flush()

    def flush(self) -> None:
        if self.batch:
            future = self.pool.submit(_hash_files, [self.host(path) for path in self.batch])
            self.found.update((path, (future, index)) for index, path in enumerate(self.batch))
            self.batch, self.batch_bytes = [], 0

    def digest(self, path: str, info: os.stat_result) -> str:
        found = self.found.get(path, "")
        if isinstance(found, str):
            return found
        future, index = found
        digest = future.result()[index]
        self.cache.put(path, info, digest)
        self.hashed_files += 1
        self.hashed_bytes += info.st_size
        return digest


def _hash_files(paths: list[str]) -> list[str]:
    return [file_digest(path) for path in paths]
