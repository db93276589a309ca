"""The sandboxed process's terminal (Spec.tty, docker's `-t`): a pty from the container's own devpts.

Where the pty comes from: the sandboxed process opens /dev/pts/ptmx of the devpts instance the sandbox mounted
in the container (newinstance, as runc mounts it), after pivot_root, and sends the master to the caller over a
Unix socket, as runc's console socket does. The alternative, os.openpty() on the host with the slave passed in
as an fd, works for reading and writing but names a pty of the host's devpts, which the container cannot see:
`tty` and ttyname() fail or name the wrong device, and a program that reopens its terminal by path (/dev/pts/N,
login shells, sudo, less) cannot. From the container's own devpts the slave is /dev/pts/0 (then 1, 2 for each
`exec -t`), visible inside, exactly as docker's containers show it; and nothing of the host's devpts is used.

Container side (between fork and exec; nothing here takes locks): allocate() makes the pair and hands over
the master, take() makes the slave the process's stdin, stdout, stderr and controlling terminal,
foreground() gives an init's child the terminal's foreground.
Caller side: a Channel receives the master, relay() copies input to it and its output out until the process
ends, with the window size following a terminal of the caller's (SIGWINCH).

Imports: stdlib only; `socket` only with a terminal (a Channel imports it before the fork, so allocate() in
the child finds it loaded: nothing can be imported after pivot_root), keeping it off the plain run path.
"""

from __future__ import annotations

import errno
import fcntl
import os
import select
import signal
import struct
import termios
import time
from contextlib import suppress

#: ioctls the termios module lacks (asm-generic values: x86, arm, arm64, riscv, s390x).
TIOCSPTLCK = 0x40045431
TIOCGPTPEER = 0x5441
PTMX = "/dev/pts/ptmx"
#: Once the process ended, the relay reads on while output comes at least every _QUIET seconds, for at most
#: _DRAIN seconds: a background job of an `exec -t` may hold the terminal open (and even write on) for ever.
_QUIET = 0.2
_DRAIN = 2.0
_CHUNK = 65536


def window_size(fd: int | None) -> bytes | None:
    """The window size (a struct winsize) of the terminal `fd`; None when `fd` is not a terminal."""
    if fd is None:
        return None
    try:
        return fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8)
    except OSError:
        return None


def allocate(console: int, size: bytes | None) -> int:
    """Opens a new pty in the container's devpts, sets its window size, sends the master on the socket
    `console` (then closed) and returns the slave."""
    master = os.open(PTMX, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    try:
        fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))
        slave = fcntl.ioctl(master, TIOCGPTPEER, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
        if size is not None:
            fcntl.ioctl(master, termios.TIOCSWINSZ, size)
        import socket  # loaded by the caller's Channel before the fork

        with socket.socket(fileno=console) as sock:  # closes `console` too
            socket.send_fds(sock, [b"M"], [master])
    finally:
        os.close(master)
    return slave


def take(slave: int, uid: int, gid: int) -> None:
    """Makes `slave` the controlling terminal of this process (a session leader by now) and its fds 0, 1
    and 2, owned by the user the process becomes, as runc leaves it (so it may reopen /dev/pts/N)."""
    os.fchown(slave, uid, gid)
    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
    for number in (0, 1, 2):
        os.dup2(slave, number)
    os.close(slave)


def foreground() -> None:
    """For the command an init forks: its own process group, made the terminal's foreground one, so the
    terminal's ^C reaches the command and not the init (tini does the same)."""
    os.setpgid(0, 0)
    previous = signal.signal(signal.SIGTTOU, signal.SIG_IGN)  # a background group may not take the terminal otherwise
    try:
        os.tcsetpgrp(0, os.getpgrp())
    finally:
        signal.signal(signal.SIGTTOU, previous)


class Channel:
    """The caller's side of the console socket (a context manager): `child` is what the children get (their
    end and the window size for allocate()), `receive()` the master they sent back, closed on exit."""

    def __init__(self, size_from: int | None) -> None:
        import socket  # only with a terminal (see the module's docstring)

        self._ours, self._theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.child = (self._theirs.fileno(), window_size(size_from))
        self.master: int | None = None

    def forked(self) -> None:
        """Drops our copy of the children's end, so that a child that ends before sending closes the socket."""
        self._theirs.close()

    def receive(self) -> int | None:
        """The master the sandboxed process sent; None when it ended before sending one."""
        import socket

        _, fds, _, _ = socket.recv_fds(self._ours, 1, 1)
        self.master = fds[0] if fds else None
        return self.master

    def __enter__(self) -> Channel:
        return self

    def __exit__(self, *_exc: object) -> None:
        self._ours.close()
        self._theirs.close()
        if self.master is not None:
            os.close(self.master)


def relay(master: int, source: int | None, sink: int, done: int, size_from: int | None) -> None:
    """Copies `source` (None: nothing) to the pty `master` and the pty's output to `sink` until the process
    ends (`done`, a pidfd, turns readable) and its output is read. Input is buffered, not blocked on, so a
    process that reads nothing never stops its output. With `size_from` (a terminal) the pty takes its window
    size on every SIGWINCH (the handler needs the main thread; elsewhere it is copied once, here)."""
    os.set_blocking(master, False)
    previous = None
    if size_from is not None:
        with suppress(ValueError):  # off the main thread signal.signal refuses, and the size stays
            previous = signal.signal(signal.SIGWINCH, lambda _number, _frame: _copy_size(size_from, master))
        _copy_size(size_from, master)  # a resize between the fork and this handler
    try:
        _pump(master, source, sink, done)
    finally:
        if previous is not None:
            signal.signal(signal.SIGWINCH, previous)


def _pump(master: int, source: int | None, sink: int, done: int) -> None:
    pending = b""
    ended: float | None = None  # when `done` turned readable
    while ended is None or time.monotonic() - ended < _DRAIN:
        readers = [master] + ([source] if source is not None and len(pending) < _CHUNK else []) + ([done] if ended is None else [])
        readable, writable, _ = select.select(readers, [master] if pending else [], [], None if ended is None else _QUIET)
        if not readable and not writable:
            return  # ended and quiet: what still holds the terminal is a background job's
        if master in readable:
            output = _read_pty(master)
            if output is None:
                return
            _write_all(sink, output)
        if done in readable:
            ended = time.monotonic()
        if source is not None and source in readable:
            data = os.read(source, _CHUNK)
            if data:
                pending += data
            else:
                source = None  # end of input: a terminal has no end-of-file to pass on, the process reads on
        if master in writable:
            with suppress(BlockingIOError):
                pending = pending[os.write(master, pending):]


def _read_pty(master: int) -> bytes | None:
    """What the pty printed (b"" when nothing after all); None once every slave is closed (EIO): the process
    and everything it started are gone."""
    try:
        return os.read(master, _CHUNK) or None
    except BlockingIOError:
        return b""
    except OSError as err:
        if err.errno != errno.EIO:
            raise
        return None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _copy_size(source: int, master: int) -> None:
    size = window_size(source)
    if size is not None:
        with suppress(OSError):
            fcntl.ioctl(master, termios.TIOCSWINSZ, size)
