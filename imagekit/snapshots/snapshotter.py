"""Snapshots: layers extracted once per diff_id and shared, active snapshots on top of them, and their gc.

containerd's Snapshotter shape, daemonless. On disk, under the store root:
- `layers/sha256/<diff_id hex>/`: one layer, extracted alone in overlay format (imagekit.layers.apply's
  "overlay" mode) and checked against its diff_id while it streams. Complete once visible, never
  written again: extraction happens in `layers/tmp/<random>/fs`, is synced (syncfs) and renamed into
  place; a second process that loses the race discards its own copy.
- `snapshots/<key>/`: an active snapshot: `upper/` and `work/` over lower layer dirs (overlay), or
  `upper/` (a full copy of the merged lowers) and `before/` (the same, untouched) where overlayfs is
  unusable. `meta.json` records the kind, the lowers and whether it is persistent; `lock` is flocked
  by the process that prepared an ephemeral snapshot for as long as it holds it.
- `layers/lock`: every change here (extraction, prepare, adopt, remove, `hold()`) holds it shared; gc
  holds it exclusively. So whatever gc finds in `layers/tmp/` belongs to a killed process, and an
  ephemeral snapshot whose lock is free has lost its owner. Persistent snapshots (containers) go
  only through remove(); gc keeps the layers any snapshot still stands on.

Imports: stdlib, imagekit.errors, digest, image, oci, layers, store, sandbox (the Rootfs value only),
imagekit.snapshots (copy, overlay, stubs). Only layers.rootfs and overlay at import time: the layer code
(apply, unpack, changes, copy, stubs) is imported where a layer is extracted, merged, committed or adopted,
so a container start over extracted layers does not pay for it.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import json
import os
import re
import stat
from collections.abc import Iterator, Sequence
from functools import cache
from pathlib import Path

from imagekit.digest import Digest
from imagekit.errors import ImagekitError, LayerError, SnapshotError
from imagekit.fsutil import atomic_write, disk_usage, fsync_dir, new_temp_dir
from imagekit.image import Image
from imagekit.layers.overlayfs import overlay_xattr_prefix
from imagekit.layers.rootfs import Root, remove_path
from imagekit.oci import Descriptor
from imagekit.sandbox.spec import Rootfs
from imagekit.snapshots.overlay import overlay_works
from imagekit.store import Store
from imagekit.values import value

TYPE_CHECKING = False  # typing's import is a run's start-up cost; its names are for the type checker
if TYPE_CHECKING:
    from imagekit.layers.apply import Limits
    from imagekit.layers.tarformat import Member


_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_libc = ctypes.CDLL(None, use_errno=True)


@value
class Usage:
    """Disk use (allocated bytes, each inode once, as `du -s` counts) of extracted layers and active snapshots."""

    layers: int
    layer_bytes: int
    snapshots: int
    snapshot_bytes: int


class Snapshots:
    """The extracted layers and active snapshots of the store `store` (see the module docstring).

    Safe to use from several processes at once; one instance per process is enough, and it holds
    the locks of the ephemeral snapshots it prepared until they are adopted or removed.
    """

    def __init__(self, store: Store, *, use_overlay: bool | None = None) -> None:
        self.store = store
        self._layers = store.root / "layers"
        self._snapshots = store.root / "snapshots"
        self._use_overlay = use_overlay  # None: probe on first prepare
        self._owned: dict[str, int] = {}  # key -> descriptor of its flocked lock file
        self._holding = 0  # hold() blocks nested in this instance: gc() would wait for them forever

    # --- extracted layers ------------------------------------------------------------------------------
    def layer_dir(self, diff_id: Digest | str) -> Path:
        """Where the layer with this diff_id is (or would be) extracted."""
        digest = Digest.parse(diff_id) if isinstance(diff_id, str) else diff_id
        return self._layers / digest.algorithm / digest.hex

    def extract(self, image: Image, index: int, *, limits: Limits | None = None) -> Path:
        """The directory of layer `index` (from 0, bottom first) of `image`, extracted unless it already is.

        Idempotent and safe against concurrent extraction of the same layer. Raises LayerError
        (an unsafe or corrupt layer, a passed cap, a config without one diff_id per layer),
        DigestMismatch (blob digest or diff_id wrong) or SnapshotError; nothing is left then.
        """
        pairs = image.layer_pairs()
        if not 0 <= index < len(pairs):
            raise SnapshotError(f"image {image.digest.short} has no layer {index} (it has {len(pairs)})")
        descriptor, diff_id = pairs[index]
        return self._extract(image, descriptor, diff_id, f"layer {index + 1}/{len(pairs)} ({descriptor.digest.short})", limits)

    def lowers(self, image: Image, *, limits: Limits | None = None) -> tuple[Path, ...]:
        """Every layer of `image` extracted, topmost first: the `lowers` prepare() takes."""
        pairs = image.layer_pairs()
        dirs = [self._extract(image, d, i, f"layer {n}/{len(pairs)} ({d.digest.short})", limits) for n, (d, i) in enumerate(pairs, 1)]
        return tuple(reversed(dirs))

    def _extract(self, image: Image, descriptor: Descriptor, diff_id: Digest, what: str, limits: Limits | None) -> Path:
        final = self.layer_dir(diff_id)
        if final.is_dir():
            return final
        # here, as in commit() and adopt(): the layer code (tar, compression) is for a layer not yet extracted;
        # a container start over extracted layers never imports it
        from imagekit.layers.apply import Budget, Limits
        from imagekit.layers.unpack import apply_blob

        with self.hold(), self._scratch() as scratch:
            if final.is_dir():
                return final
            fs = scratch / "fs"
            try:
                fs.mkdir(mode=0o755)
                os.chmod(fs, 0o755)  # a root directory's usual mode, unless the layer says otherwise
                with Root(fs) as root:
                    budget = Budget(limits if limits is not None else Limits.from_env())
                    apply_blob(image, descriptor, diff_id, root, budget=budget, what=what, whiteouts="overlay")
                _syncfs(fs)
            except OSError as err:
                raise LayerError(f"{what}: cannot extract into {scratch}: {err.strerror or err}") from err
            self._publish(fs, final)
        return final

    def _publish(self, directory: Path, final: Path) -> None:
        """Renames a finished layer dir to its final name; if another process got there first, keeps theirs."""
        with _errors("publish an extracted layer"):
            final.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.rename(directory, final)
            except OSError as err:
                if err.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                    raise
            fsync_dir(final.parent)

    @contextlib.contextmanager
    def _scratch(self) -> Iterator[Path]:
        """A fresh directory under layers/tmp, removed afterwards (gc removes it if we are killed)."""
        with _errors("make a scratch directory"):
            path = Path(new_temp_dir(self._tmp()))
        try:
            yield path
        finally:
            _remove(path)

    def _tmp(self) -> Path:
        """layers/tmp, made if missing: where scratch directories go."""
        tmp = self._layers / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        return tmp

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """Keeps gc away while held (shared with every other holder): hold it from adopt() to the next
        prepare() that stands on the adopted layer, or for a whole build. gc() inside it is refused
        (it would wait for itself; from another Snapshots of this process it would hang)."""
        with _errors("lock the extracted layers"):
            self._layers.mkdir(parents=True, exist_ok=True)
            fd = os.open(self._layers / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            self._holding += 1
            try:
                yield
            finally:
                self._holding -= 1
        finally:
            os.close(fd)

    # --- active snapshots ------------------------------------------------------------------------------
    def prepare(self, key: str, lowers: Sequence[Path], *, persistent: bool = False) -> Rootfs:
        """A new writable snapshot `key` over `lowers` (layer dirs, TOPMOST FIRST, as Rootfs.lowers).

        With overlayfs (probed once, or as `use_overlay` said): Rootfs(lowers, upper, work) for the
        sandbox to mount. Without: Rootfs(upper=a full copy of the merged lowers), the copy fallback.
        An ephemeral snapshot (the default; a build step's) belongs to this process: gc removes it once
        the process is gone. A `persistent` one (a container's) stays until remove(). Raises
        SnapshotError if `key` exists or is not a plain name, or a lower is missing.
        """
        if not _KEY.fullmatch(key):
            raise SnapshotError(f"invalid snapshot key {key!r}: use letters, digits, '_', '.' and '-' (at most 128)")
        lowers = tuple(Path(lower) for lower in lowers)
        overlay = bool(lowers) and self._overlay_usable()
        path = self._snapshots / key
        with self.hold():
            missing = [str(lower) for lower in lowers if not lower.is_dir()]
            if missing:
                raise SnapshotError(f"cannot prepare snapshot {key!r}: lower layer {missing[0]} is gone (was it pruned?)")
            with _errors(f"prepare snapshot {key!r}"):
                self._snapshots.mkdir(parents=True, exist_ok=True)
                try:
                    path.mkdir()
                except FileExistsError:
                    raise SnapshotError(f"snapshot {key!r} already exists in the store at {self.store.root}") from None
                if not persistent:
                    self._owned[key] = _lock(path / "lock", fcntl.LOCK_EX)
                meta = {"kind": "overlay" if overlay else "copy", "lowers": [str(lower) for lower in lowers], "persistent": persistent}
                (path / "meta.json").write_text(json.dumps(meta))
            try:
                if overlay:
                    return self._prepare_overlay(path, lowers)
                from imagekit.snapshots.copy import merge  # here: only the copy fallback merges trees

                merge(lowers, path / "before")
                merge(lowers, path / "upper")
            except BaseException:
                self.remove(key)
                raise
        return Rootfs(upper=str(path / "upper"))

    def _prepare_overlay(self, path: Path, lowers: tuple[Path, ...]) -> Rootfs:
        with _errors("prepare an overlay snapshot"):
            upper, work = path / "upper", path / "work"
            upper.mkdir()
            work.mkdir()
            top = lowers[0].stat()  # the merged root shows the upper's own mode and owner
            os.chmod(upper, stat.S_IMODE(top.st_mode))
            if os.geteuid() == 0:
                os.chown(upper, top.st_uid, top.st_gid)
        return Rootfs(lowers=tuple(str(lower) for lower in lowers), upper=str(upper), work=str(work),
                      userxattr=overlay_xattr_prefix() == "user.overlay.")

    def _overlay_usable(self) -> bool:
        if self._use_overlay is None:
            with self.hold():  # the probe's own scratch directory goes under layers/tmp, as gc expects
                with _errors("make a scratch directory"):
                    tmp = self._tmp()
                self._use_overlay = _probe(tmp)
        return self._use_overlay

    def commit(self, key: str, *, remove_paths: Sequence[str] = ()) -> Iterator[Member]:
        """The changes the snapshot `key` holds (the members of its layer, in layer order), after removing
        `remove_paths` (mount stubs the sandbox made: Result.created) where they are empty files or dirs,
        and the traces they left on the directories above them (imagekit.snapshots.stubs).

        Read after the sandbox has exited. The snapshot stays: adopt() or remove() it afterwards.
        """
        from imagekit.layers.changes import overlay_upper, snapshot_diff
        from imagekit.snapshots.stubs import remove_stubs

        path, meta = self._meta(key)
        upper = path / "upper"
        overlay = meta["kind"] == "overlay"
        with _errors(f"remove the mount stubs of snapshot {key!r}"):
            if overlay:
                remove_stubs(upper, remove_paths, lowers=[Path(lower) for lower in meta["lowers"]])  # type: ignore[attr-defined]
            else:
                remove_stubs(upper, remove_paths, before=path / "before")
        return overlay_upper(upper) if overlay else snapshot_diff(path / "before", upper)

    def adopt(self, key: str, diff_id: Digest | str) -> Path:
        """Makes the snapshot `key`'s changes the extracted layer `diff_id` (the layer the caller wrote from
        commit()'s changes) and removes the snapshot; returns the layer dir, a lower for the next step.

        Overlay: the upper dir is renamed into place (an upper already is a layer in overlay format).
        Copy: the changes are applied in overlay format into a new layer dir. Either way the dir keeps
        what the snapshot saw (nanosecond mtimes, unclamped), as containerd's committed snapshots do.
        If the layer is already extracted, that copy stays and this one goes.
        """
        path, meta = self._meta(key)
        final = self.layer_dir(diff_id)
        with self.hold():
            if meta["kind"] == "overlay":
                self._publish(path / "upper", final)
            elif not final.is_dir():
                from imagekit.layers.changes import snapshot_diff
                from imagekit.snapshots.copy import apply_changes

                with self._scratch() as scratch:
                    fs = scratch / "fs"
                    with _errors("adopt a snapshot"):
                        fs.mkdir(mode=0o755)
                        os.chmod(fs, 0o755)
                    with Root(fs) as root:
                        apply_changes(snapshot_diff(path / "before", path / "upper"), root, "overlay", f"snapshot {key!r}")
                    _syncfs(fs)
                    self._publish(fs, final)
            self.remove(key)
        return final

    def remove(self, key: str) -> None:
        """Deletes the snapshot `key` whatever its contents' modes; a missing one is fine."""
        if not _KEY.fullmatch(key):
            raise SnapshotError(f"invalid snapshot key {key!r}")
        _remove(self._snapshots / key)
        fd = self._owned.pop(key, None)
        if fd is not None:
            os.close(fd)

    def _meta(self, key: str) -> tuple[Path, dict[str, object]]:
        path = self._snapshots / key
        if not _KEY.fullmatch(key) or not (path / "meta.json").is_file():
            raise SnapshotError(f"no snapshot {key!r} in the store at {self.store.root}")
        try:
            meta = json.loads((path / "meta.json").read_text())
        except (OSError, ValueError) as err:
            raise SnapshotError(f"snapshot {key!r} in the store at {self.store.root} is unreadable ({err})") from err
        return path, meta

    # --- space ------------------------------------------------------------------------------------------
    def usage(self) -> Usage:
        """How many extracted layers and active snapshots there are, and the disk space each kind takes."""
        layers = self.layer_dirs()
        snapshots = self.snapshot_dirs()
        return Usage(len(layers), disk_usage(layers), len(snapshots), disk_usage(snapshots))

    def gc(self, keep: set[str]) -> int:
        """Removes extracted layers whose diff_id is not in `keep` (the diff_ids images still list) and no
        snapshot stands on, ephemeral snapshots whose process is gone, and scratch dirs of killed
        extractions. Returns the bytes freed. Waits for extractions and holders of hold() to finish."""
        if self._holding:
            raise SnapshotError("gc() inside hold() would wait for its own lock: collect garbage after the block")
        if not self._layers.is_dir() and not self._snapshots.is_dir():
            return 0
        with _errors("collect extracted layers"):
            self._layers.mkdir(parents=True, exist_ok=True)
            lock = _lock(self._layers / "lock", fcntl.LOCK_EX)
        try:
            doomed = self.garbage(keep)
            freed = disk_usage(doomed)
            for path in doomed:
                _remove(path)
        finally:
            os.close(lock)
        return freed

    def garbage(self, keep: set[str]) -> list[Path]:
        """What gc(keep) removes, as it stands now: scratch dirs of killed extractions, ephemeral snapshots
        whose process is gone, and extracted layers neither in `keep` nor under a remaining snapshot.
        Only gc's exclusive lock makes the answer final (an extraction may be under way); `system df`
        reads it as the build cache's reclaimable part."""
        doomed = [path for path in (self._layers / "tmp").glob("*")]
        needed = set(keep)
        for path in self.snapshot_dirs():
            meta = _read_meta(path)
            if meta.get("persistent") or _locked(path / "lock"):  # our own snapshots' locks count too
                needed.update(_diff_id_of(Path(lower)) for lower in meta.get("lowers", ()))  # type: ignore[union-attr]
            else:
                doomed.append(path)
        return doomed + [path for path in self.layer_dirs() if _diff_id_of(path) not in needed]

    def layer_dirs(self) -> list[Path]:
        """Every extracted layer's directory (layers/ALGORITHM/HEX)."""
        found = []
        for algorithm in ("sha256", "sha512"):
            directory = self._layers / algorithm
            if directory.is_dir():
                found += sorted(path for path in directory.iterdir() if path.is_dir())
        return found

    def snapshot_dirs(self) -> list[Path]:
        """Every active snapshot's directory (snapshots/KEY), a container's or a build step's."""
        if not self._snapshots.is_dir():
            return []
        return sorted(path for path in self._snapshots.iterdir() if path.is_dir() and _KEY.fullmatch(path.name))


@cache
def _probe(scratch: Path) -> bool:
    """overlay_works in `scratch` (layers/tmp), once per store and process, and remembered in the store
    for this kernel and this effective uid (layers/overlay-probe.json): a short-lived process such as
    `imagekit run` would otherwise pay a fork and a test mount each time. A store moved to another file
    system keeps the answer of the old one; deleting the file asks again."""
    record = scratch.parent / "overlay-probe.json"
    key = {"kernel": os.uname().release, "euid": os.geteuid()}
    try:
        known = json.loads(record.read_text())
        if isinstance(known, dict) and {k: known.get(k) for k in key} == key and isinstance(known.get("usable"), bool):
            return bool(known["usable"])
    except (OSError, ValueError):
        pass
    usable = overlay_works(scratch)
    with contextlib.suppress(OSError):  # a read-only store probes again next time
        atomic_write(record, json.dumps({**key, "usable": usable}).encode(), mode=0o644)
    return usable


def _read_meta(path: Path) -> dict[str, object]:
    try:
        meta = json.loads((path / "meta.json").read_text())
    except (OSError, ValueError):
        return {}  # killed before it was written: an ephemeral snapshot that never started
    return meta if isinstance(meta, dict) else {}


def _diff_id_of(lower: Path) -> str:
    return f"{lower.parent.name}:{lower.name}"


def _lock(path: Path, mode: int) -> int:
    """An open descriptor of `path` (created if missing) holding flock `mode`; closing it unlocks."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, mode)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _locked(path: Path) -> bool:
    """Whether some process holds a flock on `path` (a missing file is not locked)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def _remove(path: Path) -> None:
    """Removes `path` and everything below it, whatever the modes, never following a symlink."""
    with _errors(f"remove {path}"):
        try:
            remove_path(path)
        except FileNotFoundError:
            return


def _syncfs(path: Path) -> None:
    """Flushes the filesystem holding `path`: a layer dir must be whole on disk before its rename."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        if _libc.syncfs(fd) != 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code), str(path))
    finally:
        os.close(fd)


@contextlib.contextmanager
def _errors(action: str) -> Iterator[None]:
    """OS errors of the snapshot state as one SnapshotError line."""
    try:
        yield
    except ImagekitError:
        raise
    except OSError as err:
        raise SnapshotError(f"cannot {action}: {err.strerror or err}") from err
