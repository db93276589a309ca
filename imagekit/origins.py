"""Where the store's blobs came from: `blob-origins.json` beside the store's OCI layout.

A push can ask a registry to mount a blob from another repository instead of uploading it, but only if
it knows a repository there that has the blob. Pulls record `digest -> ["host/repo", ...]` here and
pushes read it back. It is a hint, never the truth: a stale entry only costs one refused mount (the
registry then opens a normal upload), so an unreadable file reads as empty rather than failing a push.
OCI tools ignore files they do not know in a layout directory.

Imports: stdlib, imagekit.errors, digest, fsutil.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from imagekit.digest import Digest
from imagekit.errors import StoreError
from imagekit.fsutil import atomic_write, locked

FILE = "blob-origins.json"
LOCK = "blob-origins.lock"
#: Repositories remembered per blob, most recent first: enough to find one on any registry used lately.
KEEP = 8


class BlobOrigins:
    """The origins file of the store at `root`; safe for concurrent imagekit processes (flock + rename)."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.path = self.root / FILE

    def _load(self) -> dict[str, list[str]]:
        try:
            value = json.loads(self.path.read_bytes())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            return {}  # a hint file: unreadable means "no hints" (see module docstring)
        if not isinstance(value, dict):
            return {}
        return {k: [r for r in v if isinstance(r, str)] for k, v in value.items() if isinstance(k, str) and isinstance(v, list)}

    def record(self, digests: Iterable[Digest], repository: str) -> None:
        """Notes that `repository` (`host/path`) holds these blobs, most recent first."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            with locked(self.root / LOCK):
                table = self._load()
                for digest in digests:
                    known = [r for r in table.get(str(digest), []) if r != repository]
                    table[str(digest)] = [repository, *known][:KEEP]
                atomic_write(self.path, json.dumps(table, sort_keys=True, separators=(",", ":")).encode())
        except OSError as err:
            raise StoreError(f"cannot record blob origins in {self.root}: {err.strerror}") from err

    def on_registry(self, digests: Iterable[Digest], host: str) -> dict[Digest, list[str]]:
        """For each digest, the repository paths on registry `host` known to hold it (possibly none)."""
        table = self._load()
        prefix = f"{host}/"
        found: dict[Digest, list[str]] = {}
        for digest in digests:
            paths = [r.removeprefix(prefix) for r in table.get(str(digest), []) if r.startswith(prefix)]
            if paths:
                found[digest] = paths
        return found
