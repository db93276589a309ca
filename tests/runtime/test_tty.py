"""`run -t` / `exec -t`: a pty of the container's own devpts, the caller's terminal raw for the session and restored,
the window size followed on SIGWINCH, ^C turned into SIGINT inside by the container's terminal; docker's edge cases.

The interactive tests drive the real CLI on the slave of a pty this test holds (its controlling terminal, so a
TIOCSWINSZ on the master sends it SIGWINCH, as a terminal emulator's resize does) and read what it prints with a
deadline on every read, so a hang fails the test instead of blocking the suite."""

from __future__ import annotations

import fcntl
import os
import re
import select
import signal
import struct
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import imagekit
from imagekit.registry.options import DOCKER_HUB_API_ENV
from tests.runtime.conftest import CLOSED_PORT, IMAGEKIT, Run, inspect, ok, one_line_error, wait_for

DEADLINE = 30
#: Busybox sh's prompt as root (PS1 unset), then its line editor's cursor position query, if any, and nothing more.
PROMPT = re.compile(rb"# (\x1b\[6n)?$")


class Terminal:
    """The CLI as a user at a terminal runs it: `argv` on the slave of a fresh pty of `rows` x `cols`."""

    def __init__(self, root: Path, *args: str, rows: int = 24, cols: int = 80) -> None:
        self.master, self.slave = os.openpty()
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.mode = termios.tcgetattr(self.slave)
        env = {k: v for k, v in os.environ.items() if k != "IMAGEKIT_ROOT"}
        env[DOCKER_HUB_API_ENV] = CLOSED_PORT
        self.pid = os.fork()
        if self.pid == 0:
            try:
                os.setsid()
                fcntl.ioctl(self.slave, termios.TIOCSCTTY, 0)
                for number in (0, 1, 2):
                    os.dup2(self.slave, number)
                os.execve(IMAGEKIT, [IMAGEKIT, "--root", str(root), *args], env)
            finally:
                os._exit(127)
        self.output = b""
        self.status: int | None = None

    def expect(self, pattern: bytes | re.Pattern[bytes], timeout: float = DEADLINE) -> bytes:
        """Reads until `pattern` appears in what came after the last match; that output, up to the match's end."""
        regex = pattern if isinstance(pattern, re.Pattern) else re.compile(re.escape(pattern))
        deadline = time.monotonic() + timeout
        while not (match := regex.search(self.output)):
            left = deadline - time.monotonic()
            if left <= 0 or not self._read(left):
                pytest.fail(f"{regex.pattern!r} never came; the terminal showed {self.output!r}")
        seen, self.output = self.output[: match.end()], self.output[match.end():]
        return seen

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    def resize(self, rows: int, cols: int) -> None:
        fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def wait(self, timeout: float = DEADLINE) -> int:
        """The CLI's exit status (reading on meanwhile, so it never blocks on a full terminal)."""
        deadline = time.monotonic() + timeout
        while True:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = os.waitstatus_to_exitcode(status)
                return self.status
            if time.monotonic() > deadline:
                pytest.fail(f"imagekit did not exit; the terminal showed {self.output!r}")
            self._read(0.05)

    def close(self) -> None:
        if self.status is None:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        os.close(self.master)
        os.close(self.slave)

    def _read(self, timeout: float) -> bool:
        if not select.select([self.master], [], [], timeout)[0]:
            return False
        self.output += os.read(self.master, 65536)
        return True


@pytest.fixture
def terminal(root: Path) -> Iterator[type[Terminal]]:
    """`terminal(*args, rows=, cols=)`: a Terminal on this test's store, killed at the end if still running."""
    opened: list[Terminal] = []

    def open_one(*args: str, rows: int = 24, cols: int = 80) -> Terminal:
        opened.append(Terminal(root, *args, rows=rows, cols=cols))
        return opened[-1]

    yield open_one  # type: ignore[misc]
    for term in opened:
        term.close()


def _session(term: Terminal) -> None:
    """What a user does in a shell on the container's terminal: its name, arithmetic, its window size before
    and after a resize of the outer terminal, ^C on a foreground job; then `exit 3`."""
    term.expect(PROMPT)
    term.send(b"tty; echo $TERM $((6*7))\n")
    assert re.search(rb"\r\n/dev/pts/\d+\r\nxterm 42\r\n", term.expect(PROMPT))
    term.send(b"stty size\n")
    assert b"\r\n31 97\r\n" in term.expect(PROMPT)  # the outer terminal's size, given at the start
    term.resize(40, 120)
    term.send(b"stty size\n")
    assert b"\r\n40 120\r\n" in term.expect(PROMPT)  # and followed on SIGWINCH
    term.send(b"sh -c 'echo sleeping; exec sleep 100'\n")
    term.expect(b"\r\nsleeping\r\n")
    term.send(b"\x03")  # a byte through the raw outer terminal; the container's terminal makes it SIGINT
    term.expect(PROMPT)
    term.send(b"echo status=$?\n")
    assert b"\r\nstatus=130\r\n" in term.expect(PROMPT)
    term.send(b"exit 3\n")
    assert term.wait() == 3


def test_run_it_is_an_interactive_shell_on_the_containers_own_terminal(terminal) -> None:  # type: ignore[no-untyped-def]
    term = terminal("run", "--rm", "-it", "--network", "none", "busybox", "sh", rows=31, cols=97)
    _session(term)
    assert termios.tcgetattr(term.slave) == term.mode  # the outer terminal is no longer raw


def test_exec_it_is_an_interactive_shell_on_a_new_terminal_of_the_container(terminal, ik: Run) -> None:  # type: ignore[no-untyped-def]
    ok(ik("run", "-d", "--name", "box", "--network", "none", "busybox", "sleep", "300"))
    term = terminal("exec", "-it", "box", "sh", rows=31, cols=97)
    _session(term)
    assert termios.tcgetattr(term.slave) == term.mode


def test_the_outer_terminal_is_restored_after_an_error_and_a_signal(terminal, ik: Run) -> None:  # type: ignore[no-untyped-def]
    ok(ik("run", "-d", "--name", "box", "--network", "none", "busybox", "sleep", "300"))
    failed = terminal("exec", "-it", "-u", "nosuch", "box", "sh")
    assert failed.wait() == 125
    assert failed.expect(b"imagekit: ") and b"nosuch" in failed.expect(b"\n")
    assert termios.tcgetattr(failed.slave) == failed.mode
    term = terminal("run", "--rm", "-it", "--init", "--network", "none", "busybox", "sh", "-c", "echo sleeping; exec sleep 100")
    term.expect(b"sleeping\r\n")
    os.kill(term.pid, signal.SIGTERM)  # forwarded to the container, whose init passes it on
    assert term.wait() == 128 + signal.SIGTERM
    assert termios.tcgetattr(term.slave) == term.mode


def test_init_gives_the_command_the_terminals_foreground(ik: Run) -> None:
    """The command's own process group is the terminal's foreground one: ^C reaches it once, not also the init."""
    out = ok(ik("run", "--rm", "-t", "--init", "--network", "none", "busybox", "sh", "-c", "echo $$; cut -d' ' -f5,8 /proc/$$/stat"))
    pid, groups = out.split("\r\n")[:2]
    assert pid != "1" and groups == f"{pid} {pid}"  # its pgrp, the terminal's pgrp: the command's, not PID 1's


def test_t_without_a_terminal_is_allowed_and_merges_stdout_and_stderr(ik: Run) -> None:
    result = ik("run", "--rm", "-t", "--network", "none", "busybox", "sh", "-c", "tty; echo $TERM; echo err >&2; exit 4")
    assert result.returncode == 4
    assert result.stdout == "/dev/pts/0\r\nxterm\r\nerr\r\n"  # one stream, with the terminal's \r\n; TERM as docker sets it
    assert result.stderr == ""


def test_it_with_stdin_not_a_terminal_is_one_line_exit_125(ik: Run) -> None:
    for args in (("run", "--rm", "-it", "--network", "none", "busybox", "true"), ("exec", "-it", "nosuch", "true")):
        result = ik(*args, input=b"")
        assert one_line_error(result) == "imagekit: the input device is not a TTY"
        assert result.returncode == 125
    assert ok(ik("ps", "-aq")) == ""
    ok(ik("run", "-dit", "--name", "kept", "--network", "none", "busybox", "sh", input=b""))  # detached: nothing attaches stdin
    assert inspect(ik, "kept")["Config"]["Tty"] is True


def test_detached_t_writes_the_terminals_output_to_the_log(ik: Run, root: Path) -> None:
    container = ok(ik("run", "-d", "-t", "--name", "logged", "--network", "none", "busybox", "sh", "-c", "echo one; echo two >&2")).strip()
    wait_for(lambda: ik("ps", "-q").stdout == "")
    assert ok(ik("logs", "logged")) == "one\r\ntwo\r\n"
    assert inspect(ik, "logged")["Config"]["Tty"] is True
    handle = imagekit.run("busybox", ["tty"], root=root, tty=True, network="none")
    assert handle.wait(timeout=30) == 0
    assert handle.logs() == b"/dev/pts/0\r\n"
    assert container != handle.id
