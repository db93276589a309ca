"""The sandboxed process's own set-up, between fork and exec: mounts, root, hostname, network, user, exec.

This runs in the child that is PID 1 of the new PID namespace (or, for `chroot`, the plain child),
already inside every namespace the intermediate unshared. It only makes system calls and never
returns: it reports the created mount targets (or one error line) on `report` as JSON lines, then
execs the spec's argv. `report` is close-on-exec, so the parent reads until EOF and knows the exec
happened. The order is runc's: the network namespace to join (Spec.netns), mounts and root first, then
hostname, cwd, umask 0022, the capabilities, then the identity (groups, gid, uid: dropping root last), the
parent-death signal (credential changes clear it), no_new_privs and the exec. With Spec.tty the pty is
allocated once the container's devpts is mounted (sandbox.console), bound on /dev/console (not for exec, as
runc) and made the controlling terminal right after setsid, before the identity changes (its slave chowned
to the user, as runc does).

Exec failures are the process's, not the sandbox's: "exec: NAME: not found" on its stderr and
status 127, or 126 when found but not executable, as a shell reports them.

Imports: stdlib, imagekit.errors, imagekit.sandbox.{console,linux,mounts,spec}.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import select
import signal
import struct

from imagekit.errors import SandboxError
from imagekit.sandbox import console as terminal
from imagekit.sandbox import cgroups, linux, mounts
from imagekit.sandbox.spec import Spec

TYPE_CHECKING = False  # typing's import is a run's start-up cost; its names are for the type checker
if TYPE_CHECKING:
    from typing import NoReturn, Optional

    #: With Spec.tty: the socket the pty's master goes back on and the window size to give it (console.allocate's arguments).
    Console = Optional[tuple[int, Optional[bytes]]]

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#: Exit status of the sandbox's own set-up failure (the parent raises SandboxError instead of reporting it).
SETUP_FAILED = 125

_SIOCGIFFLAGS, _SIOCSIFFLAGS, _IFF_UP = 0x8913, 0x8914, 0x1
_IFREQ = "16sH14x"


def send(report: int, **message: object) -> None:
    """One JSON line on the report pipe (small enough to be written atomically)."""
    os.write(report, json.dumps(message).encode() + b"\n")


def become(spec: Spec, *, report: int, lifeline: int, own_netns: bool, userns: bool, console: Console = None) -> NoReturn:
    """Sets the sandbox up around this process and execs spec.argv; never returns. With `console` (spec.tty: the
    socket and the window size) the pty is allocated once the container's devpts is mounted."""
    try:
        joins = cgroups.open_joins(spec.cgroups)
        created = _setup(spec, own_netns=own_netns, userns=userns)
        slave = terminal.allocate(*console) if console else None
        if slave is not None:
            mounts.console(slave)
        send(report, created=created)
        linux.limit_capabilities({linux.CAPABILITIES[name] for name in spec.capabilities})
        _identity(spec, userns=userns, slave=slave)
        linux.prctl(linux.PR_SET_PDEATHSIG, signal.SIGKILL)
        if select.select([lifeline], [], [], 0)[0]:  # the intermediate died before PDEATHSIG was armed
            os._exit(SETUP_FAILED)
        linux.prctl(linux.PR_SET_NO_NEW_PRIVS, 1)
        cgroups.join(joins)
    except (OSError, SandboxError) as err:
        send(report, error=describe(err))
        os._exit(SETUP_FAILED)
    if spec.init:
        _init(report, tty=slave is not None)
    _exec(spec.argv, spec.env)


def enter(spec: Spec, *, report: int, root: int, joins: list[int], console: Console = None, userns: bool = False) -> NoReturn:
    """join()'s process, already in the target's namespaces: its root (`root`, an fd of /proc/PID/root), spec.cwd,
    umask, capabilities, identity and cgroups (`joins`, cgroups.open_joins' files) as become() sets them, a pty of
    the container's devpts with `console` as become()'s; execs."""
    try:
        os.fchdir(root)
        os.chroot(".")
        os.close(root)
        slave = terminal.allocate(*console) if console else None
        os.chdir(spec.cwd)
        os.umask(0o022)
        linux.limit_capabilities({linux.CAPABILITIES[name] for name in spec.capabilities})
        _identity(spec, userns=userns, slave=slave)
        linux.prctl(linux.PR_SET_PDEATHSIG, signal.SIGKILL)
        linux.prctl(linux.PR_SET_NO_NEW_PRIVS, 1)
        cgroups.join(joins)
    except (OSError, SandboxError) as err:
        send(report, error=describe(err))
        os._exit(SETUP_FAILED)
    _exec(spec.argv, spec.env)


def describe(err: BaseException) -> str:
    """One line for a failed set-up step: `sandbox: STEP: REASON`."""
    if isinstance(err, OSError) and err.strerror:
        where = f"{err.filename}: " if err.filename else ""
        return f"sandbox: {where}{err.strerror}"
    if isinstance(err, SandboxError):
        return str(err)
    return f"sandbox: {type(err).__name__}: {' '.join(str(err).split())}"


def _setup(spec: Spec, *, own_netns: bool, userns: bool) -> list[str]:
    if spec.netns:  # first: the path is a host path, and sysfs shows the network namespace it is mounted in
        linux.setns(spec.netns, linux.CLONE_NEWNET)
    linux.mount(None, "/", None, linux.MS_REC | linux.MS_SLAVE)
    root = mounts.root(spec.rootfs)
    standard = mounts.standard(own_netns=own_netns, userns=userns)
    requested = mounts.requested(spec.mounts, spec.etc_files)
    mounts.enter(root, pivot=spec.isolation != "chroot")
    made: list[str] = []
    created = mounts.attach(standard, made)
    mounts.dev_links()
    if spec.mask_paths:
        mounts.mask()
    created += mounts.attach(requested, made)
    os.makedirs(spec.cwd, mode=0o755, exist_ok=True)
    mounts.seal(spec.rootfs.readonly)
    if spec.hostname:
        linux.sethostname(spec.hostname)
    if own_netns:
        _loopback_up()
    os.chdir(spec.cwd)
    os.umask(0o022)
    return created


def _loopback_up() -> None:
    """Brings `lo` up in the new network namespace (it starts down)."""
    sock = linux.datagram_socket()
    try:
        flags = struct.unpack(_IFREQ, fcntl.ioctl(sock, _SIOCGIFFLAGS, struct.pack(_IFREQ, b"lo", 0)))[1]
        fcntl.ioctl(sock, _SIOCSIFFLAGS, struct.pack(_IFREQ, b"lo", flags | _IFF_UP))
    finally:
        os.close(sock)


def _identity(spec: Spec, *, userns: bool, slave: int | None) -> None:
    """Own session (with the pty `slave` as its terminal), supplementary groups, gid, then uid; signals back to
    their defaults, nothing blocked."""
    os.setsid()
    if slave is not None:
        terminal.take(slave, spec.uid, spec.gid)
    if not userns:  # setgroups is denied in a user namespace that maps one id
        os.setgroups(list(spec.groups))
    os.setgid(spec.gid)
    os.setuid(spec.uid)
    for sig in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, ())


#: What the init passes on to the command (tini forwards every catchable signal; these are the usual ones).
INIT_FORWARDED = (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2, signal.SIGTERM,
                  signal.SIGWINCH, signal.SIGCONT, signal.SIGALRM)


def _init(report: int, *, tty: bool) -> None:
    """Forks the command (the child returns to exec it, in the terminal's foreground with `tty`); this process
    stays PID 1: it forwards signals to the command, reaps every child the namespace's orphans leave it and
    exits with the command's status (128+signal when killed, as tini and docker-init report it)."""
    child = os.fork()
    if child == 0:
        if tty:
            terminal.foreground()
        return
    os.close(report)  # the caller's EOF must come from the command's exec
    for sig in INIT_FORWARDED:
        signal.signal(sig, lambda number, _frame: _forward(child, number))
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            os._exit(SETUP_FAILED)
        if pid == child:
            code = os.waitstatus_to_exitcode(status)
            os._exit(128 - code if code < 0 else code)


def _forward(pid: int, number: int) -> None:
    try:
        os.kill(pid, number)
    except ProcessLookupError:
        pass


def _exec(argv: tuple[str, ...], env: tuple[str, ...]) -> NoReturn:
    """execve argv[0], searched in the container's PATH (the spec's, else Docker's default) like execvp."""
    environ = dict(word.split("=", 1) for word in env if "=" in word)
    name = argv[0]
    if "/" in name:
        candidates = [name]
    else:
        candidates = [os.path.join(folder or ".", name) for folder in environ.get("PATH", DEFAULT_PATH).split(":")]
    failure: OSError | None = None
    for candidate in candidates:
        try:
            os.execve(candidate, list(argv), environ)
        except OSError as err:
            if err.errno in (errno.ENOENT, errno.ENOTDIR):
                continue
            failure = failure or err
            if err.errno != errno.EACCES:
                break
    if failure is None:
        os.write(2, f"exec: {name}: not found\n".encode())
        os._exit(127)
    os.write(2, f"exec: {name}: {(failure.strerror or '').lower()}\n".encode())
    os._exit(126)
