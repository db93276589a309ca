"""Applying one layer onto a root directory: the OCI changeset rules, for untrusted input.

Every entry is checked on its own: its path is cleaned and must not climb out with `..`; its parent
is resolved inside the root (imagekit.layers.rootfs), so a symlink the layer made earlier can point
a later entry at ROOT/etc but never at the host's /etc; the last component is created with
O_EXCL/O_NOFOLLOW-style calls relative to that parent. A path that already exists is replaced,
unless a directory meets a directory (then the new entry's metadata wins), as Docker and containerd
do. Whiteouts (`.wh.NAME`) delete within the root, opaque whiteouts (`.wh..wh..opq`) empty a
directory of everything this layer did not put there; neither is ever written out. That is the
"delete" mode, for a root that holds the layers below. The "overlay" mode extracts one layer alone
into an empty directory that will be an overlayfs lower layer, converting whiteouts as containerd's
OverlayConvertWhiteout does: `.wh.NAME` becomes a 0/0 character device NAME (overlayfs' whiteout),
`.wh..wh..opq` sets `trusted.overlay.opaque=y` on its directory (`user.overlay.opaque` where overlayfs
must be mounted with `userxattr`: not root, or root in a user namespace), and a directory that
replaces a path the same layer whited out is made opaque, so the merged tree is the one "delete"
gives. A layer's own `*.overlay.*` xattrs would steer overlayfs and are skipped in that mode.

Privileges decide what is kept: as root, owners, device nodes and setuid/setgid bits; otherwise
(rootless) devices are skipped, setuid/setgid dropped, and owners recorded the way umoci records
them, in the `user.rootlesscontainers` xattr (a protobuf `Resource{uid=1, gid=2}`, 2^32-1 meaning
"unchanged", absent for 0:0; https://github.com/rootless-containers/proto). What is skipped is
reported as one warning per kind, not one per entry.

A size cap (uncompressed tar bytes) and an entry cap guard against decompression bombs; both are
checked before an entry is written, against a Budget shared by all layers of one image. Given the
layer's diff_id, the whole uncompressed stream (trailing bytes after the tar's end included, within
the size cap) is hashed and a mismatch raises DigestMismatch, as containerd's "wrong diff id".
This module applies; it does not make application atomic: see imagekit.layers.unpack.

Imports: stdlib, imagekit.errors, digest, log, imagekit.layers (compression, overlayfs, rootfs, tarformat, tarread).
"""

from __future__ import annotations

import errno
import os
import posixpath
import queue
import re
import stat
import threading
from collections.abc import Callable, Mapping
from typing import BinaryIO, Literal, TypeVar

from imagekit.digest import CHUNK, Digest, VerifyingReader
from imagekit.errors import LayerError
from imagekit.layers.compression import DECOMPRESS_ERRORS, compression_of, decompressed
from imagekit.layers.overlayfs import is_whiteout, overlay_xattr_prefix
from imagekit.layers.rootfs import IMPLICIT_DIR_MODE, Root, proc_path, remove, split, writable
from imagekit.layers.tarformat import BLKTYPE, CHRTYPE, DIRTYPE, FIFOTYPE, LNKTYPE, OPAQUE, REGTYPE, SYMTYPE
from imagekit.layers.tarformat import WHITEOUT_PREFIX as WHITEOUT
from imagekit.layers.tarread import Entry, TarReader, show
from imagekit.log import logger
from imagekit.values import value

log = logger(__name__)

#: Default cap on the uncompressed bytes one image may unpack to; IMAGEKIT_MAX_LAYER_BYTES overrides it.
DEFAULT_MAX_BYTES = 64 << 30
#: Default cap on the entries (files, directories, links, whiteouts) of one image.
DEFAULT_MAX_INODES = 10_000_000
MAX_BYTES_ENV = "IMAGEKIT_MAX_LAYER_BYTES"
ROOTLESS_XATTR = "user.rootlesscontainers"
#: Linux's limit on a path handed to one system call; no layer path may reach it.
PATH_MAX = 4096
_NOOP_ID = 0xFFFFFFFF
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgtp]?)(?:i?b)?", re.IGNORECASE)
_NOT_SUPPORTED = (errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM, errno.EACCES)
_OVERLAY_XATTRS = ("trusted.overlay.", "user.overlay.")
T = TypeVar("T")
#: What a whiteout does: "delete" lower content from a flattened root, or become "overlay"'s own markers.
Whiteouts = Literal["delete", "overlay"]


def parse_size(text: str, source: str) -> int:
    """Bytes from `10G`, `512M`, `1.5T`, `4096` (K, M, G, T, P are powers of 1024, as docker's units)."""
    match = _SIZE.fullmatch(text.strip())
    if not match:
        raise LayerError(f"invalid size {text!r} for {source}: give bytes, or a number with K, M, G or T (as 512M or 10G)")
    power = "kmgtp".find(match[2].lower()) + 1 if match[2] else 0
    return int(float(match[1]) * 1024**power)


def human_size(size: int) -> str:
    """1024-based, as parse_size reads it: 64 GiB, 512 MiB, 100 B."""
    units = ("B", "KiB", "MiB", "GiB", "TiB")
    value, power = float(size), 0
    while value >= 1024 and power < len(units) - 1:
        value /= 1024
        power += 1
    return f"{value:.3g} {units[power]}"


@value
class Limits:
    """What one image may unpack to: uncompressed tar bytes and entries (the decompression-bomb caps)."""

    max_bytes: int = DEFAULT_MAX_BYTES
    max_inodes: int = DEFAULT_MAX_INODES

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Limits:
        """The defaults, with IMAGEKIT_MAX_LAYER_BYTES (e.g. `10G`) as the byte cap when it is set."""
        text = environ.get(MAX_BYTES_ENV, "").strip()
        return cls(max_bytes=parse_size(text, MAX_BYTES_ENV)) if text else cls()


class Budget:
    """The caps' running count across the layers of one image; one per unpack, shared by its layers."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.bytes = 0  # uncompressed tar bytes of the layers finished so far
        self.entries = 0

    def admit(self, name: bytes, layer_bytes: int, what: str) -> None:
        """Counts one entry whose data ends `layer_bytes` into its layer; LayerError past a cap."""
        self.entries += 1
        if self.entries > self.limits.max_inodes:
            raise LayerError(f"{what}: entry {show(name)}: the image has more than {self.limits.max_inodes} entries (the inode cap)")
        if self.bytes + layer_bytes > self.limits.max_bytes:
            raise LayerError(
                f"{what}: entry {show(name)}: the image would unpack to more than {human_size(self.limits.max_bytes)} "
                f"(the size cap; raise it with {MAX_BYTES_ENV} or --max-size)"
            )


@value
class ApplyReport:
    """What one layer did: entries read, uncompressed bytes, and the warnings (also logged)."""

    entries: int
    bytes: int
    warnings: tuple[str, ...]


def apply_layer(
    blob: BinaryIO,
    media_type: str,
    root: Root,
    *,
    budget: Budget | None = None,
    what: str = "layer",
    whiteouts: Whiteouts = "delete",
    diff_id: Digest | None = None,
) -> ApplyReport:
    """Applies the layer `blob` (compressed as `media_type` says) onto `root`; the caller closes `blob`.

    Reads the blob once, as a stream, up to the tar's end (with `diff_id`, to the end of the
    uncompressed stream, which must hash to it); a caller that verifies the blob's digest reads the
    rest. `whiteouts` picks the mode (see the module docstring; "overlay" wants an empty root).
    Raises LayerError (one line, starting with `what` and naming the entry) for an unknown media
    type, a corrupt or truncated stream, an unsafe entry or a passed cap, DigestMismatch for a wrong
    diff_id; the root may then hold part of the layer, which is why callers go through
    imagekit.layers.unpack or imagekit.snapshots.
    """
    codec = compression_of(media_type)
    budget = budget if budget is not None else Budget(Limits.from_env())
    stream = decompressed(blob, codec)
    if diff_id is not None:
        stream = VerifyingReader(stream, diff_id, what=f"{what}: uncompressed content (diff_id)")  # type: ignore[assignment]
    ahead = _ReadAhead(stream, f"{what}: corrupt {codec or 'tar'} stream")
    try:
        reader = TarReader(ahead, what)
        applier = _Applier(root, reader, budget, what, whiteouts)
        for entry in reader:
            applier.apply(entry)
        applier.finish()
        if diff_id is not None:
            _drain(ahead, budget, reader.offset, what)
    finally:
        ahead.close()
    budget.bytes += reader.offset
    return ApplyReport(applier.count, reader.offset, applier.warnings())


def _drain(ahead: _ReadAhead, budget: Budget, offset: int, what: str) -> None:
    """Reads what follows the tar's end (padding, as a rule) so the diff_id covers all of it, within the size cap."""
    trailing = 0
    for chunk in ahead:
        trailing += len(chunk)
        if budget.bytes + offset + trailing > budget.limits.max_bytes:
            raise LayerError(f"{what}: more than {human_size(budget.limits.max_bytes)} of data after the end of the tar archive (the size cap)")


class _ReadAhead:
    """The layer's bytes as chunks, read (and so decompressed and digest-checked) by a second thread.

    Reading, hashing and inflating release the GIL, as writing files does, so on two cores they run
    beside the tar parsing and file writes instead of before them: at most DEPTH chunks ahead, so
    memory stays bounded whatever the layer's size. Read errors reach the reader as one LayerError
    line (a corrupt compressed stream) or as the ImagekitError they are (a digest mismatch).
    """

    DEPTH = 4

    def __init__(self, stream: BinaryIO, what: str) -> None:
        self._what = what
        self._queue: queue.Queue[bytes | BaseException] = queue.Queue(maxsize=self.DEPTH)
        self._stop = threading.Event()
        self._ended = False
        self._thread = threading.Thread(target=self._run, args=(stream,), name="imagekit-layer-read", daemon=True)
        self._thread.start()

    def _run(self, stream: BinaryIO) -> None:
        try:
            while not self._stop.is_set():
                data = stream.read(CHUNK)
                self._put(data)
                if not data:
                    return
        except BaseException as err:  # handed over: the reading thread raises it
            self._put(err)

    def _put(self, item: bytes | BaseException) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def __iter__(self) -> _ReadAhead:
        return self

    def __next__(self) -> bytes:
        if self._ended:
            raise StopIteration
        item = self._queue.get()
        if isinstance(item, BaseException):
            self._ended = True
            if isinstance(item, DECOMPRESS_ERRORS):
                raise LayerError(f"{self._what} ({item})") from item
            raise item
        if not item:
            self._ended = True
            raise StopIteration
        return item

    def close(self) -> None:
        """Stops the reading thread (it may be a few chunks ahead) and waits for it."""
        self._stop.set()
        self._thread.join()


def clean(name: bytes, what: str) -> bytes:
    """An archive path as a clean path relative to the root (b"" for the root itself).

    Leading slashes are dropped (tar, containerd and umoci read `/etc` as `etc`); a path that `..`
    takes above the root is refused, as Docker refuses it.
    """
    if b"\0" in name:
        raise LayerError(f"{what}: entry {show(name)}: NUL byte in the path")
    path = posixpath.normpath(name.lstrip(b"/") or b".")
    if path == b".." or path.startswith(b"../"):
        raise LayerError(f"{what}: entry {show(name)}: the path leaves the root through '..'")
    if len(path) >= PATH_MAX:
        raise LayerError(f"{what}: entry {show(name)}: the name is too long (a path of {PATH_MAX} bytes or more)")
    return b"" if path == b"." else path


def rootless_owner(uid: int, gid: int) -> bytes:
    """The `user.rootlesscontainers` value for an owner: protobuf Resource{uid, gid}, 2^32-1 for 0."""
    return b"\x08" + _varint(uid or _NOOP_ID) + b"\x10" + _varint(gid or _NOOP_ID)


def parse_rootless_owner(value: bytes) -> tuple[int | None, int | None]:
    """(uid, gid) from a `user.rootlesscontainers` value; None for an absent or no-op field (the file's
    own, mapped owner stands) and for a value that is not the protobuf rootless_owner writes."""
    fields: dict[int, int] = {}
    i = 0
    while i < len(value):
        key, i = _read_varint(value, i)
        if key is None or key & 7 != 0:
            return None, None
        number, i = _read_varint(value, i)
        if number is None:
            return None, None
        fields[key >> 3] = number
    uid, gid = fields.get(1), fields.get(2)
    return (None if uid in (None, _NOOP_ID) else uid), (None if gid in (None, _NOOP_ID) else gid)


def _read_varint(data: bytes, i: int) -> tuple[int | None, int]:
    value = shift = 0
    while i < len(data) and shift < 64:
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, i
        shift += 7
    return None, i


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_REASONS = {
    errno.ELOOP: "too many symbolic links on the way (a loop?)",
    errno.ENOTDIR: "a component of the path is not a directory",
    errno.ENAMETOOLONG: "the name is too long for this filesystem",
}


class _Applier:
    """The state of one layer's application: what it unpacked (for opaque whiteouts), the directory
    metadata to set once their children are in, and what it had to skip."""

    def __init__(self, root: Root, reader: TarReader, budget: Budget, what: str, whiteouts: Whiteouts = "delete") -> None:
        self.root = root
        self.reader = reader
        self.budget = budget
        self.what = what
        self.overlay = whiteouts == "overlay"
        self.whited: set[bytes] = set()  # overlay mode: paths this layer turned into whiteouts
        self.privileged = os.geteuid() == 0
        self.count = 0
        self.unpacked: set[bytes] = set()
        self.fixups: dict[bytes, tuple[int, int | None, int | None]] = {}  # dir -> (mode, atime, mtime)
        self.skipped: dict[str, list[bytes]] = {}
        self._handlers: dict[bytes, Callable[[Entry, bytes, int, bytes], None]] = {
            REGTYPE: self._file,
            DIRTYPE: self._directory,
            SYMTYPE: self._symlink,
            LNKTYPE: self._hardlink,
            CHRTYPE: self._node,
            BLKTYPE: self._node,
            FIFOTYPE: self._node,
        }

    # --- entries ----------------------------------------------------------------------------------------
    def apply(self, entry: Entry) -> None:
        self.count += 1
        path = clean(entry.name, self.what)
        self.budget.admit(entry.name, self.reader.offset + (entry.size if entry.type == REGTYPE else 0), self.what)
        handler = self._handlers.get(entry.type)
        if handler is None:
            raise LayerError(f"{self.what}: entry {show(entry.name)}: unsupported tar entry type {entry.type.decode('latin-1')!r}")
        parent_path, name = split(path)
        if (b"/" + parent_path).find(b"/" + WHITEOUT) >= 0:
            raise LayerError(f"{self.what}: entry {show(entry.name)}: a directory named {WHITEOUT.decode()}*: such names are whiteouts, never directories")
        try:
            if self.whited and parent_path:
                self._unwhite(parent_path)
            if name.startswith(WHITEOUT):
                self._whiteout(entry, parent_path, name)
            elif not path:
                self._root_entry(entry)
            else:
                parent = self.root.directory(parent_path, create=True)
                self._writable(parent_path, parent)
                self._mark(path)
                handler(entry, path, parent, name)
        except OSError as err:
            raise LayerError(f"{self.what}: entry {show(entry.name)}: {_REASONS.get(err.errno or 0, err.strerror or str(err))}") from err
        except (ValueError, OverflowError) as err:  # what the os module refuses to pass on (NULs, huge numbers)
            raise LayerError(f"{self.what}: entry {show(entry.name)}: invalid metadata ({err})") from err

    def _file(self, entry: Entry, path: bytes, parent: int, name: bytes) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = self._create(parent, name, lambda: os.open(name, flags, 0o600, dir_fd=parent))
        try:
            self.reader.copy_data(fd)
            self._metadata(entry, path, fd)
        finally:
            os.close(fd)

    def _directory(self, entry: Entry, path: bytes, parent: int, name: bytes) -> None:
        self._create(parent, name, lambda: os.mkdir(name, 0o700, dir_fd=parent), keep_directory=True)
        fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=parent)
        try:
            if path in self.whited:  # whited out, then made again: nothing from below shows through
                self.whited.discard(path)
                os.setxattr(proc_path(fd), overlay_xattr_prefix() + "opaque", b"y")
            self._metadata(entry, path, proc_path(fd), mode=False, times=False)
        finally:
            os.close(fd)
        self.fixups[path] = (self._mode(entry, path), entry.atime_ns, entry.mtime_ns)

    def _root_entry(self, entry: Entry) -> None:
        if entry.type != DIRTYPE:
            raise LayerError(f"{self.what}: entry {show(entry.name)}: the root can only be a directory")
        self._metadata(entry, b"", proc_path(self.root.fd), mode=False, times=False)
        self.fixups[b""] = (self._mode(entry, b""), entry.atime_ns, entry.mtime_ns)

    def _symlink(self, entry: Entry, path: bytes, parent: int, name: bytes) -> None:
        if not entry.linkname or b"\0" in entry.linkname:
            raise LayerError(f"{self.what}: entry {show(entry.name)}: symlink with an empty target or a NUL byte in it")
        self._create(parent, name, lambda: os.symlink(entry.linkname, name, dir_fd=parent))
        self._metadata(entry, path, proc_path(parent, name), mode=False, follow=False)

    def _hardlink(self, entry: Entry, path: bytes, parent: int, name: bytes) -> None:
        target = clean(entry.linkname, self.what)
        if not target or target == path:
            raise LayerError(f"{self.what}: entry {show(entry.name)}: hardlink to {show(entry.linkname)}, which is not a file")
        target_parent, target_name = split(target)

        def link() -> None:
            try:
                source = self.root.directory(target_parent)
                found = os.lstat(target_name, dir_fd=source)
                if self.overlay and is_whiteout(found):
                    raise FileNotFoundError(errno.ENOENT, "whited out", target)
                is_dir = stat.S_ISDIR(found.st_mode)
            except (FileNotFoundError, NotADirectoryError):
                where = "earlier in this layer (extracted alone, it cannot link into the layers below)" if self.overlay else "earlier in this layer or from a lower one"
                raise LayerError(f"{self.what}: entry {show(entry.name)}: hardlink target {show(entry.linkname)} does not exist (it must come {where})") from None
            if is_dir:
                raise LayerError(f"{self.what}: entry {show(entry.name)}: hardlink to the directory {show(entry.linkname)}")
            os.link(target_name, name, src_dir_fd=source, dst_dir_fd=parent, follow_symlinks=False)

        self._create(parent, name, link)

    def _node(self, entry: Entry, path: bytes, parent: int, name: bytes) -> None:
        kind = {CHRTYPE: stat.S_IFCHR, BLKTYPE: stat.S_IFBLK, FIFOTYPE: stat.S_IFIFO}[entry.type]
        if kind != stat.S_IFIFO and not self.privileged:
            self._skip("device nodes (only root may create them)", path)
            return
        device = os.makedev(entry.devmajor, entry.devminor) if kind != stat.S_IFIFO else 0
        try:
            self._create(parent, name, lambda: os.mknod(name, kind | 0o600, device, dir_fd=parent))
        except PermissionError:  # root in a user namespace may not make devices either
            self._skip("device nodes (not permitted here)", path)
            return
        fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
        try:
            self._metadata(entry, path, proc_path(fd))
        finally:
            os.close(fd)

    def _whiteout(self, entry: Entry, parent_path: bytes, name: bytes) -> None:
        """`.wh.NAME` deletes NAME; `.wh..wh..opq` empties its directory of what lower layers put there.
        Neither is written; other `.wh..wh.` names (aufs bookkeeping) are ignored, as Docker ignores them.
        In overlay mode they become overlayfs' markers instead (see the module docstring)."""
        if self.overlay:
            self._overlay_whiteout(entry, parent_path, name)
            return
        if name == OPAQUE:
            directory = self.root.directory(parent_path, create=True)
            self._writable(parent_path, directory)
            self._mark(parent_path)
            prefix = parent_path + b"/" if parent_path else b""
            doomed = [child for child in os.listdir(proc_path(directory)) if prefix + child not in self.unpacked]
            for child in doomed:
                remove(directory, child)
            if doomed:
                self.root.forget(keep=directory)
            return
        if name.startswith(WHITEOUT + WHITEOUT):
            return
        target = name[len(WHITEOUT) :]
        if target in (b".", b".."):
            raise LayerError(f"{self.what}: entry {show(entry.name)}: invalid whiteout")
        try:
            directory = self.root.directory(parent_path)
        except (FileNotFoundError, NotADirectoryError):
            return  # nothing there to delete
        self._writable(parent_path, directory)
        remove(directory, target)
        self.root.forget(keep=directory)

    def _overlay_whiteout(self, entry: Entry, parent_path: bytes, name: bytes) -> None:
        if name.startswith(WHITEOUT + WHITEOUT) and name != OPAQUE:
            return
        target = name[len(WHITEOUT) :]
        if target in (b".", b".."):
            raise LayerError(f"{self.what}: entry {show(entry.name)}: invalid whiteout")
        directory = self.root.directory(parent_path, create=True)  # the directory may come from a lower layer
        self._writable(parent_path, directory)
        if name == OPAQUE:
            os.setxattr(proc_path(directory), overlay_xattr_prefix() + "opaque", b"y")
            return
        self._create(directory, target, lambda: os.mknod(target, stat.S_IFCHR | 0o600, 0, dir_fd=directory))
        self.whited.add(parent_path + b"/" + target if parent_path else target)

    def _unwhite(self, path: bytes) -> None:
        """Overlay mode: a path this layer whited out holds later entries, so it is a directory again, opaque."""
        parts = path.split(b"/")
        for depth in range(1, len(parts) + 1):
            prefix = b"/".join(parts[:depth])
            if prefix in self.whited:
                parent, name = self.root.parent(prefix)
                if not is_whiteout(os.lstat(name, dir_fd=parent)):
                    continue  # something this layer put there since: it stands as it is
                remove(parent, name)
                self.root.forget(keep=parent)
                os.mkdir(name, IMPLICIT_DIR_MODE, dir_fd=parent)
                os.chmod(proc_path(parent, name), IMPLICIT_DIR_MODE)
                os.setxattr(proc_path(parent, name), overlay_xattr_prefix() + "opaque", b"y")
                self.whited.discard(prefix)

    # --- helpers ----------------------------------------------------------------------------------------
    def _create(self, parent: int, name: bytes, make: Callable[[], T], *, keep_directory: bool = False) -> T | None:
        """make() creates `name` in `parent`; if something is in the way it is removed first (a
        directory meeting a directory stays), as Docker and containerd replace."""
        try:
            return make()
        except FileExistsError:
            if keep_directory and stat.S_ISDIR(os.lstat(name, dir_fd=parent).st_mode):
                return None
            remove(parent, name)
            self.root.forget(keep=parent)
            return make()

    def _mark(self, path: bytes) -> None:
        """Records `path` and its parents as this layer's (an opaque whiteout keeps them)."""
        while path not in self.unpacked:
            self.unpacked.add(path)
            if not path:
                return
            path = split(path)[0]

    def _writable(self, path: bytes, fd: int) -> None:
        """Rootless: opens up a directory we must change (0555 from a lower layer); restored at the end."""
        if not self.privileged:
            mode = writable(fd)
            if mode is not None:
                self.fixups.setdefault(path, (mode, None, None))

    def _mode(self, entry: Entry, path: bytes) -> int:
        if self.privileged or not entry.mode & (stat.S_ISUID | stat.S_ISGID):
            return entry.mode
        self._skip("setuid/setgid bits (only root may keep them)", path)
        return entry.mode & ~(stat.S_ISUID | stat.S_ISGID)

    def _metadata(self, entry: Entry, path: bytes, target: int | bytes, *, mode: bool = True, times: bool = True, follow: bool = True) -> None:
        """Owner, then xattrs (chown clears security.capability), then mode, then times, on `target`:
        a descriptor, or a path the kernel resolves to exactly this entry (follow=False for symlinks)."""
        self._owner(entry, path, target, follow)
        for key, value in entry.xattrs:
            if key == ROOTLESS_XATTR:
                self._skip(f"{ROOTLESS_XATTR} xattrs in the layer (imagekit writes its own)", path)
                continue
            if self.overlay and key.startswith(_OVERLAY_XATTRS):
                self._skip("overlayfs xattrs in the layer (they would steer the overlay mount)", path)
                continue
            self._xattr(path, target, key, value, follow)
        if mode:
            os.chmod(target, self._mode(entry, path))
        if times:
            os.utime(target, ns=(entry.atime_ns if entry.atime_ns is not None else entry.mtime_ns, entry.mtime_ns), follow_symlinks=follow)

    def _owner(self, entry: Entry, path: bytes, target: int | bytes, follow: bool) -> None:
        if self.privileged:
            try:
                os.chown(target, entry.uid, entry.gid, follow_symlinks=follow)
                return
            except OSError as err:  # root in a user namespace: owners outside its map
                if err.errno not in (errno.EPERM, errno.EINVAL):
                    raise
                self._skip(f"owners (cannot chown here; kept in the {ROOTLESS_XATTR} xattr)", path)
        if entry.uid or entry.gid:
            self._xattr(path, target, ROOTLESS_XATTR, rootless_owner(entry.uid, entry.gid), follow)

    def _xattr(self, path: bytes, target: int | bytes, key: str, value: bytes, follow: bool) -> None:
        try:
            os.setxattr(target, key, value, follow_symlinks=follow)
        except OSError as err:
            if err.errno not in _NOT_SUPPORTED:
                raise
            if follow or not key.startswith("user."):  # user.* xattrs never go on symlinks: nothing lost to report
                self._skip(f"xattrs this filesystem or user may not set ({key.split('.')[0]}.*)", path)

    def _skip(self, kind: str, path: bytes) -> None:
        self.skipped.setdefault(kind, []).append(path)

    def finish(self) -> None:
        """Sets the deferred directory modes and times, deepest first, once nothing more goes inside."""
        for path in sorted(self.fixups, key=lambda p: p.count(b"/") + bool(p), reverse=True):
            mode, atime, mtime = self.fixups[path]
            try:
                if path:
                    parent, name = self.root.parent(path)
                    fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=parent)
                else:
                    fd = os.dup(self.root.fd)
            except OSError as err:
                if err.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
                    continue  # removed or replaced by a non-directory later in the layer
                raise LayerError(f"{self.what}: directory {show(path or b'.')}: {err.strerror}") from err
            try:
                os.chmod(proc_path(fd), mode)
                if mtime is not None:
                    os.utime(proc_path(fd), ns=(atime if atime is not None else mtime, mtime))
            except OSError as err:
                raise LayerError(f"{self.what}: directory {show(path or b'.')}: {err.strerror}") from err
            finally:
                os.close(fd)

    def warnings(self) -> tuple[str, ...]:
        found = []
        for kind, paths in self.skipped.items():
            shown = ", ".join(show(p or b".", 60) for p in paths[:3]) + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")
            found.append(f"{self.what}: skipped {kind}: {shown}")
        for message in found:
            log.warning("%s", message)
        return tuple(found)
