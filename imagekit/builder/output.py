"""What a build prints while it runs, as `docker build --progress=plain` and buildah do.

A line per step (`STEP 2/7: RUN make`), the step's own output as it comes, `--> CACHED` for a cache hit,
`--> 1.2s` when a step finishes, and the image ID at the end. Everything goes to stderr, so stdout
carries only the image ID that scripts capture; `-q` keeps stderr silent unless a step fails, and
then shows the failing step's last lines of output so the reason is never lost.

Imports: stdlib only.
"""

from __future__ import annotations

import collections
import os
import sys
import threading
import time
from typing import TextIO

#: Lines of a step's output kept for the error report under -q.
TAIL_LINES = 20


class BuildOutput:
    """The build's voice on stderr; `quiet` keeps it silent except for a failing step's output."""

    def __init__(self, quiet: bool = False, stream: TextIO | None = None) -> None:
        self.quiet = quiet
        self._stream = stream
        self._started = 0.0

    @property
    def stream(self) -> TextIO:
        return self._stream or sys.stderr

    def say(self, text: str) -> None:
        if not self.quiet:
            print(text, file=self.stream, flush=True)

    def step(self, number: int, total: int, text: str) -> None:
        self._started = time.monotonic()
        self.say(f"STEP {number}/{total}: {text}")

    def cached(self) -> None:
        self.say("--> CACHED")

    def done(self) -> None:
        self.say(f"--> {time.monotonic() - self._started:.1f}s")

    def relay(self) -> Relay:
        """A pipe for a step's process output: copied to stderr as it comes (unless quiet), its tail kept."""
        return Relay(None if self.quiet else self.stream)


class Relay:
    """A pipe whose reading end a thread copies to `stream` line by line and whose last lines it keeps.

    Use as a context manager: the write end (`fd`) goes to the process; on exit the write end is
    closed and the thread drains what is left, so every line is shown before the next step starts."""

    def __init__(self, stream: TextIO | None) -> None:
        self._stream = stream
        self.tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self._read, self.fd = os.pipe()
        self._thread = threading.Thread(target=self._copy, name="imagekit-build-output", daemon=True)

    def __enter__(self) -> Relay:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close_writer()
        self._thread.join()

    def close_writer(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def _copy(self) -> None:
        with os.fdopen(self._read, "rb") as pipe:
            for raw in pipe:
                line = raw.decode("utf-8", "replace").rstrip("\n")
                self.tail.append(line)
                if self._stream is not None:
                    print(line, file=self._stream, flush=True)
