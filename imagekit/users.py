"""Users and groups of an image: `USER`/`-u` specs and `--chown` specs to numeric ids, read from its /etc.

Owns the two lookups the builder and the runner make against an image's root filesystem:
- `resolve_user(root, spec)`: what a process started as `spec` runs as, with runc's (and so
  Docker's) rules from libcontainer/user.GetExecUser: `name`, `uid`, `name:group`, `uid:gid`; a
  uid without a passwd entry is fine (gid 0), an unknown name is not; supplementary groups are the
  /etc/group entries listing the user, and only when no group was named.
- `resolve_owner(root, spec)`: the owner `COPY --chown` gives, with BuildKit's rules: a name takes
  uid *and* primary gid from /etc/passwd, a bare numeric uid is also the gid; `:group` overrides.

The image is untrusted: /etc/passwd and /etc/group are opened from a descriptor of the root one
component at a time with O_NOFOLLOW, their symlinks followed by hand inside the root (as a chroot
would), so `etc -> /../../host/etc` reads ROOT/host/etc, never the host's. Files are read up to a cap.

Imports: stdlib and imagekit.errors only (a leaf: the runner and the builder both use it).
"""

from __future__ import annotations

import errno
import os
import stat

from imagekit.errors import UnknownUser
from imagekit.values import value

#: runc's bounds: ids are non-negative int32 (user.minID/maxID).
MAX_ID = 2**31 - 1
#: The most of /etc/passwd or /etc/group read; real ones are kilobytes, hostile ones could be anything.
MAX_FILE_BYTES = 16 << 20
_MAX_SYMLINKS = 40
_PATH_FLAGS = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC


@value
class PasswdEntry:
    """One /etc/passwd line (the fields a lookup needs)."""

    name: str
    uid: int
    gid: int


@value
class GroupEntry:
    """One /etc/group line: name, gid and member names."""

    name: str
    gid: int
    members: tuple[str, ...]


@value
class ExecUser:
    """What a process runs as: uid, gid and the supplementary gids (in /etc/group order)."""

    uid: int
    gid: int
    groups: tuple[int, ...] = ()


def _number(text: str) -> int | None:
    """Go's strconv.Atoi for what id fields hold: decimal, optional sign; None when not a number."""
    body = text[1:] if text[:1] in "+-" else text
    if not body.isascii() or not body.isdigit():
        return None
    return int(text)


def _checked(value: int, spec: str) -> int:
    if not 0 <= value <= MAX_ID:
        raise UnknownUser(f"invalid user {spec!r}: uids and gids must be in range 0-{MAX_ID}")
    return value


def _records(text: str, fields: int) -> list[list[str]]:
    """The colon-separated lines of a passwd/group text with at least `fields` fields, comments skipped."""
    return [parts for line in text.splitlines() if not line.lstrip().startswith("#") and len(parts := line.strip().split(":")) >= fields]


def parse_passwd(text: str) -> list[PasswdEntry]:
    """Entries of an /etc/passwd text; lines without numeric ids are skipped (runc would read them as 0)."""
    entries = []
    for fields in _records(text, 4):
        uid, gid = _number(fields[2]), _number(fields[3])
        if uid is not None and gid is not None:
            entries.append(PasswdEntry(fields[0], uid, gid))
    return entries


def parse_group(text: str) -> list[GroupEntry]:
    """Entries of an /etc/group text (name:password:gid:member,member)."""
    entries = []
    for fields in _records(text, 3):
        gid = _number(fields[2])
        if gid is not None:
            members = tuple(m for m in fields[3].split(",") if m) if len(fields) > 3 else ()
            entries.append(GroupEntry(fields[0], gid, members))
    return entries


def exec_user(spec: str, passwd: list[PasswdEntry], group: list[GroupEntry]) -> ExecUser:
    """runc's GetExecUser over parsed files, with Docker's defaults (uid 0, gid 0, no extra groups).

    `spec` is `user[:group]`; each part a name or a number. UnknownUser for a name that is not listed.
    """
    user_arg, _, group_arg = spec.partition(":")
    uid_arg, gid_arg = _number(user_arg), _number(group_arg)
    uid, gid, name = 0, 0, ""
    matched = False
    if user_arg:
        found = next((u for u in passwd if u.name == user_arg or (uid_arg is not None and u.uid == uid_arg)), None)
        if found is not None:
            uid, gid, name, matched = found.uid, found.gid, found.name, True
        elif uid_arg is None:
            raise UnknownUser(f"unable to find user {user_arg}: no matching entries in passwd file")
        else:
            uid = _checked(uid_arg, spec)
    groups: tuple[int, ...] = ()
    if group_arg:
        entry = next((g for g in group if (g.name == group_arg if gid_arg is None else g.gid == gid_arg)), None)
        if entry is not None:
            gid = entry.gid
        elif gid_arg is None:
            raise UnknownUser(f"unable to find group {group_arg}: no matching entries in group file")
        else:
            gid = _checked(gid_arg, spec)
    elif matched:
        groups = tuple(g.gid for g in group if name in g.members)
    return ExecUser(uid, gid, groups)


def owner(spec: str, passwd: list[PasswdEntry], group: list[GroupEntry]) -> tuple[int, int]:
    """BuildKit's --chown: (uid, gid); a named user brings its primary gid, a numeric uid is its own gid."""
    user_arg, sep, group_arg = spec.partition(":")
    if sep and ":" in group_arg:
        raise UnknownUser(f"invalid chown string format: {spec}")
    uid_arg = _number(user_arg)
    if uid_arg is not None:
        uid = gid = _checked(uid_arg, spec)
    else:
        found = next((u for u in passwd if u.name == user_arg), None)
        if found is None:
            raise UnknownUser(f"unable to find user {user_arg}: no matching entries in passwd file")
        uid, gid = found.uid, found.gid
    if group_arg:
        gid_arg = _number(group_arg)
        if gid_arg is not None:
            gid = _checked(gid_arg, spec)
        else:
            entry = next((g for g in group if g.name == group_arg), None)
            if entry is None:
                raise UnknownUser(f"unable to find group {group_arg}: no matching entries in group file")
            gid = entry.gid
    return uid, gid


def read_in_root(root: str | os.PathLike[str], path: str) -> str | None:
    """The text of `path` inside `root`, resolved as if `root` were `/`; None when it does not exist.

    Each component is opened with O_NOFOLLOW from the one before; a symlink restarts the walk from
    the root (absolute target) or its directory (relative target), `..` never climbs above the root.
    Reads at most MAX_FILE_BYTES (UnknownUser beyond: no real passwd file is that large).
    """
    root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fd = _walk(root_fd, path)
        if fd is None:
            return None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return None
            with open(f"/proc/self/fd/{fd}", "rb") as handle:
                data = handle.read(MAX_FILE_BYTES + 1)
        finally:
            os.close(fd)
    finally:
        os.close(root_fd)
    if len(data) > MAX_FILE_BYTES:
        raise UnknownUser(f"the image's {path} is larger than {MAX_FILE_BYTES >> 20} MiB: refusing to read it")
    return data.decode("utf-8", "surrogateescape")


def _walk(root_fd: int, path: str) -> int | None:
    """An O_PATH descriptor of `path` inside the root (see read_in_root), or None when a part is missing."""
    todo = [p for p in reversed(path.split("/")) if p not in ("", ".")]
    chain: list[int] = []  # owned descriptors below the root, innermost last
    links = 0
    try:
        while todo:
            part = todo.pop()
            if part == "..":
                if chain:
                    os.close(chain.pop())
                continue
            here = chain[-1] if chain else root_fd
            try:
                fd = os.open(part, _PATH_FLAGS, dir_fd=here)
            except OSError as err:
                if err.errno in (errno.ENOENT, errno.ENOTDIR):
                    return None
                raise
            if stat.S_ISLNK(os.fstat(fd).st_mode):
                os.close(fd)
                links += 1
                if links > _MAX_SYMLINKS:
                    return None
                target = os.readlink(part, dir_fd=here)
                if target.startswith("/"):
                    while chain:
                        os.close(chain.pop())
                todo.extend(p for p in reversed(target.split("/")) if p not in ("", "."))
                continue
            chain.append(fd)
        return chain.pop() if chain else None
    finally:
        for fd in chain:
            os.close(fd)


def _files(root: str | os.PathLike[str]) -> tuple[list[PasswdEntry], list[GroupEntry]]:
    passwd, group = read_in_root(root, "etc/passwd"), read_in_root(root, "etc/group")
    return parse_passwd(passwd or ""), parse_group(group or "")


def resolve_user(root: str | os.PathLike[str], spec: str) -> tuple[int, int, tuple[int, ...]]:
    """(uid, gid, supplementary gids) for `USER spec` / `-u spec` in the image rooted at `root`.

    The process's groups start with its primary gid, then the /etc/group memberships, as a process
    started by docker, podman or buildah has them (`id` shows `groups=1001(app),2000(extra)`).
    An empty spec is root. Raises UnknownUser (one line) for a name the image does not list.
    """
    user = exec_user(spec, *_files(root)) if spec else ExecUser(0, 0)
    return user.uid, user.gid, (user.gid, *(gid for gid in user.groups if gid != user.gid))


def resolve_owner(root: str | os.PathLike[str], spec: str) -> tuple[int, int]:
    """(uid, gid) for `COPY --chown=spec` in the image rooted at `root` (BuildKit's rules, see owner())."""
    return owner(spec, *_files(root))
