"""The container's mount table: the root, the standard mounts runc makes, etc files and the spec's mounts.

Every mount is first made *detached* (fsopen+fsmount for a filesystem, open_tree for a bind) while
the host's paths are still visible, then the root is entered with pivot_root, then the detached
mounts are attached in order onto targets looked up from the new `/`. Looking targets up only after
pivot_root is what keeps a hostile image in its root: a symlink `/etc -> /host` now means
ROOT/host and `..` stops at ROOT, exactly as for the process itself, so no host path is ever
created or covered. The steps run in the sandbox's own private mount namespace, so nothing here
can outlive the process or show on the host.

Targets the image lacks are created (parents as 0755 directories, a file bind gets an empty 0644
file) and returned as container paths, unless they lie inside a mount made here (a tmpfs, a bind):
only what landed on the root filesystem needs keeping out of a layer.

Imports: stdlib, imagekit.errors, imagekit.sandbox.{linux,spec}.
"""

from __future__ import annotations

import errno
import os

from imagekit.errors import SandboxError
from imagekit.sandbox import linux
from imagekit.sandbox.spec import Mount, Rootfs
from imagekit.values import value

#: Host device nodes bound onto empty files in the container's /dev (what rootless runc does: works in a user namespace too).
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
DEV_LINKS = (("ptmx", "pts/ptmx"), ("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2"))
#: runc's defaults: files and directories of /proc and /sys the container must not read or write.
MASKED = ("/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware")
READONLY = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")

_FLAG_ATTRS = {"ro": linux.MOUNT_ATTR_RDONLY, "nosuid": linux.MOUNT_ATTR_NOSUID, "nodev": linux.MOUNT_ATTR_NODEV, "noexec": linux.MOUNT_ATTR_NOEXEC}
_FILESYSTEMS = ("tmpfs", "proc", "devpts", "sysfs", "mqueue")
_MAX_SYMLINKS = 40


@value
class Detached:
    """A mount made but not yet attached: `fd` holds it, `target` is where it goes in the container."""

    target: str
    fd: int
    is_dir: bool


def _attrs(options: tuple[str, ...]) -> tuple[int, list[str], bool]:
    """(MOUNT_ATTR_* flags, filesystem options, recursive) from mount(8)-style words."""
    attrs, rest, recursive = 0, [], False
    for word in options:
        if word in _FLAG_ATTRS:
            attrs |= _FLAG_ATTRS[word]
        elif word == "rw":
            attrs &= ~linux.MOUNT_ATTR_RDONLY
        elif word == "bind":
            continue
        elif word == "rbind":
            recursive = True
        else:
            rest.append(word)
    return attrs, rest, recursive


def filesystem(fstype: str, options: tuple[str, ...] | list[str], attrs: int = 0) -> int:
    """A detached mount of a fresh `fstype` filesystem configured with `key=value` / flag words."""
    ctx = linux.fsopen(fstype)
    try:
        for word in options:
            key, sep, value = word.partition("=")
            linux.fsconfig(ctx, key, value if sep else None)
        return linux.fsmount(ctx, attrs, f"mounting {fstype}")
    finally:
        os.close(ctx)


def bind(source: str, attrs: int = 0, recursive: bool = False) -> int:
    """A detached bind mount of the host path `source` with `attrs` set on it (and its submounts)."""
    fd = linux.open_tree(source, recursive)
    if attrs:
        linux.mount_setattr(fd, attrs, recursive)
    return fd


def root(rootfs: Rootfs) -> int:
    """The root as a detached mount: overlayfs of the lowers (one `lowerdir+` each: no option-size limit)
    under upper/work, or a bind of `upper` itself. Read-only is applied last, by `seal`."""
    if not rootfs.is_overlay:
        if not rootfs.upper:
            raise SandboxError("sandbox: the rootfs names neither lowers nor an upper directory")
        return bind(rootfs.upper)
    ctx = linux.fsopen("overlay")
    try:
        for lower in rootfs.lowers:
            linux.fsconfig(ctx, "lowerdir+", lower)
        if rootfs.upper:
            linux.fsconfig(ctx, "upperdir", rootfs.upper)
            linux.fsconfig(ctx, "workdir", rootfs.work)
        if rootfs.userxattr:
            linux.fsconfig(ctx, "userxattr")
        return linux.fsmount(ctx, 0, f"mounting the overlay of {len(rootfs.lowers)} lowers and upper {rootfs.upper or '(none)'}")
    finally:
        os.close(ctx)


def standard(*, own_netns: bool, userns: bool) -> list[Detached]:
    """runc's standard mounts: /proc, /dev (tmpfs with host device nodes), /dev/pts, /dev/shm,
    /dev/mqueue and a read-only /sys (sysfs needs a network namespace we own; else the host's /sys, bound)."""
    noexec = linux.MOUNT_ATTR_NOSUID | linux.MOUNT_ATTR_NODEV | linux.MOUNT_ATTR_NOEXEC
    mounts = [
        Detached("/proc", filesystem("proc", [], noexec), True),
        Detached("/dev", filesystem("tmpfs", ["mode=755", "size=65536k"], linux.MOUNT_ATTR_NOSUID), True),
    ]
    mounts += [Detached(f"/dev/{name}", bind(f"/dev/{name}", linux.MOUNT_ATTR_NOSUID | linux.MOUNT_ATTR_NOEXEC), False) for name in DEVICES]
    pts = ["newinstance", "ptmxmode=0666", "mode=0620"] + ([] if userns else ["gid=5"])
    mounts += [
        Detached("/dev/pts", filesystem("devpts", pts, linux.MOUNT_ATTR_NOSUID | linux.MOUNT_ATTR_NOEXEC), True),
        Detached("/dev/shm", filesystem("tmpfs", ["mode=1777", "size=65536k"], noexec), True),
        Detached("/dev/mqueue", filesystem("mqueue", [], noexec), True),
    ]
    readonly = noexec | linux.MOUNT_ATTR_RDONLY
    sysfs = filesystem("sysfs", [], readonly) if own_netns or not userns else bind("/sys", readonly, recursive=True)
    mounts.append(Detached("/sys", sysfs, True))
    return mounts


def requested(mounts: tuple[Mount, ...], etc_files: tuple[tuple[str, str], ...]) -> list[Detached]:
    """The caller's etc files (read-only binds) and mounts, detached, in order."""
    out = []
    for source, target in etc_files:
        if not os.path.isabs(target):
            raise SandboxError(f"sandbox: etc file target {target!r} is not an absolute path")
        out.append(Detached(target, _host_bind(source, linux.MOUNT_ATTR_RDONLY | linux.MOUNT_ATTR_NOSUID | linux.MOUNT_ATTR_NODEV, False), False))
    for item in mounts:
        if not os.path.isabs(item.target):
            raise SandboxError(f"sandbox: mount target {item.target!r} is not an absolute path")
        attrs, rest, recursive = _attrs(item.options)
        if item.type == "bind":
            if rest:
                raise SandboxError(f"sandbox: unknown bind mount option {rest[0]!r} for {item.target}")
            out.append(Detached(item.target, _host_bind(item.source, attrs, recursive), os.path.isdir(item.source)))
        elif item.type in _FILESYSTEMS:
            out.append(Detached(item.target, filesystem(item.type, rest, attrs), True))
        else:
            raise SandboxError(f"sandbox: unsupported mount type {item.type!r} for {item.target}")
    return out


def _host_bind(source: str, attrs: int, recursive: bool) -> int:
    if not os.path.isabs(source) or not os.path.exists(source):
        raise SandboxError(f"sandbox: bind source {source!r} does not exist (an absolute host path is needed)")
    return bind(source, attrs, recursive)


def enter(root_fd: int, *, pivot: bool = True) -> None:
    """Makes the mount `root_fd` the process's root: stacked on `/`, then pivot_root and a detach of the
    old root (runc's sequence), or, for the `chroot` isolation, chroot into it (the host's root stays
    beneath, as with buildah's chroot isolation)."""
    host_root = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        linux.move_mount(root_fd, host_root)
    finally:
        os.close(host_root)
    os.fchdir(root_fd)
    os.close(root_fd)
    if pivot:
        linux.pivot_root(".", ".")
        linux.mount(None, ".", None, linux.MS_SLAVE | linux.MS_REC)
        linux.umount2(".", linux.MNT_DETACH)
    else:
        os.chroot(".")
    os.chdir("/")


def attach(mounts: list[Detached], made: list[str]) -> list[str]:
    """Attaches each mount on its target (created when missing) in order; returns the created paths
    that lie on the root filesystem. `made` collects the targets mounted so far (ours, not the image's)."""
    created: list[str] = []
    for item in mounts:
        for path in _make(item.target, item.is_dir):
            if not any(path == m or path.startswith(m.rstrip("/") + "/") for m in made):
                created.append(path)
        target = os.open(item.target, os.O_PATH | os.O_CLOEXEC)
        try:
            linux.move_mount(item.fd, target)
        finally:
            os.close(target)
            os.close(item.fd)
        made.append(os.path.normpath(item.target))
    return created


def _make(target: str, is_dir: bool, depth: int = 0) -> list[str]:
    """Creates `target` (and its parents) when missing; returns what was created, parents first, as
    resolved paths (a symlink in the way is followed, and the directories it leads to made). Runs
    after pivot_root: every lookup, symlinks included, stays inside the container's root."""
    if depth > _MAX_SYMLINKS:
        raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), target)
    created: list[str] = []
    parts = [p for p in target.split("/") if p]
    path = "/"
    for index, name in enumerate(parts):
        path = os.path.realpath(os.path.join(path, name))
        if os.path.lexists(path):
            continue
        if not os.path.isdir(os.path.dirname(path)):
            created += _make(os.path.dirname(path), True, depth + 1)
        if index < len(parts) - 1 or is_dir:
            os.mkdir(path, 0o755)
        else:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644))
        created.append(path)
    return created


def dev_links() -> None:
    """/dev/ptmx, /dev/fd and /dev/std{in,out,err} as the symlinks runc makes (inside our /dev tmpfs)."""
    for name, target in DEV_LINKS:
        os.symlink(target, f"/dev/{name}")


def console(slave: int) -> None:
    """runc's /dev/console for a container with a terminal: its pty's slave (an open fd) bound onto a file in our /dev."""
    os.close(os.open("/dev/console", os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
    _cover("/dev/console", linux.open_tree(f"/proc/self/fd/{slave}"))


def mask() -> None:
    """runc's masked paths (/dev/null over files, an empty read-only tmpfs over directories) and
    read-only paths (bound onto themselves read-only); paths this kernel lacks are skipped."""
    for path in MASKED:
        if not os.path.exists(path):
            continue
        if os.path.isdir(path):
            fd = filesystem("tmpfs", ["size=0"], linux.MOUNT_ATTR_RDONLY)
        else:
            fd = bind("/dev/null")
        _cover(path, fd)
    for path in READONLY:
        if os.path.exists(path):
            _cover(path, bind(path, linux.MOUNT_ATTR_RDONLY | linux.MOUNT_ATTR_NOSUID | linux.MOUNT_ATTR_NODEV | linux.MOUNT_ATTR_NOEXEC, recursive=True))


def _cover(path: str, mount_fd: int) -> None:
    target = os.open(path, os.O_PATH | os.O_CLOEXEC)
    try:
        linux.move_mount(mount_fd, target)
    finally:
        os.close(target)
        os.close(mount_fd)


def seal(readonly: bool) -> None:
    """Makes the root read-only (not the mounts on it) once every stub is created."""
    if readonly:
        fd = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            linux.mount_setattr(fd, linux.MOUNT_ATTR_RDONLY)
        finally:
            os.close(fd)

