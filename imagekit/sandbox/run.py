"""`run(spec)`: one process in a fresh sandbox, its exit status, and nothing left behind.

Three processes take part. The caller (this Python process, which may have threads) forks an
*intermediate* that unshares the namespaces and forks the sandboxed process, which is therefore
PID 1 of the new PID namespace (unshare(CLONE_NEWPID) moves only the children). The intermediate
waits for it and exits with its status as a shell reports it (128+signal when killed), so the
caller only ever waits for its own child. Mounts happen inside the new private mount namespace
and vanish with it; PID 1's death kills the rest of the namespace. The intermediate dies with the
caller and PID 1 with the intermediate (PR_SET_PDEATHSIG SIGKILL on both), so a SIGKILLed caller
leaves nothing running. SIGINT, SIGTERM and SIGHUP sent to the caller (when run() is called from
the main thread) are forwarded to the sandboxed process; as PID 1 it ignores those it has no
handler for, as in `docker run` without `--init`, so a second SIGINT kills it.

The children report through one close-on-exec pipe, as JSON lines: the sandboxed process's host
pid, the mount targets it created, or one line of error (then run() raises SandboxError). The exec
closes the pipe, so EOF means the sandboxed process runs; its output goes straight to the caller's
file descriptors and streams as it is written. With Spec.tty a second channel, a Unix socket, brings the
master of the pty the sandboxed process allocated in its devpts (sandbox.console); the caller then copies
its streams through the pty while it waits.

Imports: stdlib, imagekit.errors, imagekit.sandbox.{console,linux,process,spec,streams}.
"""

from __future__ import annotations

import json
import os
import select
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, nullcontext, suppress

from imagekit.errors import SandboxError
from imagekit.sandbox import cgroups, console, linux, process
from imagekit.sandbox.streams import stream
from imagekit.sandbox.spec import Result, Spec
from imagekit.values import value

TYPE_CHECKING = False  # typing's import is a run's start-up cost; its names are for the type checker
if TYPE_CHECKING:
    from typing import NoReturn

    from imagekit.sandbox.streams import Stream

_FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_MAX_FD = 0x7FFFFFFF
_NO_ID = 0xFFFFFFFF  # (uid_t)-1 means "no change" to setuid; ids are below it


def run(spec: Spec, *, stdin: Stream = None, stdout: Stream = None, stderr: Stream = None,
        started: Callable[[int], None] | None = None, size_from: int | None = None, forward_signals: bool = True) -> Result:
    """Runs spec.argv in a sandbox and returns its status and the mount targets it created.
    `stderr is stdout` shares one descriptor, so a captured interleaving keeps its order.
    `started(pid)` is called with the sandboxed process's host pid once it runs (a runner records it
    to signal the process later); whatever it raises stops the process and propagates.

    With spec.tty the process's stdin, stdout and stderr are one pty of the container's devpts: `stdin` (None:
    this process's) is copied to it and what it prints to `stdout` (None: this process's), `stderr` is unused,
    as docker's -t makes one stream; the pty has the window size of the terminal `size_from` (if one) from
    the start and follows it on SIGWINCH.

    `forward_signals=False` keeps the caller's own signal handlers while the sandbox runs instead of
    forwarding SIGINT, SIGTERM and SIGHUP: a build stops at the first Ctrl-C (KeyboardInterrupt here, which
    kills the sandbox), as `docker build` does, where a container's PID 1 would ignore a forwarded one.

    Raises SandboxError (one line) when the sandbox cannot be set up; a command that is missing
    or not executable is the process's failure instead (status 127 / 126, a line on its stderr).
    """
    flags = _namespaces(spec)
    return _launch(lambda report, fds, caller, terminal: _intermediate(spec, flags, report, fds, caller, terminal),
                   spec.tty, _Streams(stdin, stdout, stderr, size_from), started, forward_signals)


def join(pid: int, spec: Spec, *, stdin: Stream = None, stdout: Stream = None, stderr: Stream = None,
         size_from: int | None = None) -> Result:
    """Runs spec.argv inside the namespaces (mount, UTS, IPC, network, PID), root and cgroups (spec.cgroups) of the
    running process `pid`, as `docker exec` does; spec's cwd, env, identity, capabilities and tty apply (a pty of
    the container's devpts, as run()'s), its rootfs, mounts and hostname are not used. Errors as run()'s."""
    if not spec.argv:
        raise SandboxError("sandbox: no command to run")
    return _launch(lambda report, fds, caller, terminal: _joiner(pid, spec, report, fds, caller, terminal),
                   spec.tty, _Streams(stdin, stdout, stderr, size_from), None, True)


@value
class _Streams:
    """What run() and join() were given for the process's terminal or standard streams."""

    stdin: Stream
    stdout: Stream
    stderr: Stream
    size_from: int | None


def _launch(child: Callable[[int, list[int | None], int, process.Console], NoReturn], tty: bool, streams: _Streams,
            started: Callable[[int], None] | None, forward_signals: bool) -> Result:
    """Forks `child(report, fds, caller, console)` with the streams (with `tty`: /dev/null, and the console socket
    that brings back the pty the streams are then relayed through) and waits for it, forwarding signals to it
    or not (see run())."""
    with ExitStack() as stack:
        fds = [stack.enter_context(stream(streams.stdin, 0)), stack.enter_context(stream(streams.stdout, 1))]
        channel = stack.enter_context(console.Channel(streams.size_from)) if tty else None
        if channel is None:
            fds.append(fds[1] if streams.stderr is streams.stdout and streams.stdout is not None
                       else stack.enter_context(stream(streams.stderr, 2)))
            given = fds
        else:
            given = [stack.enter_context(open(os.devnull, "r+b")).fileno()] * 3
        for name in ("stdout", "stderr"):
            getattr(sys, name).flush()
        read_end, write_end = os.pipe()
        caller = os.getpid()
        pid = os.fork()
        if pid == 0:  # pragma: no mutate (as != 0 the child takes the caller's part: os.kill(0) kills the test run)
            os.close(read_end)
            child(write_end, given, caller, None if channel is None else channel.child)
        os.close(write_end)
        if channel is not None:
            channel.forked()
        reports = _Reports(read_end)
        with _forwarding(pid, reports) if forward_signals else nullcontext():
            try:
                reports.read()
                master = channel.receive() if channel is not None and not reports.error else None
                if started is not None and reports.pid is not None and not reports.error:
                    started(reports.pid)
                if master is not None:
                    _relay(pid, master, 0 if fds[0] is None else fds[0], 1 if fds[1] is None else fds[1], streams.size_from)
                status = _wait(pid)
            except BaseException:
                if not reports.kill():
                    os.kill(pid, signal.SIGKILL)
                _wait(pid)
                raise
            finally:
                reports.close()
    if reports.error:
        raise SandboxError(reports.error)
    return Result(status=status, created=tuple(reports.created))


def _namespaces(spec: Spec) -> int:
    """The unshare flags for spec.isolation, after the checks that need no fork."""
    if not spec.argv:
        raise SandboxError("sandbox: no command to run")
    if spec.isolation == "none":
        raise SandboxError("sandbox: isolation 'none' is not supported yet")
    if spec.isolation not in ("namespaces", "rootless", "chroot"):
        raise SandboxError(f"sandbox: unknown isolation {spec.isolation!r}")
    if spec.network not in ("host", "none"):
        raise SandboxError(f"sandbox: unknown network {spec.network!r}")
    if spec.netns and (spec.network == "none" or not os.path.isabs(spec.netns)):
        raise SandboxError(f"sandbox: netns {spec.netns!r} must be an absolute path, with network 'host' (the default)")
    unknown = sorted(set(spec.capabilities) - set(linux.CAPABILITIES))
    if unknown:
        raise SandboxError(f"sandbox: unknown capability {unknown[0]!r} (names as in OCI configs, without CAP_)")
    bad = [i for i in (spec.uid, spec.gid, *spec.groups) if not 0 <= i < _NO_ID]
    if bad:
        raise SandboxError(f"sandbox: {bad[0]} is not a valid user or group id")
    if not os.path.isabs(spec.cwd):
        raise SandboxError(f"sandbox: working directory {spec.cwd!r} is not an absolute path")
    # Not mutated (tests/MUTANTS.md): a mutant without the mount, PID or network namespace would mount, pivot_root
    # and kill in the namespaces of the machine that runs the tests.
    flags = linux.CLONE_NEWNS | linux.CLONE_NEWUTS | linux.CLONE_NEWIPC  # pragma: no mutate
    if spec.isolation != "chroot":  # pragma: no mutate
        flags |= linux.CLONE_NEWPID  # pragma: no mutate
    if spec.isolation == "rootless":  # pragma: no mutate
        if (spec.uid, spec.gid, spec.groups) != (0, 0, ()):
            raise SandboxError("sandbox: rootless isolation maps only the caller, as uid 0 and gid 0")
        flags |= linux.CLONE_NEWUSER  # pragma: no mutate
    if spec.network == "none":  # pragma: no mutate
        flags |= linux.CLONE_NEWNET  # pragma: no mutate
    return flags


def _relay(pid: int, master: int, source: int, sink: int, size_from: int | None) -> None:
    """console.relay() until the intermediate `pid` (our child) ends: its end follows the sandboxed process's."""
    done = os.pidfd_open(pid)
    try:
        console.relay(master, source, sink, done, size_from)
    finally:
        os.close(done)


def _intermediate(spec: Spec, flags: int, report: int, fds: list[int | None], caller: int, terminal: process.Console) -> NoReturn:
    """Child of the caller: unshares, forks the sandboxed process, waits and exits with its status."""

    def body() -> int:
        try:
            if flags & linux.CLONE_NEWUSER:
                linux.unshare_as_root(flags)
            else:
                linux.unshare(flags)
        except PermissionError as err:
            hint = "" if flags & linux.CLONE_NEWUSER else "; without root, use isolation 'rootless'"
            raise SandboxError(f"sandbox: isolation {spec.isolation!r} cannot create its namespaces: {err.strerror}{hint}") from err
        lifeline, keep = os.pipe()
        child = os.fork()
        if child == 0:
            os.close(keep)
            process.become(spec, report=report, lifeline=lifeline, own_netns=bool(flags & linux.CLONE_NEWNET),
                           userns=bool(flags & linux.CLONE_NEWUSER), console=terminal)
        os.close(lifeline)
        if terminal is not None:
            os.close(terminal[0])
        code = _follow(child, report)
        if not flags & linux.CLONE_NEWPID:  # no PID namespace takes the background jobs along: end its group
            _kill_group(child)
        return code

    _around(report, fds, caller, body, terminal)


#: The namespaces join() enters, the mount namespace last: the /proc paths are the host's until then.
_JOINED = (("ipc", linux.CLONE_NEWIPC), ("uts", linux.CLONE_NEWUTS), ("net", linux.CLONE_NEWNET), ("pid", linux.CLONE_NEWPID), ("mnt", linux.CLONE_NEWNS))


def _joiner(target: int, spec: Spec, report: int, fds: list[int | None], caller: int, terminal: process.Console) -> NoReturn:
    """join()'s intermediate: enters `target`'s namespaces and forks the process (so it is in the PID namespace too)."""

    def body() -> int:
        joins = cgroups.open_joins(spec.cgroups)
        try:
            root = os.open(f"/proc/{target}/root", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            if spec.isolation == "rootless":  # first: its other namespaces belong to it, and it gives the rights to enter them
                linux.setns(f"/proc/{target}/ns/user", linux.CLONE_NEWUSER)
            for name, kind in _JOINED:
                linux.setns(f"/proc/{target}/ns/{name}", kind)
        except (FileNotFoundError, ProcessLookupError) as err:
            raise SandboxError(f"sandbox: process {target} is gone") from err
        child = os.fork()
        if child == 0:
            process.enter(spec, report=report, root=root, joins=joins, console=terminal, userns=spec.isolation == "rootless")
        if terminal is not None:
            os.close(terminal[0])
        return _follow(child, report)

    _around(report, fds, caller, body, terminal)


def _around(report: int, fds: list[int | None], caller: int, body: Callable[[], int], terminal: process.Console) -> NoReturn:
    """What both intermediates do around body() (which forks the process and returns its status): die with the
    caller, leave its session, adopt the streams (keeping the console socket); report any failure on one line;
    exit with the status."""
    code = process.SETUP_FAILED
    try:
        linux.prctl(linux.PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != caller:
            os._exit(code)
        os.setsid()  # the terminal's ^C reaches the caller only, which forwards it once
        _adopt(fds, (report,) if terminal is None else (report, terminal[0]))
        code = body()
    except BaseException as err:  # noqa: BLE001 - a child must report and _exit, never unwind into the caller's code
        try:
            process.send(report, error=process.describe(err))
        except OSError:  # the report pipe is already closed: the caller has the status, nothing else to say
            pass
    os._exit(code)


def _follow(child: int, report: int) -> int:
    """The intermediate after the fork: forwards signals to `child`, reports its pid, waits for its status."""
    for sig in _FORWARDED:
        signal.signal(sig, lambda number, _frame: _signal(child, number))
    process.send(report, pid=child)
    os.close(report)
    return _wait(child)


def _signal(pid: int, number: int) -> None:
    with suppress(ProcessLookupError):
        os.kill(pid, number)


def _kill_group(leader: int) -> None:
    """SIGKILLs what is left of the process group the sandboxed process led (its background jobs)."""
    with suppress(ProcessLookupError):
        os.killpg(leader, signal.SIGKILL)


def _adopt(fds: list[int | None], keep: tuple[int, ...]) -> None:
    """Makes the given descriptors 0, 1 and 2 and closes every other one but those to `keep` (the report pipe,
    the console socket)."""
    copies = [None if fd is None else os.dup(fd) for fd in fds]
    for number, fd in enumerate(copies):
        if fd is not None:
            os.dup2(fd, number)
    low = 3
    for fd in sorted(keep):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, _MAX_FD)


def _wait(pid: int) -> int:
    """Waits for `pid` and returns its status as a shell reports it: the exit code, or 128+signal."""
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


class _Reports:
    """What the children wrote on the report pipe: the sandboxed pid, created targets, an error."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.pidfd: int | None = None
        self.pid: int | None = None
        self.created: list[str] = []
        self.error = ""

    def read(self) -> None:
        """Reads until EOF: the exec, or the end of both children."""
        with open(self.fd, "rb") as pipe:
            for line in pipe:
                message = json.loads(line)
                if "pid" in message:
                    self.pid = message["pid"]
                    try:
                        self.pidfd = os.pidfd_open(message["pid"])
                    except ProcessLookupError:
                        pass
                self.created += message.get("created", [])
                self.error = self.error or message.get("error", "")

    def kill(self) -> bool:
        """SIGKILLs the sandboxed process and waits until it and its PID namespace are gone (a pidfd turns
        readable only after PID 1 reaped the namespace); False when its pid never arrived."""
        if self.pidfd is None:
            return False
        signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
        select.select([self.pidfd], [], [])
        return True

    def close(self) -> None:
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None


@contextmanager
def _forwarding(pid: int, reports: _Reports) -> Iterator[None]:
    """Forwards SIGINT, SIGTERM and SIGHUP to the intermediate `pid` (which passes them on) while the
    sandbox runs; a second SIGINT kills the sandboxed process, which as PID 1 may ignore the first.
    Only the main thread may handle signals (signal.signal refuses with ValueError elsewhere, which spares
    importing threading to ask): elsewhere the caller must stop the sandbox itself."""
    interrupts = 0

    def forward(number: int, _frame: object) -> None:
        nonlocal interrupts
        interrupts += number == signal.SIGINT
        with suppress(ProcessLookupError):
            if interrupts > 1 and reports.pidfd is not None:
                signal.pidfd_send_signal(reports.pidfd, signal.SIGKILL)
            else:
                os.kill(pid, number)

    try:
        previous = {sig: signal.signal(sig, forward) for sig in _FORWARDED}
    except ValueError:  # not the main thread: the first signal.signal refused, nothing was replaced
        yield
        return
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
