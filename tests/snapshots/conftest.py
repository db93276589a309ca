"""Snapshot fixtures: images written from real trees, a store, and an overlay mounted in a child's own mount namespace."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from imagekit.image import Image
from imagekit.layers.write import write_layer
from imagekit.layers.tarformat import Member
from imagekit.layout import Layout
from imagekit.sandbox.spec import Rootfs
from imagekit.snapshots import Snapshots, mount_options
from imagekit.store import Store
from tests.layers.unpack.conftest import resolver, sandbox  # noqa: F401 (fixtures for the hostile corpus)
from tests.layers.unpack.tars import image

REPO = Path(__file__).resolve().parents[2]
MTIME = 1_600_000_000


def layer(changes: Iterable[Member], codec: str = "gzip") -> tuple[bytes, str]:
    """A layer blob written by imagekit's own writer, and its media type."""
    out = io.BytesIO()
    written = write_layer(changes, out, codec)
    return out.getvalue(), written.media_type


def stored(store: Store, layers: Iterable[tuple[bytes, str]], ref: str = "docker.io/library/test:1") -> Image:
    """An image of these layers (diff_ids computed) written into `store` and read back from it."""
    store.layout.write_image(image(layers), ref)
    return store.layout.image(ref)


def mount_and_run(rootfs: Rootfs, mnt: Path, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Runs argv in the merged tree (cwd) of `rootfs`, overlay-mounted on `mnt` in a private mount namespace
    that dies with it, as the sandbox will mount it."""
    options = mount_options(list(rootfs.lowers), rootfs.upper, rootfs.work)
    script = 'mount -t overlay overlay -o "$1" "$2" && cd "$2" && shift 2 && exec "$@"'
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(["unshare", "-m", "sh", "-c", script, "sh", options, str(mnt), *argv], capture_output=True, text=True, timeout=120, env=env, cwd=REPO)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def merged_manifest(rootfs: Rootfs, mnt: Path, **options: bool) -> dict[str, Any]:
    """tree_manifest (with `options`) of the overlay `rootfs` mounts, read inside the mount namespace."""
    code = "import json, sys; from tests.layers.treecmp import tree_manifest; print(json.dumps(tree_manifest('.', **json.loads(sys.argv[1]))))"
    return json.loads(mount_and_run(rootfs, mnt, sys.executable, "-c", code, json.dumps(options)).stdout)  # type: ignore[no-any-return]


def as_json(manifest: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(manifest))  # type: ignore[no-any-return]


def copy_tree(source: Path, dest: Path) -> Path:
    """`cp -a`: owners, modes, nanosecond times, xattrs and hardlinks kept, so a diff sees only what changes next."""
    subprocess.run(["cp", "-a", str(source), str(dest)], check=True)
    return dest


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "store")


@pytest.fixture
def snapshots(store: Store) -> Snapshots:
    return Snapshots(store)
