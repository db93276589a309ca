"""What the sandbox is asked to run: a root filesystem, a process, mounts and isolation, as plain values.

The sandbox mounts what it is given and knows nothing about images, layers or the store: the
builder (imagekit.builder) and the runner (imagekit.runtime) turn images into a `Rootfs` through
imagekit.snapshots and describe the process in a `Spec`. Paths are host paths unless named `target`
(a path inside the container). Values are frozen; derive variants with `values.replace`.

Isolation is a ladder, because CI containers without privileges cannot unshare everything:
`namespaces` (root: mount, PID, UTS, IPC and, with network "none", network namespaces; pivot_root),
`rootless` (the same inside a new user namespace mapping the caller to root), `chroot` (a mount
namespace and chroot only) and `none` (no isolation at all: the process runs on the host with the
rootfs only as its working tree, for environments that allow nothing else).

Imports: stdlib only.
"""

from __future__ import annotations


from imagekit.values import field, value

TYPE_CHECKING = False  # typing's import is a run's start-up cost; its names are for the type checker
if TYPE_CHECKING:
    from typing import Literal, TypeAlias

#: podman's default capabilities (Docker's without MKNOD, NET_RAW and AUDIT_WRITE): with no device
#: cgroup here, MKNOD would let root in a RUN step make and open the host's disks.
DEFAULT_CAPABILITIES = ("CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT")

Isolation: TypeAlias = 'Literal["namespaces", "rootless", "chroot", "none"]'
Network: TypeAlias = 'Literal["host", "none"]'


@value
class Rootfs:
    """The container's root: an overlay of read-only `lowers` (topmost first, as overlayfs lists them)
    under a writable `upper` with its `work` dir, or, with no lowers, the directory `upper` itself
    (the copy fallback where overlayfs is unavailable). `readonly` mounts it read-only."""

    lowers: tuple[str, ...] = ()
    upper: str = ""
    work: str = ""
    readonly: bool = False
    #: overlayfs' own markers (opaque dirs) are user.overlay.* xattrs, as a store written without root has them:
    #: mount with `userxattr` (the trusted.* ones cannot be written in a user namespace either)
    userxattr: bool = False

    @property
    def is_overlay(self) -> bool:
        return bool(self.lowers)


@value
class Mount:
    """One mount inside the container, made after the root, in order: `type` is "bind", "tmpfs",
    "proc", "devpts" or "sysfs"; `source` is a host path for a bind; `options` are mount(8)-style words
    ("ro", "rw", "nosuid", "nodev", "noexec", "size=64m", "mode=1777"). A missing target is created (a
    file for a file bind, else a directory) and reported in Result.created so a builder can keep the
    stub out of its layer."""

    target: str
    type: str = "bind"
    source: str = ""
    options: tuple[str, ...] = ()


@value
class Spec:
    """One process to run in a fresh sandbox. `env` is KEY=VALUE words exactly as the process gets
    them; `cwd` is created when missing; `uid`/`gid`/`groups` are numeric (the caller resolves names
    through the image's /etc/passwd and /etc/group); `hostname` "" keeps the host's. `capabilities`
    (short names, as OCI configs without "CAP_") bound what the process may ever hold."""

    rootfs: Rootfs
    argv: tuple[str, ...]
    env: tuple[str, ...] = ()
    cwd: str = "/"
    uid: int = 0
    gid: int = 0
    groups: tuple[int, ...] = ()
    hostname: str = ""
    network: Network = "host"
    #: an existing network namespace to join (/proc/PID/ns/net or a bind mount of one, as imagekit.runtime.network
    #: pins a container's) instead of the host's or a new one; "" joins none. Excludes network "none".
    netns: str = ""
    isolation: Isolation = "namespaces"
    mounts: tuple[Mount, ...] = ()
    #: host files bind-mounted read-only over /etc/resolv.conf and /etc/hosts (and /etc/hostname), never captured.
    etc_files: tuple[tuple[str, str], ...] = field(default=())
    capabilities: tuple[str, ...] = DEFAULT_CAPABILITIES
    #: cgroup directories (sandbox.cgroups.Cgroup.dirs) the process joins just before exec, so the
    #: sandbox's own set-up is never charged to them and nothing runs outside them after the exec.
    cgroups: tuple[str, ...] = ()
    #: PID 1 stays a tiny init (docker's --init): it forks the command, forwards signals to it, reaps
    #: every orphan and exits with the command's status.
    init: bool = False
    #: runc's masked and read-only /proc and /sys paths (mounts.MASKED, mounts.READONLY); docker's
    #: --privileged turns them off.
    mask_paths: bool = True
    #: docker's -t: stdin, stdout and stderr are one pty from the container's own devpts (sandbox.console), its
    #: controlling terminal; run() copies the caller's streams through it.
    tty: bool = False


@value
class Result:
    """How the process ended: `status` as a shell reports it (exit code, or 128+signal when killed),
    and what the sandbox had to create on the root filesystem to mount on (paths inside the
    container, parents first, symlinks resolved: /proc, /dev and /sys when the image lacks them,
    etc file and mount targets), so a builder can keep these stubs out of its layer."""

    status: int
    created: tuple[str, ...] = ()
