"""The sandboxed process's standard streams: what a caller may pass as stdin, stdout and stderr.

A stream is None (inherit the caller's), a file descriptor, a file object with a fileno(), or any
other object with read() (stdin) or write() (stdout, stderr): io.BytesIO, io.StringIO, a logger's
adapter. Those get a pipe whose other end a thread serves while the process runs, so output still
arrives as it is written. Descriptors are handed over as they are, never read by the sandbox.

Imports: stdlib only.
"""

from __future__ import annotations

import codecs
import io
import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress

TYPE_CHECKING = False  # typing's import is a run's start-up cost; its names are for the type checker
if TYPE_CHECKING:
    from typing import IO, Any, Union

    #: What may stand for a standard stream (see the module docstring).
    Stream = Union[None, int, IO[Any], Any]


@contextmanager
def stream(given: Stream, number: int) -> Iterator[int | None]:
    """The descriptor the sandboxed process gets as `number` (0, 1 or 2) for the stream `given`; a
    pumped pipe is closed and its thread joined on exit, after the process ended."""
    if given is None or isinstance(given, int):
        yield given
        return
    try:
        fd = given.fileno()
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        fd = None
    if fd is not None:
        if number and hasattr(given, "flush"):
            given.flush()  # what the caller wrote before comes first
        yield fd
        return
    import threading  # here: a run on plain file descriptors starts no thread, and loading threading is 1 ms

    read_end, write_end = os.pipe()
    theirs, ours = (read_end, write_end) if number == 0 else (write_end, read_end)
    pump = threading.Thread(target=_pump_in if number == 0 else _pump_out, args=(given, ours), daemon=True)
    pump.start()
    try:
        yield theirs
    finally:
        os.close(theirs)
        pump.join()


def _pump_out(sink: Any, fd: int) -> None:
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace") if isinstance(sink, io.TextIOBase) else None
    with open(fd, "rb", buffering=0) as pipe:
        while chunk := pipe.read(65536):
            sink.write(decoder.decode(chunk) if decoder else chunk)
        if decoder and (rest := decoder.decode(b"", final=True)):
            sink.write(rest)


def _pump_in(source: Any, fd: int) -> None:
    with suppress(BrokenPipeError), open(fd, "wb") as pipe:  # the process need not read it all
        while chunk := source.read(65536):
            pipe.write(chunk if isinstance(chunk, bytes) else chunk.encode())
            pipe.flush()
