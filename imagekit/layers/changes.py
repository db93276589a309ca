"""What a layer contains: the members of a whole tree, of an overlayfs upper directory, or of the
difference between two snapshots, in the one deterministic order every layer is written in.

Order: depth first with each directory's entries sorted by name bytes, so a parent always comes before
its children and the same tree gives the same sequence on every machine (directory order, inode
numbers and creation order never show). Within a directory the opaque marker, then the whiteouts,
come before the other entries (image-spec layer.md: whiteouts SHOULD precede sibling entries).
The first occurrence of an inode in that order carries the content; later ones are tar hardlinks to it.
The root directory itself is not a member (as in the layers Docker and BuildKit write).

Whiteouts (image-spec layer.md, "Whiteouts") are empty regular files owned by 0:0 with mode 0 and
mtime 0, so they too are the same everywhere. overlayfs' own markers become these: a 0/0 character
device is a deleted path, a directory with `trusted.overlay.opaque=y` (`user.overlay.opaque=y` under
`userxattr`) was replaced wholesale. overlayfs' bookkeeping xattrs (`*.overlay.*`) and the host's
SELinux label (`security.selinux`) are never written: they describe the host, not the image.

Reading is streaming: only one directory listing per level of depth is held, never the whole tree.
An unreadable or vanishing path is a one-line LayerError when the iterator reaches it.

Imports: stdlib, imagekit.errors, imagekit.layers.tarformat.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Iterable, Iterator
from functools import partial

from imagekit.errors import LayerError
from imagekit.layers.apply import ROOTLESS_XATTR, parse_rootless_owner
from imagekit.layers.tarformat import (
    BLKTYPE,
    CHRTYPE,
    DIRTYPE,
    FIFOTYPE,
    LNKTYPE,
    OPAQUE,
    REGTYPE,
    SYMTYPE,
    WHITEOUT_PREFIX,
    Member,
    show,
)
from imagekit.values import replace, value

_HIDDEN_XATTRS = ("trusted.overlay.", "user.overlay.", "security.selinux")
#: overlayfs features whose upper directory is not a self-contained changeset (content left in lower).
_UNSUPPORTED_OVERLAY = {"redirect": "redirect_dir", "metacopy": "metacopy"}
_TYPES = {
    stat.S_IFREG: REGTYPE,
    stat.S_IFDIR: DIRTYPE,
    stat.S_IFLNK: SYMTYPE,
    stat.S_IFCHR: CHRTYPE,
    stat.S_IFBLK: BLKTYPE,
    stat.S_IFIFO: FIFOTYPE,
}
Xattrs = tuple[tuple[str, bytes], ...]


def tree(root: str | os.PathLike[str]) -> Iterator[Member]:
    """Every path below `root` (a rootfs), in layer order. Sockets are left out: tar cannot hold them."""
    top = _directory(root)
    return _depth_first(_tree_items(top, b""))


def overlay_upper(upper: str | os.PathLike[str]) -> Iterator[Member]:
    """The changeset an overlayfs upper directory records, with overlay's markers turned into OCI whiteouts.

    Read it after the overlay is unmounted (or at least quiet). An upper directory written with
    `redirect_dir` or `metacopy` on leaves content in the lower layers and is refused.
    """
    top = _directory(upper)
    return _depth_first(_upper_items(top, b""))


def snapshot_diff(before: str | os.PathLike[str], after: str | os.PathLike[str]) -> Iterator[Member]:
    """The changeset that turns tree `before` into tree `after`, for where overlayfs is unavailable.

    A path gone from `after` becomes a whiteout; a directory refilled with none of its old entries (as
    after `rm -rf d; mkdir d; ...`) gets an opaque marker instead, and so does a directory that replaced
    another type, as overlayfs writes them. A new path, a changed one, or one whose type changed is
    written whole (a new directory with everything below it); the directories above any change are
    written too.
    "Changed" means type, mode, owner, size, mtime (to the nanosecond), device number, link target
    or xattrs differ: like Docker's and kaniko's default, content is not compared, so a rewrite that
    keeps size and mtime exactly (`touch -r`) is not seen.
    """
    old, new = _directory(before), _directory(after)
    return _depth_first(_diff_items(old, new, b""))


def as_container_root(members: Iterable[Member], uid: int, gid: int) -> Iterator[Member]:
    """The members of a tree written by a rootless container, with the owners the container saw: the
    caller's `uid`/`gid` (mapped to root inside) become 0, and an owner recorded in umoci's
    `user.rootlesscontainers` xattr (by a rootless extraction or copy) wins; that xattr is not kept."""
    for member in members:
        recorded = dict(member.xattrs).get(ROOTLESS_XATTR)
        owner_uid, owner_gid = parse_rootless_owner(recorded) if recorded is not None else (None, None)
        yield replace(
            member,
            uid=owner_uid if owner_uid is not None else (0 if member.uid == uid else member.uid),
            gid=owner_gid if owner_gid is not None else (0 if member.gid == gid else member.gid),
            xattrs=tuple(x for x in member.xattrs if x[0] != ROOTLESS_XATTR),
        )


def unreadable(err: OSError) -> LayerError:
    """The one-line LayerError for an OS error met while reading the source of a layer."""
    path = show(err.filename if isinstance(err.filename, bytes) else os.fsencode(err.filename or "?"))
    if err.errno == errno.ENOENT:
        return LayerError(f"{path} vanished while the layer was being written")
    return LayerError(f"cannot read {path} for a layer: {err.strerror or err}")


@value
class _Item:
    """One entry of a directory listing: its member and, for a directory, how to list what is below.

    `inode` is set for a non-directory with several links, so the walk can write later ones as tar
    hardlinks. A `pending` directory is written only if something below it is (a parent of changes).
    """

    member: Member
    children: Callable[[], Iterator[_Item]] | None = None
    pending: bool = False
    inode: tuple[int, int] | None = None


def _depth_first(top: Iterator[_Item]) -> Iterator[Member]:
    """Members in layer order: each item, then (if a directory) its children, without recursion.

    Pending directories wait on the stack until a member below them is written, then go first.
    """
    listings: list[Iterator[_Item]] = [top]
    waiting: list[Member | None] = [None]  # per listing: its pending directory, until written
    links: dict[tuple[int, int], bytes] = {}
    while listings:
        try:
            item = next(listings[-1], None)
        except OSError as err:
            raise unreadable(err) from err
        if item is None:
            listings.pop()
            waiting.pop()
            continue
        member = item.member
        if not item.pending:
            for depth, parent in enumerate(waiting):
                if parent is not None:
                    yield parent
                    waiting[depth] = None
            if item.inode is not None:
                if item.inode in links:
                    member = _hardlink(member, links[item.inode])
                else:
                    links[item.inode] = member.name
            yield member
        if item.children is not None:
            listings.append(item.children())
            waiting.append(member if item.pending else None)


def _tree_items(path: bytes, name: bytes, opaque: bool = False) -> Iterator[_Item]:
    if opaque:
        yield _Item(_whiteout(_join(name, OPAQUE)))
    for child in _listdir(path):
        child_path, child_name = path + b"/" + child, _join(name, child)
        item = _item(child_path, child_name, os.lstat(child_path), partial(_tree_items, child_path, child_name))
        if item is not None:
            yield item


def _upper_items(path: bytes, name: bytes, opaque: bool = False) -> Iterator[_Item]:
    if opaque:
        yield _Item(_whiteout(_join(name, OPAQUE)))
    entries = [(child, os.lstat(path + b"/" + child)) for child in _listdir(path)]
    deleted = {child for child, st in entries if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0}  # overlay's whiteouts
    for child in sorted(deleted):
        yield _Item(_whiteout(_join(name, WHITEOUT_PREFIX + child)))
    for child, st in entries:
        if child in deleted:
            continue
        child_path, child_name = path + b"/" + child, _join(name, child)
        xattrs = read_xattrs(child_path)
        _check_overlay(child_path, xattrs)
        opaque_dir = any(key.endswith(".overlay.opaque") and value == b"y" for key, value in xattrs)
        item = _item(child_path, child_name, st, partial(_upper_items, child_path, child_name, opaque_dir), xattrs)
        if item is not None:
            yield item


def _diff_items(before: bytes, after: bytes, name: bytes) -> Iterator[_Item]:
    old = {child: os.lstat(before + b"/" + child) for child in _listdir(before)}
    new = [(child, os.lstat(after + b"/" + child)) for child in _listdir(after)]
    gone = sorted(old.keys() - {child for child, _ in new})
    if old and len(gone) == len(old) and new:
        yield _Item(_whiteout(_join(name, OPAQUE)))
    else:
        for child in gone:
            yield _Item(_whiteout(_join(name, WHITEOUT_PREFIX + child)))
    for child, st in new:
        old_path, new_path, child_name = before + b"/" + child, after + b"/" + child, _join(name, child)
        was = old.get(child)
        if was is not None and stat.S_ISDIR(was.st_mode) and stat.S_ISDIR(st.st_mode):
            item = _item(new_path, child_name, st, partial(_diff_items, old_path, new_path, child_name))
            if item is not None:
                yield replace(item, pending=not _differs(old_path, was, new_path, st))
        elif was is None or stat.S_IFMT(was.st_mode) != stat.S_IFMT(st.st_mode) or _differs(old_path, was, new_path, st):
            item = _item(new_path, child_name, st, partial(_tree_items, new_path, child_name, was is not None))
            if item is not None:
                yield item


def _differs(old_path: bytes, old: os.stat_result, new_path: bytes, new: os.stat_result) -> bool:
    """Whether a path's metadata (not its content: see snapshot_diff) differs between the snapshots."""
    if (old.st_mode, old.st_uid, old.st_gid, old.st_mtime_ns, old.st_rdev) != (
        new.st_mode,
        new.st_uid,
        new.st_gid,
        new.st_mtime_ns,
        new.st_rdev,
    ):
        return True
    if not stat.S_ISDIR(new.st_mode) and old.st_size != new.st_size:
        return True
    if stat.S_ISLNK(new.st_mode) and os.readlink(old_path) != os.readlink(new_path):
        return True
    return _kept(read_xattrs(old_path)) != _kept(read_xattrs(new_path))


def _item(
    path: bytes, name: bytes, st: os.stat_result, children: Callable[[], Iterator[_Item]], xattrs: Xattrs | None = None
) -> _Item | None:
    """The listing entry for `path` (`children` lists a directory's entries); None for a socket."""
    kind = _TYPES.get(stat.S_IFMT(st.st_mode))
    if kind is None:
        return None
    if name.rpartition(b"/")[2].startswith(WHITEOUT_PREFIX):
        raise LayerError(f"{show(path)}: names starting with '.wh.' are reserved for whiteouts and cannot be in a layer")
    member = Member(
        name=name,
        type=kind,
        mode=stat.S_IMODE(st.st_mode),
        uid=st.st_uid,
        gid=st.st_gid,
        mtime=st.st_mtime_ns // 1_000_000_000,
        xattrs=_kept(read_xattrs(path) if xattrs is None else xattrs),
    )
    if kind == DIRTYPE:
        return _Item(member, children=children)
    if kind == REGTYPE:
        member = replace(member, size=st.st_size, source=path)
    elif kind == SYMTYPE:
        member = replace(member, linkname=os.readlink(path))
    elif kind in (CHRTYPE, BLKTYPE):
        member = replace(member, devmajor=os.major(st.st_rdev), devminor=os.minor(st.st_rdev))
    return _Item(member, inode=(st.st_dev, st.st_ino) if st.st_nlink > 1 else None)


def _hardlink(member: Member, target: bytes) -> Member:
    return replace(member, type=LNKTYPE, linkname=target, size=0, source=None, devmajor=0, devminor=0, xattrs=())


def _whiteout(name: bytes) -> Member:
    return Member(name=name, type=REGTYPE, mode=0)


def _check_overlay(path: bytes, xattrs: Xattrs) -> None:
    for key, _ in xattrs:
        feature = _UNSUPPORTED_OVERLAY.get(key.rpartition(".overlay.")[2]) if ".overlay." in key else None
        if feature:
            raise LayerError(
                f"{show(path)} was written by overlayfs with {feature}=on, which leaves its content in the lower layers; "
                f"mount the overlay with {feature}=off"
            )


def _kept(xattrs: Xattrs) -> Xattrs:
    return tuple((key, value) for key, value in xattrs if not key.startswith(_HIDDEN_XATTRS))


def read_xattrs(path: bytes | str) -> Xattrs:
    """All xattrs of `path` (not following a symlink), sorted; none where the filesystem has none."""
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError as err:
        if err.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
            return ()
        raise
    return tuple(sorted((key, os.getxattr(path, key, follow_symlinks=False)) for key in names))


def _listdir(path: bytes) -> list[bytes]:
    return sorted(os.listdir(path))


def _join(parent: bytes, child: bytes) -> bytes:
    return parent + b"/" + child if parent else child


def _directory(path: str | os.PathLike[str]) -> bytes:
    raw = os.fsencode(path)
    try:
        if stat.S_ISDIR(os.stat(raw).st_mode):
            return raw
    except OSError as err:
        raise unreadable(err) from err
    raise LayerError(f"{show(raw)} is not a directory")
