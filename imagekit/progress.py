"""Progress of blob transfers: per-blob bars with bytes and speed on a TTY, plain lines otherwise, or nothing.

Transfers report events (`start`, `advance`, `restart`, `finish`) keyed by a short blob name, from any
thread; a reporter turns them into output. The TTY reporter redraws at most ten times a second, so
reporting costs one lock and one addition per 1 MiB chunk. Output goes to the stream given (stderr in the
CLI), leaving stdout for what scripts read (a digest).

Imports: stdlib and imagekit.errors only.
"""

from __future__ import annotations

import io
import os
import signal
import threading
import time
from typing import Any, TextIO

_REDRAW_SECONDS = 0.1
_BAR_WIDTH = 30


def human_size(size: float) -> str:
    """Docker's style of size: 1000-based units, three significant digits (`12.3MB`)."""
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f}{unit}" if unit == "B" else f"{size:.3g}{unit}"
        size /= 1000
    raise AssertionError("unreachable")


class _Bar:
    """One transfer's line while it moves: updated in place, so not a value."""

    def __init__(self, action: str, total: int, status: str = "") -> None:
        self.action = action
        self.total = total
        self.done = 0
        self.status = status
        self.started = time.monotonic()
        self.ended: float | None = None

    def speed(self) -> float:
        elapsed = (self.ended or time.monotonic()) - self.started
        return self.done / elapsed if elapsed > 0 else 0.0


class Progress:
    """Silent reporter, and the interface of the others: `-q` uses it as is."""

    def start(self, key: str, total: int, action: str) -> None:
        """A transfer of `total` bytes begins (`action` is e.g. "Downloading")."""

    def skip(self, key: str, status: str) -> None:
        """No transfer needed (e.g. "Already exists")."""

    def advance(self, key: str, amount: int) -> None:
        """`amount` more bytes moved."""

    def restart(self, key: str, done: int, reason: str) -> None:
        """The transfer resumes at `done` bytes after a failure (`reason`, one line)."""

    def finish(self, key: str, status: str) -> None:
        """The transfer ended well (e.g. "Pull complete")."""

    def close(self) -> None:
        """Flushes the final state."""


class LineProgress(Progress):
    """One line per event that matters, for logs and CI: start, retries and completion with speed."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._lock = threading.Lock()
        self._bars: dict[str, _Bar] = {}

    def _line(self, text: str) -> None:
        with self._lock:
            self._out.write(text + "\n")
            self._out.flush()

    def start(self, key: str, total: int, action: str) -> None:
        self._bars[key] = _Bar(action, total)
        self._line(f"{key}: {action} {human_size(total)}")

    def skip(self, key: str, status: str) -> None:
        self._line(f"{key}: {status}")

    def advance(self, key: str, amount: int) -> None:
        self._bars[key].done += amount

    def restart(self, key: str, done: int, reason: str) -> None:
        self._bars[key].done = done
        self._line(f"{key}: retrying at {human_size(done)}: {reason}")

    def finish(self, key: str, status: str) -> None:
        bar = self._bars[key]
        bar.ended = time.monotonic()
        self._line(f"{key}: {status} ({human_size(bar.done)} in {bar.ended - bar.started:.1f}s, {human_size(bar.speed())}/s)")


class TtyProgress(Progress):
    """docker-pull style: one line per blob, redrawn in place with a bar, bytes and speed.

    Every line is fitted to the terminal's width, read again after each SIGWINCH: a line that wrapped
    would push the cursor-up redraw out of step and leave trails. What does not fit goes in docker's
    order: first the bar, then the speed, then the byte counts; a line still too long is cut.
    """

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._lock = threading.Lock()
        self._bars: dict[str, _Bar] = {}
        self._drawn = 0
        self._last = 0.0
        self._width = _terminal_width(out)
        self._resized = False
        self._previous_handler: Any = None
        if threading.current_thread() is threading.main_thread():
            self._previous_handler = signal.signal(signal.SIGWINCH, self._on_resize)

    def _on_resize(self, signum: int, frame: object) -> None:
        """SIGWINCH: only flags it (the handler may interrupt a draw holding the lock); the next draw re-fits."""
        self._resized = True

    def _render(self, key: str, bar: _Bar) -> str:
        width = self._width - 1  # never the last column: some terminals wrap as soon as it is written
        if bar.status:
            return f"{key}: {bar.status}"[:width]
        filled = int(_BAR_WIDTH * bar.done / bar.total) if bar.total else _BAR_WIDTH
        arrow = "=" * max(filled - 1, 0) + (">" if filled else "")
        counts = f" {human_size(bar.done)}/{human_size(bar.total)}"
        speed = f" {human_size(bar.speed())}/s"
        for line in (
            f"{key}: {bar.action} [{arrow:<{_BAR_WIDTH}}]{counts}{speed}",
            f"{key}: {bar.action}{counts}{speed}",
            f"{key}: {bar.action}{counts}",
        ):
            if len(line) <= width:
                return line
        return f"{key}: {bar.action}"[:width]

    def _draw(self, force: bool = False) -> None:
        """Redraws every line in place (cursor up, clear to the end of the screen); throttled unless
        forced or the terminal was resized. Lock held."""
        now = time.monotonic()
        if self._resized:
            self._resized = False
            self._width = _terminal_width(self._out)
            force = True
        if not force and now - self._last < _REDRAW_SECONDS:
            return
        self._last = now
        up = f"\x1b[{self._drawn}F\x1b[J" if self._drawn else ""
        lines = "".join(f"\x1b[2K{self._render(k, b)}\n" for k, b in self._bars.items())
        self._out.write(up + lines)
        self._out.flush()
        self._drawn = len(self._bars)

    def start(self, key: str, total: int, action: str) -> None:
        with self._lock:
            self._bars[key] = _Bar(action, total)
            self._draw(force=True)

    def skip(self, key: str, status: str) -> None:
        with self._lock:
            self._bars[key] = _Bar("", 0, status=status)
            self._draw(force=True)

    def advance(self, key: str, amount: int) -> None:
        with self._lock:
            self._bars[key].done += amount
            self._draw()

    def restart(self, key: str, done: int, reason: str) -> None:
        with self._lock:
            self._bars[key].done = done
            self._draw(force=True)

    def finish(self, key: str, status: str) -> None:
        with self._lock:
            bar = self._bars[key]
            bar.ended = time.monotonic()
            bar.status = status
            self._draw(force=True)

    def close(self) -> None:
        with self._lock:
            self._draw(force=True)
        if self._previous_handler is not None:
            signal.signal(signal.SIGWINCH, self._previous_handler)
            self._previous_handler = None


def _terminal_width(out: TextIO) -> int:
    """The width of the terminal `out` writes to; 80 when it cannot be asked (or says 0)."""
    try:
        return os.get_terminal_size(out.fileno()).columns or 80
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        return 80


def reporter(out: TextIO, *, quiet: bool = False) -> Progress:
    """The reporter for a stream: silent with `quiet`, bars on a terminal, lines otherwise."""
    if quiet:
        return Progress()
    return TtyProgress(out) if out.isatty() else LineProgress(out)
