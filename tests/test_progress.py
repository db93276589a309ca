"""TTY progress on real ptys of 40, 80 and 200 columns: every line fits, the redraw leaves no trails,
and a SIGWINCH makes the next draw fit the new width."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import signal
import struct
import termios
from collections.abc import Iterator

import pytest

from imagekit.progress import TtyProgress

KEYS = ("0123456789ab", "fedcba987654", "a1b2c3d4e5f6")


class Screen:
    """The few terminal controls TtyProgress writes (CR, LF, ESC[nF, ESC[J, ESC[2K), with autowrap."""

    def __init__(self, width: int) -> None:
        self.width = width
        self.rows: list[list[str]] = [[]]
        self.row = 0
        self.col = 0

    def feed(self, text: str) -> None:
        for token in re.findall(r"\x1b\[(\d*)([A-Za-z])|(.)", text, re.S):
            number, command, char = token
            if command == "F":
                self.row, self.col = max(self.row - int(number or 1), 0), 0
            elif command == "J":
                self.rows[self.row] = self.rows[self.row][: self.col]
                del self.rows[self.row + 1 :]
            elif command == "K":
                self.rows[self.row] = []
            elif char == "\r":
                self.col = 0
            elif char == "\n":
                self._down()
            elif char:
                if self.col == self.width:  # autowrap: the character goes to the next row
                    self._down()
                line = self.rows[self.row]
                line.extend(" " * (self.col - len(line)))
                line[self.col : self.col + 1] = [char]
                self.col += 1

    def _down(self) -> None:
        self.row += 1
        self.col = 0
        if self.row == len(self.rows):
            self.rows.append([])

    def lines(self) -> list[str]:
        return ["".join(row).rstrip() for row in self.rows if "".join(row).strip()]


def _set_size(fd: int, columns: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))


@pytest.fixture
def terminal() -> Iterator[tuple[int, int]]:
    master, slave = pty.openpty()
    yield master, slave
    os.close(master)
    os.close(slave)


def _read(master: int) -> str:
    chunks = []
    while True:
        try:
            if not select.select([master], [], [], 0.2)[0]:
                break
            chunks.append(os.read(master, 65536))
        except OSError:
            break
    return b"".join(chunks).decode()


def _pull(progress: TtyProgress) -> None:
    for key in KEYS:
        progress.skip(key, "Waiting")
    for key in KEYS:
        progress.start(key, 35_000_000, "Downloading")
        for step in range(1, 6):
            progress.advance(key, 7_000_000)
            progress.restart(key, step * 7_000_000, "x")  # a forced redraw each step
        progress.finish(key, "Pull complete")
    progress.close()


@pytest.mark.parametrize("columns", [40, 80, 200])
def test_lines_fit_and_redraw_leaves_no_trails(terminal: tuple[int, int], columns: int) -> None:
    master, slave = terminal
    _set_size(slave, columns)
    with os.fdopen(os.dup(slave), "w") as out:
        progress = TtyProgress(out)
        progress.start(KEYS[0], 35_000_000, "Downloading")
        progress.advance(KEYS[0], 7_000_000)
        progress.restart(KEYS[0], 7_000_000, "x")
        mid = Screen(columns)
        mid.feed(_read(master))
        _pull(progress)
    screen = Screen(columns)
    screen.feed(_read(master))
    assert screen.lines() == [f"{key}: Pull complete" for key in KEYS]
    assert all(len(line) < columns for line in mid.lines())
    bar = mid.lines()[0]
    assert ("[" in bar) == (columns >= 80) and bar.startswith(f"{KEYS[0]}: Downloading") and "7MB/35MB" in bar


def test_sigwinch_refits_the_next_draw(terminal: tuple[int, int]) -> None:
    master, slave = terminal
    _set_size(slave, 200)
    with os.fdopen(os.dup(slave), "w") as out:
        progress = TtyProgress(out)
        progress.start(KEYS[0], 35_000_000, "Downloading")
        wide = _read(master)
        _set_size(slave, 30)
        os.kill(os.getpid(), signal.SIGWINCH)
        progress.advance(KEYS[0], 1)  # not forced, yet redrawn because of the resize
        narrow = _read(master)
        progress.close()
    assert "[" in wide
    screen = Screen(30)
    screen.feed(narrow)
    assert screen.lines() == [f"{KEYS[0]}: Downloading"]
    assert signal.getsignal(signal.SIGWINCH) is not progress._on_resize  # close() puts the old handler back
