"""The process's standard streams as the caller gives them: buffered file objects, one object for stdout and
stderr, sink and source objects without a descriptor, and the caller's own descriptors behind a terminal."""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from imagekit.sandbox import run
from tests.sandbox.conftest import Box


def test_what_the_caller_wrote_to_a_buffered_stdout_or_stderr_object_comes_first(box: Box, tmp_path: Path) -> None:
    with open(tmp_path / "out", "wb") as out, open(tmp_path / "err", "wb") as err:
        out.write(b"caller out\n")
        err.write(b"caller err\n")
        result = run(box.spec("echo out; echo err >&2"), stdout=out, stderr=err)
    assert result.status == 0
    assert ((tmp_path / "out").read_bytes(), (tmp_path / "err").read_bytes()) == (b"caller out\nout\n", b"caller err\nerr\n")


def test_stderr_given_as_the_stdout_object_is_the_same_descriptor(box: Box) -> None:
    """One pipe for both keeps a captured interleaving in the order it was written (two pipes, two pumps would not)."""
    out = io.BytesIO()
    result = run(box.spec("busybox readlink /proc/self/fd/1; busybox readlink /proc/self/fd/2 >&2"), stdout=out, stderr=out)
    first, second = out.getvalue().decode().splitlines()
    assert (result.status, first.startswith("pipe:"), first) == (0, True, second)


class _Sink:
    """An object with write() and no fileno() (a logger's adapter): it must get output as the process writes it.
    On the first output it answers on the process's stdin."""

    def __init__(self, answer: int) -> None:
        self.chunks: list[bytes] = []
        self.answer = answer

    def write(self, chunk: bytes) -> None:
        self.chunks.append(chunk)
        if len(self.chunks) == 1:
            os.write(self.answer, b"go\n")


def test_a_sink_object_without_a_descriptor_gets_output_while_the_process_runs(box: Box) -> None:
    in_r, in_w = os.pipe()
    sink = _Sink(in_w)
    try:
        # The bound only ends a run whose output waited for the end (then the answer comes too late: "got ").
        result = run(box.spec('echo first; read -t 3 line; echo "got $line"'), stdin=in_r, stdout=sink)
    finally:
        os.close(in_r)
        os.close(in_w)
    assert (result.status, sink.chunks[0], b"".join(sink.chunks)) == (0, b"first\n", b"first\ngot go\n")


def test_input_the_process_leaves_unread_ends_the_pump_quietly(box: Box, monkeypatch: pytest.MonkeyPatch) -> None:
    """`true` reads none of 1 MiB: the pump's write fails with EPIPE once the process is gone, which is no error."""
    raised: list[object] = []
    monkeypatch.setattr(threading, "excepthook", raised.append)
    result = run(box.spec("true"), stdin=io.BytesIO(b"x" * (1 << 20)))
    assert (result.status, raised) == (0, [])


@contextmanager
def _as_fds_0_and_1(source: int, sink: int) -> Iterator[None]:
    """This process's fds 0 and 1 are `source` and `sink` for a while (the tty relay's defaults)."""
    saved = [os.dup(0), os.dup(1)]
    try:
        os.dup2(source, 0)
        os.dup2(sink, 1)
        yield
    finally:
        for number, fd in enumerate(saved):
            os.dup2(fd, number)
            os.close(fd)


def _input(data: bytes) -> int:
    """The read end of a pipe holding `data` and then its end."""
    read_end, write_end = os.pipe()
    os.write(write_end, data)
    os.close(write_end)
    return read_end


def _tty_run(box: Box, fd0: bytes, fd1: Path, **streams: object) -> bytes:
    """What a tty run of `read line; echo got $line` printed to this process's fd 1 (a file) with `fd0` on its fd 0."""
    source = _input(fd0)
    try:
        with open(fd1, "wb") as sink, _as_fds_0_and_1(source, sink.fileno()):
            result = run(box.spec('read -t 3 line; echo "got $line"', tty=True), **streams)  # type: ignore[arg-type]
    finally:
        os.close(source)
    assert result.status == 0
    return fd1.read_bytes()


def test_a_tty_run_relays_the_callers_fd_0_without_stdin_and_to_its_fd_1_without_stdout(box: Box, tmp_path: Path) -> None:
    # The pty's echo of the input comes before the answer.
    assert b"got typed\r\n" in _tty_run(box, b"typed\n", tmp_path / "alone")
    assert b"got given\r\n" in _tty_run(box, b"from fd 0\n", tmp_path / "stdin given", stdin=io.BytesIO(b"given\n"))
