"""The build cache: what each step produced, keyed by everything that step depends on.

A step's key is a digest over its parent's key, the step's instruction as expanded (so build args
it uses are in it), and the content digest of everything it reads from the context or another
stage. A record under ROOT/cache/build/ keeps what the step produced: the layer (if any) and the
image config after it, with its history entry and created time, so a rebuild with nothing changed
gives the very same image ID, as docker's cache does. Records are written atomically and are only
ever created or replaced whole, so concurrent builds can share them.

The store's garbage collection knows nothing of these records (only index.json roots keep blobs):
a record whose layer blob was pruned is a miss, never an error. `prunable()` names the records whose
layer no image uses, which `imagekit builder prune` (imagekit.builder.prune) removes.

Imports: stdlib, imagekit.errors, digest, oci, fsutil.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from imagekit.digest import Digest
from imagekit.errors import ImagekitError
from imagekit.fsutil import atomic_write
from imagekit.oci import Descriptor, canonical_json
from imagekit.values import value

#: Bumped when what a key covers changes, so old records stop matching.
KEY_VERSION = "imagekit-build-cache-v1"


def step_key(parent: str, *parts: Any) -> str:
    """The cache key of a step: a sha256 over the parent's key and the step's canonical description."""
    return str(Digest.of_bytes(canonical_json([KEY_VERSION, parent, *parts])))


@value
class Record:
    """What a cached step produced: its layer (None for a step that only changes the config) and
    the image config after it, as JSON."""

    layer: Descriptor | None
    diff_id: str
    config: dict[str, Any]


class BuildCache:
    """Records under `directory` (ROOT/cache/build), one JSON file per key."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, key: str) -> Path:
        return self.directory / key.replace(":", "-")

    def get(self, key: str) -> Record | None:
        """The record for `key`, or None; an unreadable or malformed record is a miss."""
        try:
            data = json.loads(self._path(key).read_bytes())
            layer = Descriptor.from_json(data["layer"]) if data.get("layer") else None
            return Record(layer, str(data.get("diff_id", "")), dict(data["config"]))
        except (OSError, ValueError, KeyError, TypeError, ImagekitError):
            return None

    def put(self, key: str, record: Record) -> None:
        """Stores a record (atomically; a concurrent writer of the same key writes the same content)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        data = {
            "layer": record.layer.to_json() if record.layer else None,
            "diff_id": record.diff_id,
            "config": record.config,
        }
        atomic_write(self._path(key), canonical_json(data))

    def prunable(self, in_use: set[Digest]) -> list[Path]:
        """The records `builder prune` removes: those whose layer blob is not in `in_use` (and unreadable ones)."""
        try:
            names = sorted(os.listdir(self.directory))
        except FileNotFoundError:
            return []
        found = []
        for name in names:
            record = self.get(name.replace("-", ":", 1))
            if record is None or (record.layer is not None and record.layer.digest not in in_use):
                found.append(self.directory / name)
        return found
