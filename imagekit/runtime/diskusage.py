"""`imagekit system df`: what the store's images, containers, volumes and build cache take on disk.

What counts, kept simple: Images are the blobs of the store's images (each blob once, however many images
share it), active when some container was made from the image; Containers are their upper directories
(what they wrote), active while running; Local Volumes are ROOT/volumes/NAME, active when some
container mounts them; Build Cache is everything under ROOT/cache (never active). Reclaimable is what
the inactive ones alone take. Sizes of directories are allocated bytes (`du`), of blobs their lengths.

Imports: stdlib, imagekit.fsutil, store, runtime.container.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from imagekit.fsutil import disk_usage
from imagekit.runtime.container import Runtime


@dataclass(frozen=True)
class Item:
    """One image, container or volume: its name, size in bytes and whether something uses it."""

    name: str
    size: int
    active: bool


@dataclass(frozen=True)
class Kind:
    """One row of the table: TYPE, the items, their total size and what removing the inactive ones frees."""

    type: str
    items: tuple[Item, ...]
    size: int
    reclaimable: int

    @property
    def active(self) -> int:
        return sum(item.active for item in self.items)


def usage(runtime: Runtime) -> list[Kind]:
    """The four rows of `system df`, in docker's order."""
    containers = runtime.containers.all()
    used_images = {c.image_id for c in containers}
    blob_sizes: dict[str, int] = {}
    active_blobs: set[str] = set()
    images = []
    for image in runtime.store.images():
        blobs = {str(d.digest): d.size for d in (image.descriptor, *image.image.blobs())}
        blob_sizes.update(blobs)
        active = str(image.id) in used_images
        if active:
            active_blobs.update(blobs)
        images.append(Item(", ".join(image.names) or str(image.id)[:19], image.size, active))
    image_size = sum(blob_sizes.values())
    image_kind = Kind("Images", tuple(images), image_size,
                      sum(size for digest, size in blob_sizes.items() if digest not in active_blobs))
    in_use = runtime.volumes_in_use()
    volumes = [Item(v.name, disk_usage([runtime.volumes.root / v.name]), v.name in in_use) for v in runtime.volumes.all()]
    uppers = [Item(c.name, disk_usage([Path(c.spec["rootfs"]["upper"])]), c.state == "running") for c in containers]
    cache = runtime.store.root / "cache"
    entries = sorted(cache.iterdir()) if cache.is_dir() else []
    cache_items = [Item(entry.name, disk_usage([entry]), False) for entry in entries]
    return [image_kind, _kind("Containers", uppers), _kind("Local Volumes", volumes), _kind("Build Cache", cache_items)]


def _kind(name: str, items: list[Item]) -> Kind:
    return Kind(name, tuple(items), sum(i.size for i in items), sum(i.size for i in items if not i.active))
