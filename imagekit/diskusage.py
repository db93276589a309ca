"""`imagekit system df`: the store's disk use in docker's four rows, every byte under the root in exactly one.

Sizes are allocated bytes, each inode once (st_blocks * 512, as `du -s --block-size=1 ROOT` counts them):
one fsutil.DiskMeter measures every row, and whatever no item claims is measured last into the row of
the directory it sits in, so the four sizes add up to du of the store root.

Where each path belongs:
- Images: the blobs (each once, however many images share it), the extracted layers images list
  (ROOT/layers/ALGORITHM/HEX) and the layout's own files (index.json, oci-layout, locks, tmp/).
  Extracted layers count here, not as build cache, because they are the image unpacked (docker counts
  unpacked layers in an image's size under overlay2) and because only removing the image frees them:
  `prune` collects the layers no image lists, `builder prune` never touches one an image lists.
- Containers: ROOT/containers/ID (record, log, /etc files) and the container's snapshot
  ROOT/snapshots/ID (its writable layer); the containers/, snapshots/ and networks/ directories.
- Local Volumes: ROOT/volumes/NAME; the volumes/ directory.
- Build Cache: ROOT/cache (step records, RUN cache mounts, context digests), extracted layers no image
  lists (a stage no image has, a removed image's) and build steps' snapshots, as BuildKit counts its
  snapshots as build cache.

RECLAIMABLE is what the row's prune frees, worked out from the plan that prune follows:
Images `imagekit image prune -a` (images no container was made from go, then the blobs no remaining
image reaches, the layout's tmp/ debris and the image layers gc then removes); Containers
`imagekit container prune` (the stopped ones); Local Volumes `imagekit volume prune -a` (those no
container mounts); Build Cache `imagekit builder prune` (imagekit.builder.prune.garbage). ACTIVE counts
images a container was made from, running containers, volumes a container mounts, and build cache
`builder prune` keeps (a step record an image's layer backs, a live build's snapshot, a layer a
snapshot stands on).

Imports: stdlib, imagekit.fsutil, store, snapshots, runtime, builder.prune.
"""

from __future__ import annotations

from pathlib import Path

from imagekit import values
from imagekit.builder.prune import garbage as build_garbage
from imagekit.fsutil import DiskMeter, disk_usage
from imagekit.runtime.container import Runtime
from imagekit.runtime.state import Container
from imagekit.snapshots import Snapshots
from imagekit.store import Store
from imagekit.values import value


@value
class Item:
    """One image, container, volume or build cache entry: its name, size in bytes and whether it is in use."""

    name: str
    size: int
    active: bool


@value
class Kind:
    """One row of the table: TYPE, the items, the bytes the row holds and what its prune frees."""

    type: str
    items: tuple[Item, ...]
    size: int
    reclaimable: int

    @property
    def active(self) -> int:
        return sum(item.active for item in self.items)


def usage(runtime: Runtime) -> list[Kind]:
    """The four rows of `system df`, in docker's order (see the module docstring)."""
    store, meter = runtime.store, DiskMeter()
    snapshots = Snapshots(store)
    containers = runtime.containers.all()
    rows = [_images(store, snapshots, containers, meter), _containers(runtime, containers, meter),
            _volumes(runtime, meter), _build_cache(store, snapshots, {c.id for c in containers}, meter)]
    root = store.root
    leftovers = {"Containers": [root / "containers", root / "snapshots", root / "networks"],
                 "Local Volumes": [root / "volumes"], "Build Cache": [root / "cache"]}
    rows = [values.replace(row, size=row.size + meter.measure(leftovers.get(row.type, []))) for row in rows]
    return [values.replace(rows[0], size=rows[0].size + meter.measure([root])), *rows[1:]]


def _images(store: Store, snapshots: Snapshots, containers: list[Container], meter: DiskMeter) -> Kind:
    used = {c.image_id for c in containers}
    images = store.images()
    unused = store.unused(used)
    kept = [entry for entry in store.layout.index().manifests if entry not in unused]
    kept_blobs = {str(digest) for digest in store.layout.reachable(kept)}
    listed = store.diff_ids()
    layers = [path for path in snapshots.layer_dirs() if _diff_id(path) in listed]
    doomed = set(snapshots.garbage(store.diff_ids(kept)))
    blobs = _blob_paths(store)
    debris = sorted(store.layout.tmp_dir.glob("*"))
    reclaimable = meter.measure([*(p for p in blobs if _blob_digest(p) not in kept_blobs), *debris, *(p for p in layers if p in doomed)])
    held = meter.measure([*(p for p in blobs if _blob_digest(p) in kept_blobs), *(p for p in layers if p not in doomed)])
    items = []
    for image in images:
        own = [store.layout.blob_path(d.digest) for d in (image.entry, image.descriptor, *image.image.blobs())]
        own += [snapshots.layer_dir(diff_id) for diff_id in image.image.diff_ids]
        items.append(Item(", ".join(image.names) or str(image.id)[:19], disk_usage(own), str(image.id) in used))
    return Kind("Images", tuple(items), reclaimable + held, reclaimable)


def _containers(runtime: Runtime, containers: list[Container], meter: DiskMeter) -> Kind:
    items = [Item(c.name, meter.measure(runtime.disk_paths(c)), c.state == "running") for c in containers]
    return _kind("Containers", items)


def _volumes(runtime: Runtime, meter: DiskMeter) -> Kind:
    in_use = runtime.volumes_in_use()
    return _kind("Local Volumes", [Item(v.name, meter.measure([runtime.volumes.root / v.name]), v.name in in_use)
                                   for v in runtime.volumes.all()])


def _build_cache(store: Store, snapshots: Snapshots, container_ids: set[str], meter: DiskMeter) -> Kind:
    doomed = build_garbage(store)
    listed = store.diff_ids()
    records = store.root / "cache" / "build"
    kept = [*(sorted(records.iterdir()) if records.is_dir() else ()),
            *(p for p in snapshots.snapshot_dirs() if p.name not in container_ids),
            *(p for p in snapshots.layer_dirs() if _diff_id(p) not in listed)]
    items = [Item(str(path.relative_to(store.root)), meter.measure([path]), False) for path in doomed]
    items += [Item(str(path.relative_to(store.root)), meter.measure([path]), True) for path in kept if path not in doomed]
    return _kind("Build Cache", items)


def _kind(name: str, items: list[Item]) -> Kind:
    return Kind(name, tuple(items), sum(i.size for i in items), sum(i.size for i in items if not i.active))


def _blob_paths(store: Store) -> list[Path]:
    blobs = store.root / "blobs"
    return sorted(path for algorithm in (blobs.iterdir() if blobs.is_dir() else ()) if algorithm.is_dir()
                  for path in algorithm.iterdir() if not path.is_dir())


def _blob_digest(path: Path) -> str:
    return f"{path.parent.name}:{path.name}"


def _diff_id(layer_dir: Path) -> str:
    return f"{layer_dir.parent.name}:{layer_dir.name}"
