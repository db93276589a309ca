"""Named and anonymous volumes: ROOT/volumes/<name>/_data, kept until removed, shared between containers.

docker's local driver, daemonless: a volume is a directory whose `_data` is bind-mounted into the
containers that name it; `meta.json` records when and how it was made (anonymous volumes, made for
`-v /dst` and an image's VOLUME entries, are named by 64 hex digits and go with `run --rm` and
`rm -v`). Whether a volume is in use is the caller's knowledge (the container records), passed in.

Imports: stdlib, imagekit.errors, fsutil, layers.rootfs (remove_path: volume data is the containers' writing), store,
runtime.options.
"""

from __future__ import annotations

import json
import os
import stat
from contextlib import suppress
from pathlib import Path

from imagekit.errors import VolumeError, VolumeNotFound
from imagekit.fsutil import atomic_write
from imagekit.layers.rootfs import remove_path
from imagekit.runtime.options import VOLUME_NAME, volume_name
from imagekit.runtime.state import now
from imagekit.store import Store
from imagekit.values import value

TYPE_CHECKING = False  # typing's import is a run's start-up cost; its names are for the type checker
if TYPE_CHECKING:
    from typing import Any


@value
class Volume:
    """One volume: its name, where its data is, when it was made, whether it is anonymous."""

    name: str
    mountpoint: Path
    created: str
    anonymous: bool = False

    def inspect(self) -> dict[str, Any]:
        """`docker volume inspect`'s fields."""
        return {"CreatedAt": self.created, "Driver": "local", "Labels": {"com.docker.volume.anonymous": ""} if self.anonymous else {},
                "Mountpoint": str(self.mountpoint), "Name": self.name, "Options": {}, "Scope": "local"}


class Volumes:
    """The volumes of a store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.root = store.root / "volumes"

    def create(self, name: str = "", *, exist_ok: bool = True) -> Volume:
        """Makes volume `name` (an anonymous one when empty); an existing one is returned as it is."""
        anonymous = not name
        name = name or os.urandom(32).hex()  # secrets.token_hex, without importing random and hmac at start-up
        volume_name(name)
        path = self.store.state_dir("volumes") / name
        try:
            path.mkdir()
        except FileExistsError:
            if not exist_ok:
                raise VolumeError(f"volume {name} already exists") from None
            return self.get(name)
        except OSError as err:
            raise VolumeError(f"cannot create volume {name}: {err.strerror}") from err
        try:
            (path / "_data").mkdir(mode=0o755)
            atomic_write(path / "meta.json", json.dumps({"created": now(), "anonymous": anonymous}).encode(), mode=0o644)
        except OSError as err:
            with suppress(OSError):
                remove_path(path)
            raise VolumeError(f"cannot create volume {name}: {err.strerror}") from err
        return self.get(name)

    def get(self, name: str) -> Volume:
        """Volume `name`; VolumeNotFound when there is none, or the name is no volume name (never a path)."""
        if not VOLUME_NAME.fullmatch(name):
            raise VolumeNotFound(f"no such volume: {name}")
        path = self.root / name
        try:
            meta = json.loads((path / "meta.json").read_text())
        except FileNotFoundError:
            raise VolumeNotFound(f"no such volume: {name}") from None
        except (OSError, ValueError) as err:
            raise VolumeError(f"volume {name} is unreadable: {err}") from err
        return Volume(name, path / "_data", str(meta.get("created", "")), bool(meta.get("anonymous")))

    def all(self) -> list[Volume]:
        if not self.root.is_dir():
            return []
        return [self.get(entry.name) for entry in sorted(self.root.iterdir()) if (entry / "meta.json").is_file()]

    def remove(self, name: str, in_use: set[str]) -> None:
        """Deletes volume `name` and its data; refused while a container uses it."""
        volume = self.get(name)
        if name in in_use:
            raise VolumeError(f"volume {name} is in use by a container: remove the container first")
        remove_path(volume.mountpoint.parent)

    def prune(self, in_use: set[str], *, all_volumes: bool = False) -> list[str]:
        """Removes unused anonymous volumes (every unused one with `all_volumes`), as `docker volume prune`."""
        removed = []
        for volume in self.all():
            if volume.name not in in_use and (all_volumes or volume.anonymous):
                remove_path(volume.mountpoint.parent)
                removed.append(volume.name)
        return removed


def copy_up(root: str, target: str, data: str) -> None:
    """In a sandbox.call child over the container's rootfs: what the image has at `target` is copied into
    the new, empty volume directory `data` (owners, modes, times and symlinks kept), as docker fills a
    fresh volume from the image. A target the image lacks, or one that resolves outside the root, gives
    nothing to copy; only directories, regular files and symlinks are copied (a FIFO would block the copy,
    a device node has no business in a volume)."""
    real_root = os.path.realpath(root)
    source = os.path.realpath(os.path.join(real_root, target.lstrip("/")))
    if os.path.commonpath([source, real_root]) != real_root or not os.path.isdir(source):
        return
    import shutil  # here: this runs in a sandbox.call child, and loading shutil is a tenth of `imagekit run`

    shutil.copytree(source, data, symlinks=True, dirs_exist_ok=True, copy_function=_copy_regular)
    shutil.copystat(source, data)
    for directory, dirs, files in os.walk(source):
        relative = os.path.relpath(directory, source)
        for name in [".", *dirs, *files] if relative == "." else [*dirs, *files]:
            copied = os.path.normpath(os.path.join(data, relative, name))
            if os.path.lexists(copied):
                info = os.lstat(os.path.join(directory, name))
                os.lchown(copied, info.st_uid, info.st_gid)


def _copy_regular(source: str, destination: str) -> None:
    import shutil  # copy_up's, loaded by then

    if stat.S_ISREG(os.lstat(source).st_mode):
        shutil.copy2(source, destination)
