"""COPY and ADD, second half: a CopyPlan written into an image root, with BuildKit's (fsutil's) rules.

Runs in the builder's forked child, whose mount namespace has the step's rootfs at `root`; the
context and staging files are read from their host paths. Every path inside the image resolves
through imagekit.layers.rootfs.Root (openat2 RESOLVE_IN_ROOT): a symlink in the image, `/dest ->
/../../etc`, means ROOT/etc, never the host's. Names are then created with O_EXCL/O_NOFOLLOW calls
relative to their parent's descriptor.

The rules (tonistiigi/fsutil copy.Copy, as BuildKit's file op calls it):
- the destination (or, for a file into a destination not named as a directory, its parent) is
  created with its missing parents: mode 0755, owned by the --chown owner (else 0:0);
- a directory source copies its contents into the destination (created when missing, an error
  when a non-directory is there); the contents keep mode, mtime and (for --from) owner, with
  existing directories' metadata overwritten;
- a file goes inside the destination when that is a directory (after following in-root symlinks),
  else it becomes the destination, written through a symlink there (resolved inside the root);
  inside a copied directory a file replaces a file or symlink, never a directory;
- `--chmod` replaces the mode of everything copied, `--chown` the owner of everything copied and
  of every directory created; symlinks are copied as symlinks;
- an ADD archive is extracted into the destination directory by the layer applier (owners from
  the archive; no path leaves the destination).

Imports: stdlib, imagekit.errors, oci, users, imagekit.layers (apply, compression, rootfs), and the
plan's types from imagekit.builder (context.Node, copy_plan). Never a context walk: all is in the plan.
"""

from __future__ import annotations

import errno
import os
import posixpath
import stat

from imagekit.builder.context import Node
from imagekit.builder.copy_plan import CopyPlan, Source
from imagekit.errors import LayerError, UnknownUser
from imagekit.layers.apply import apply_layer
from imagekit.layers.compression import MEDIA_TYPES, decompressed, sniff
from imagekit.layers.rootfs import IMPLICIT_DIR_MODE, Root, proc_path, split
from imagekit.oci import OCI_LAYER
from imagekit.users import resolve_owner

_DIR_FLAGS = os.O_PATH | os.O_NOFOLLOW | os.O_DIRECTORY | os.O_CLOEXEC
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_SEND = 1 << 30
_MAX_SYMLINKS = 40
_XATTR_REFUSED = (errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM, errno.EACCES, errno.EINVAL, errno.ERANGE)


def owner_for(root: str, plan: CopyPlan) -> tuple[int, int] | None:
    """The --chown owner of `plan` resolved against the image at `root` (BuildKit's rules, see
    imagekit.users.owner), or None without --chown. Call it before apply(), which may replace
    /etc/passwd itself. BuildError naming the line for an unknown user or group."""
    if not plan.chown:
        return None
    try:
        return resolve_owner(root, plan.chown)
    except UnknownUser as err:
        raise plan.error(f"{plan.keyword} --chown={plan.chown}: {err}") from None


def apply(root: str, plan: CopyPlan, owner: tuple[int, int] | None) -> None:
    """Writes `plan` into the directory `root` (the image's rootfs); `owner` (uid, gid) is --chown's,
    resolved against the image, or None (copied files keep the plan's owners: 0:0 from the context).

    Raises BuildError naming the plan's line; the root may then hold part of the step (the builder
    discards the step's upper directory).
    """
    try:
        with Root(root) as tree:
            _Writer(tree, plan, owner).run()
    except LayerError as err:
        raise plan.error(str(err)) from err
    except OSError as err:
        where = os.fsdecode(err.filename) if isinstance(err.filename, (str, bytes)) else plan.dest
        raise plan.error(f"{plan.keyword} to {plan.dest}: {where}: {err.strerror or err}") from err


def _join(base: bytes, name: str) -> bytes:
    """`base/name` as a clean relative path; an empty name (the context itself) is `base`."""
    encoded = os.fsencode(name)
    if not encoded:
        return base
    return posixpath.join(base, encoded) if base else encoded


def _shown(path: bytes) -> str:
    return "/" + os.fsdecode(path)


class _Writer:
    """One plan's writes: the directories whose mode and times wait until their contents are in."""

    def __init__(self, tree: Root, plan: CopyPlan, owner: tuple[int, int] | None) -> None:
        self.tree = tree
        self.plan = plan
        self.owner = owner
        self.deferred: list[tuple[bytes, int, int]] = []  # (path, mode, mtime_ns) of copied directories

    def run(self) -> None:
        dest = os.fsencode(self.plan.dest.lstrip("/"))
        self.mkdir_p(dest if self.plan.into else split(dest)[0])
        for source in self.plan.sources:
            self.source(dest, source)
        for path, mode, mtime_ns in sorted(self.deferred, key=lambda item: item[0].count(b"/"), reverse=True):
            fd = self.open_dir(path)
            try:
                os.chmod(proc_path(fd), mode)
                os.utime(proc_path(fd), ns=(mtime_ns, mtime_ns))
            finally:
                os.close(fd)

    # --- where things go -----------------------------------------------------------------------------
    def source(self, dest: bytes, source: Source) -> None:
        top = source.nodes[0]
        if self.plan.parents:
            for node in source.parents:
                self.directory(_join(dest, node.path), node)
            target = _join(_join(dest, source.parents[-1].path) if source.parents else dest, source.name)
            self.node(target, top)
            self.contents(target, source.nodes[1:])
            return
        if source.unpack:
            self.mkdir_p(dest)
            self.extract(dest, top, source.name)
            return
        kind = self.kind(dest)
        if source.is_dir:
            if kind is None:
                self.mkdir_p(dest)
            elif kind != "dir":
                raise self.plan.error(f"{self.plan.keyword}: cannot copy a directory to {_shown(dest)}: it is not a directory")
            self.contents(dest, source.nodes[1:])
            return
        if kind == "dir":
            self.node(_join(dest, source.name), top)
            return
        target = self.follow(dest)  # fsutil resolves the destination itself: a symlink there is written through
        self.mkdir_p(split(target)[0])
        self.node(target, top)

    def contents(self, base: bytes, nodes: tuple[Node, ...]) -> None:
        for node in nodes:
            self.node(_join(base, node.path), node)

    def node(self, target: bytes, node: Node) -> None:
        if node.kind == "dir":
            self.directory(target, node)
        elif node.kind == "symlink":
            self.symlink(target, node)
        else:
            self.file(target, node)

    # --- the root as it is ---------------------------------------------------------------------------
    def kind(self, path: bytes) -> str | None:
        """"dir" when `path` resolves (in the root) to a directory, "other" when it is something else, None when absent."""
        try:
            self.tree.directory(path)
            return "dir"
        except FileNotFoundError:
            return None
        except OSError as err:
            if err.errno in (errno.ENOTDIR, errno.ELOOP):
                return "other"
            raise

    def follow(self, path: bytes) -> bytes:
        """`path` with the symlinks at its end followed inside the root (containerd's fs.RootPath on a
        destination): a relative target is joined to the link's directory and an absolute one starts
        at the root; the kernel (openat2 RESOLVE_IN_ROOT) does the rest, `..` included, when it is used."""
        for _ in range(_MAX_SYMLINKS):
            try:
                parent, name = self.tree.parent(path)
                info = os.lstat(name, dir_fd=parent)
            except FileNotFoundError:
                return path
            if not stat.S_ISLNK(info.st_mode):
                return path
            link = os.readlink(name, dir_fd=parent)
            path = link.lstrip(b"/") if link.startswith(b"/") else _join(split(path)[0], os.fsdecode(link))
        raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)

    def open_dir(self, path: bytes) -> int:
        """An owned O_PATH descriptor of the directory `path` itself (its last component not followed)."""
        if not path:
            return os.dup(self.tree.fd)
        parent, name = self.tree.parent(path)
        return os.open(name, _DIR_FLAGS, dir_fd=parent)

    def ids(self, node: Node | None) -> tuple[int, int]:
        if self.owner is not None:
            return self.owner
        return (node.uid, node.gid) if node is not None else (0, 0)

    def mode(self, node: Node) -> int:
        return node.mode if self.plan.chmod is None else self.plan.chmod

    # --- writes --------------------------------------------------------------------------------------
    def mkdir_p(self, path: bytes) -> None:
        """Creates the missing directories of `path`: 0755, owned by the --chown owner (fsutil's MkdirAll).

        A dangling symlink on the way is followed inside the root and created where it leads.
        """
        parts = path.split(b"/") if path else []
        for depth in range(1, len(parts) + 1):
            here = b"/".join(parts[:depth])
            if self.kind(here) == "dir":
                continue
            parent, name = self.tree.parent(here)
            try:
                os.mkdir(name, IMPLICIT_DIR_MODE, dir_fd=parent)
            except FileExistsError:
                if not stat.S_ISLNK(os.lstat(name, dir_fd=parent).st_mode):
                    raise self.plan.error(f"{self.plan.keyword}: cannot create directory {_shown(here)}: a file is in the way") from None
                self.tree.directory(here, create=True)
                continue
            fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
            try:
                os.chown(proc_path(fd), *self.ids(None))
                os.chmod(proc_path(fd), IMPLICIT_DIR_MODE)
            finally:
                os.close(fd)

    def clear(self, target: bytes) -> tuple[int, bytes]:
        """(parent descriptor, name) of `target`, with a file or symlink already there removed
        (fsutil's ensureEmptyFileTarget: a directory there is an error)."""
        parent, name = self.tree.parent(target)
        try:
            info = os.lstat(name, dir_fd=parent)
        except FileNotFoundError:
            return parent, name
        if stat.S_ISDIR(info.st_mode):
            raise self.plan.error(f"{self.plan.keyword}: cannot replace the directory {_shown(target)} with a file")
        os.unlink(name, dir_fd=parent)
        self.tree.forget(keep=parent)
        return parent, name

    def directory(self, target: bytes, node: Node) -> None:
        parent, name = self.tree.parent(target)
        try:
            os.mkdir(name, 0o700, dir_fd=parent)
        except FileExistsError:
            if not stat.S_ISDIR(os.lstat(name, dir_fd=parent).st_mode):
                raise self.plan.error(f"{self.plan.keyword}: cannot copy to non-directory: {_shown(target)}") from None
        fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
        try:
            os.chown(proc_path(fd), *self.ids(node))
            _set_xattrs(proc_path(fd), node)
        finally:
            os.close(fd)
        self.deferred.append((target, self.mode(node), node.mtime_ns))

    def file(self, target: bytes, node: Node) -> None:
        parent, name = self.clear(target)
        fd = os.open(name, _NEW_FILE, 0o600, dir_fd=parent)
        try:
            if node.host:
                source = os.open(node.host, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
                try:
                    _copy(source, fd)
                finally:
                    os.close(source)
            else:
                view = memoryview(node.data)
                while view:
                    view = view[os.write(fd, view) :]
            os.fchown(fd, *self.ids(node))
            _set_xattrs(fd, node)  # after chown, which clears security.capability
            os.fchmod(fd, self.mode(node))  # after chown, which clears setuid bits
            os.utime(fd, ns=(node.mtime_ns, node.mtime_ns))
        finally:
            os.close(fd)

    def symlink(self, target: bytes, node: Node) -> None:
        parent, name = self.clear(target)
        os.symlink(node.link, name, dir_fd=parent)
        os.chown(name, *self.ids(node), dir_fd=parent, follow_symlinks=False)
        os.utime(name, ns=(node.mtime_ns, node.mtime_ns), dir_fd=parent, follow_symlinks=False)

    def extract(self, dest: bytes, node: Node, name: str) -> None:
        """ADD archive: its entries applied under `dest` by the layer applier, rooted there."""
        fd = self.tree.directory(dest)
        with open(node.host, "rb") as handle, Root(proc_path(fd)) as inside:
            codec = sniff(handle.read(8))
            handle.seek(0)
            what = f"{self.plan.keyword} {name}"
            if codec in MEDIA_TYPES:  # gzip, zstd: the applier's own reader (and its cut-stream checks)
                apply_layer(handle, MEDIA_TYPES[codec], inside, what=what)
            else:
                apply_layer(decompressed(handle, codec), OCI_LAYER, inside, what=what)


def _set_xattrs(target: int | bytes, node: Node) -> None:
    """The node's extended attributes on `target`; those this filesystem or kernel refuses are skipped,
    as BuildKit's copy allows xattr errors."""
    for name, value in node.xattrs:
        try:
            os.setxattr(target, name, value)
        except OSError as err:
            if err.errno not in _XATTR_REFUSED:
                raise


def _copy(source: int, out: int) -> None:
    """All of `source` into `out`, in the kernel where it can (sendfile), else through a buffer."""
    try:
        while os.sendfile(out, source, None, _SEND):
            pass
        return
    except OSError as err:
        if err.errno not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
            raise
    while chunk := os.read(source, 1 << 20):
        view = memoryview(chunk)
        while view:
            view = view[os.write(out, view) :]
