"""Thin ctypes bindings for the Linux calls Python 3.11 lacks: namespaces (unshare, setns), the mount API, pivot_root, prctl
(and socket(2), cheaper than importing the socket module).

Each wrapper raises OSError(errno, strerror, what) like the os module, so the callers word one message.
The new mount API (fsopen/fsconfig/fsmount, open_tree, move_mount, mount_setattr, Linux 5.2-5.12) is
used for every mount because it resolves targets through file descriptors and has no page-size limit
on options: overlayfs takes one `lowerdir+` call per lower, so 120 layers mount where the classic
`lowerdir=a:b:...` string would not fit. Syscall numbers from 424 on are the same on every
architecture; pivot_root is not, hence the small table.

Safe to call between fork and exec: nothing here allocates locks or starts threads.

Imports: stdlib only.
"""

from __future__ import annotations

import ctypes
import os

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 0x1
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MNT_DETACH = 0x2

PR_SET_PDEATHSIG = 1
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4

#: Capability numbers by name (linux/capability.h), CAP_ prefix dropped as in OCI configs' short form.
CAPABILITIES = {
    name: number
    for number, name in enumerate(
        "CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP LINUX_IMMUTABLE NET_BIND_SERVICE "
        "NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER SYS_MODULE SYS_RAWIO SYS_CHROOT SYS_PTRACE SYS_PACCT SYS_ADMIN "
        "SYS_BOOT SYS_NICE SYS_RESOURCE SYS_TIME SYS_TTY_CONFIG MKNOD LEASE AUDIT_WRITE AUDIT_CONTROL SETFCAP MAC_OVERRIDE "
        "MAC_ADMIN SYSLOG WAKE_ALARM BLOCK_SUSPEND AUDIT_READ PERFMON BPF CHECKPOINT_RESTORE".split()
    )
}

FSCONFIG_SET_FLAG = 0
FSCONFIG_SET_STRING = 1
FSCONFIG_CMD_CREATE = 6
FSOPEN_CLOEXEC = 0x1
FSMOUNT_CLOEXEC = 0x1
OPEN_TREE_CLONE = 0x1
OPEN_TREE_CLOEXEC = os.O_CLOEXEC
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000
MOVE_MOUNT_F_EMPTY_PATH = 0x04
_AF_INET = 2
_SOCK_DGRAM = 2
MOVE_MOUNT_T_EMPTY_PATH = 0x40

MOUNT_ATTR_RDONLY = 0x01
MOUNT_ATTR_NOSUID = 0x02
MOUNT_ATTR_NODEV = 0x04
MOUNT_ATTR_NOEXEC = 0x08

_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "arm64": 41, "riscv64": 41, "ppc64le": 203, "s390x": 217, "i686": 217, "armv7l": 218}
_OPEN_TREE, _MOVE_MOUNT, _FSOPEN, _FSCONFIG, _FSMOUNT, _MOUNT_SETATTR = 428, 429, 430, 431, 432, 442

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64), ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def _check(result: int, what: str) -> int:
    if result < 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), what)
    return int(result)


def _syscall(number: int, what: str, *args: object) -> int:
    return _check(_libc.syscall(ctypes.c_long(number), *args), what)


def _c(text: str | None) -> bytes | None:
    return None if text is None else os.fsencode(text)


def unshare(flags: int) -> None:
    _check(_libc.unshare(ctypes.c_int(flags)), "unshare")


def setns(path: str, nstype: int) -> None:
    """Moves the calling thread into the namespace pinned at `path` (a /proc/PID/ns/* file or a bind
    mount of one); `nstype` (a CLONE_NEW* flag) makes the kernel check that the file is of that kind."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        _check(_libc.setns(ctypes.c_int(fd), ctypes.c_int(nstype)), f"setns {path}")
    finally:
        os.close(fd)


def unshare_as_root(flags: int) -> None:
    """unshare(CLONE_NEWUSER | flags) and map the caller's uid and gid to 0 in the new user namespace
    (the one mapping a process may write for itself; setgroups is denied, as it must be then)."""
    uid, gid = os.getuid(), os.getgid()
    unshare(CLONE_NEWUSER | flags)
    for name, text in (("uid_map", f"0 {uid} 1"), ("setgroups", "deny"), ("gid_map", f"0 {gid} 1")):
        with open(f"/proc/self/{name}", "w") as handle:
            handle.write(text)


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    """Classic mount(2): only for propagation changes (rslave), which the new API covers only from 5.12."""
    _check(_libc.mount(_c(source), _c(target), _c(fstype), ctypes.c_ulong(flags), _c(data)), f"mount {target}")


def umount2(target: str, flags: int) -> None:
    _check(_libc.umount2(_c(target), ctypes.c_int(flags)), f"umount {target}")


def pivot_root(new_root: str, put_old: str) -> None:
    machine = os.uname().machine  # platform.machine()'s source; platform itself is a run's start-up time
    number = _PIVOT_ROOT.get(machine)
    if number is None:
        raise OSError(38, f"pivot_root: unknown on {machine}", new_root)
    _syscall(number, "pivot_root", _c(new_root), _c(put_old))


def prctl(option: int, value: int) -> None:
    _check(_libc.prctl(ctypes.c_int(option), ctypes.c_ulong(value), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0)), "prctl")


def limit_capabilities(keep: set[int]) -> None:
    """Drops every capability but `keep` from the bounding set and clears the inheritable and ambient
    sets, so that the exec (as root: permitted = bounding) leaves the process only `keep`."""
    last = max(CAPABILITIES.values())
    for number in range(last + 1):
        if number not in keep:
            try:
                prctl(PR_CAPBSET_DROP, number)
            except OSError as err:
                if err.errno != 22:  # EINVAL: a capability this kernel does not know
                    raise
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
    data = (ctypes.c_uint32 * 6)()  # two (effective, permitted, inheritable) words
    _check(_libc.capget(header, data), "capget")
    data[2] = data[5] = 0
    _check(_libc.capset(header, data), "capset")


def datagram_socket() -> int:
    """An AF_INET datagram socket as a bare descriptor (close-on-exec), for interface ioctls: importing the
    socket module for that one use would cost every container start a few milliseconds."""
    return _check(_libc.socket(_AF_INET, _SOCK_DGRAM | os.O_CLOEXEC, 0), "socket")


def sethostname(name: str) -> None:
    raw = name.encode()
    _check(_libc.sethostname(raw, ctypes.c_size_t(len(raw))), "sethostname")


def fsopen(fstype: str) -> int:
    """A filesystem context for `fstype`; configure it with fsconfig, then fsmount."""
    return _syscall(_FSOPEN, f"fsopen {fstype}", _c(fstype), ctypes.c_uint(FSOPEN_CLOEXEC))


def fsconfig(fd: int, key: str, value: str | None = None) -> None:
    """Sets one option: `key=value`, or the flag `key` when value is None."""
    command = FSCONFIG_SET_FLAG if value is None else FSCONFIG_SET_STRING
    _syscall(_FSCONFIG, f"{key}={value}" if value is not None else key, ctypes.c_int(fd), ctypes.c_uint(command), _c(key), _c(value), ctypes.c_int(0))


def fsmount(fd: int, attrs: int = 0, what: str = "mount") -> int:
    """Creates the superblock of a configured context and returns a detached mount of it (an O_PATH-like
    fd). A failure names `what` and adds the kernel's own message for the context when it left one."""
    try:
        _syscall(_FSCONFIG, what, ctypes.c_int(fd), ctypes.c_uint(FSCONFIG_CMD_CREATE), None, None, ctypes.c_int(0))
    except OSError as err:
        try:
            detail = os.read(fd, 4096).decode(errors="replace").strip()  # "e overlay: ..." lines, if any
        except OSError:
            detail = ""
        raise OSError(err.errno, f"{err.strerror} ({detail})" if detail else err.strerror, what) from None
    return _syscall(_FSMOUNT, what, ctypes.c_int(fd), ctypes.c_uint(FSMOUNT_CLOEXEC), ctypes.c_uint(attrs))


def open_tree(path: str, recursive: bool = False) -> int:
    """A detached bind mount (a clone) of `path`, as a file descriptor."""
    flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (AT_RECURSIVE if recursive else 0)
    return _syscall(_OPEN_TREE, f"bind {path}", ctypes.c_int(-100), _c(path), ctypes.c_uint(flags))


def move_mount(mount_fd: int, target_fd: int) -> None:
    """Attaches the mount `mount_fd` on the inode `target_fd` holds (no path is looked up again)."""
    flags = MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH
    _syscall(_MOVE_MOUNT, "move_mount", ctypes.c_int(mount_fd), b"", ctypes.c_int(target_fd), b"", ctypes.c_uint(flags))


def mount_setattr(fd: int, attrs: int, recursive: bool = False) -> None:
    """Sets mount flags (MOUNT_ATTR_*) on the mount `fd` holds, and on its submounts when `recursive`."""
    attr = _MountAttr(attrs, 0, 0, 0)
    flags = AT_EMPTY_PATH | (AT_RECURSIVE if recursive else 0)
    _syscall(_MOUNT_SETATTR, "mount_setattr", ctypes.c_int(fd), b"", ctypes.c_uint(flags), ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr)))
