"""The sandbox's life: streamed output, forwarded signals, 128+signal, and nothing left when the caller dies."""

from __future__ import annotations

import io
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

import pytest

from imagekit.sandbox import Result, join, run
from imagekit.sandbox.run import _Reports
from imagekit.values import asdict
from tests.sandbox.conftest import Box, children, until

ROOT = Path(__file__).resolve().parents[2]
# A caller in its own process: runs the spec given as JSON on argv[1] in its main thread, prints the status.
CALLER = """
import json, sys
from imagekit.sandbox import Rootfs, Spec, run
fields = json.loads(sys.argv[1])
fields["rootfs"] = Rootfs(**{k: tuple(v) if isinstance(v, list) else v for k, v in fields["rootfs"].items()})
spec = Spec(**{k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()})
print("status", run(spec).status, flush=True)
"""


def _caller(box: Box, script: str, env: tuple[str, ...] = ()) -> subprocess.Popen[str]:
    spec = asdict(box.spec(script, env=("PATH=/bin", *env)))
    return subprocess.Popen([sys.executable, "-c", CALLER, json.dumps(spec)], stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})


def _with_marker(marker: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and marker.encode() in Path(f"/proc/{entry}/environ").read_bytes():
                found.append(int(entry))
        except OSError:
            continue
    return found


def test_output_streams_while_the_process_runs(box: Box) -> None:
    out_r, out_w = os.pipe()
    in_r, in_w = os.pipe()
    results: list[Result] = []
    worker = threading.Thread(target=lambda: results.append(run(box.spec('echo first; read line; echo "got $line"'), stdin=in_r, stdout=out_w)))
    worker.start()
    try:
        assert select.select([out_r], [], [], 60)[0], "no output while the process waits for input"
        assert os.read(out_r, 100) == b"first\n"  # the process is still blocked in `read`: this was streamed
        os.write(in_w, b"go\n")
        worker.join(60)
        assert results[0].status == 0
        assert os.read(out_r, 100) == b"got go\n"
    finally:
        for fd in (out_r, out_w, in_r, in_w):
            os.close(fd)


def test_text_and_bytes_objects_capture_output_and_feed_input(box: Box) -> None:
    out, err = io.StringIO(), io.BytesIO()
    text = "h\u00e9llo \u2603 " * 20000  # multi-byte characters across the pump's chunks
    # The bound fails the test (the text is cut short) instead of waiting for ever on a pipe never closed.
    result = run(box.spec("busybox timeout 2 cat; echo oops >&2; exit 4"), stdin=io.StringIO(text), stdout=out, stderr=err)
    assert (result.status, out.getvalue(), err.getvalue()) == (4, text, b"oops\n")


def test_a_text_sink_gets_invalid_utf8_and_a_cut_last_character_as_replacement_characters(box: Box) -> None:
    """Output is not trusted to be UTF-8: a bad byte and a sequence the process never finished become U+FFFD
    instead of ending the pump (and the output) with a decode error."""
    out = io.StringIO()
    result = run(box.spec(r"printf 'a\377b\342\230'"), stdout=out)
    assert (result.status, out.getvalue()) == (0, "a\ufffdb\ufffd")


def test_sigterm_to_the_caller_reaches_the_process(box: Box) -> None:
    caller = _caller(box, "trap 'echo got TERM; exit 7' TERM; echo ready; sleep 100 & wait")
    assert caller.stdout is not None
    try:
        assert caller.stdout.readline() == "ready\n"
        caller.send_signal(signal.SIGTERM)
        assert caller.stdout.read().splitlines() == ["got TERM", "status 7"]
    finally:
        caller.kill()
        caller.wait()


def test_the_first_sigint_is_forwarded_and_the_second_kills(box: Box) -> None:
    caller = _caller(box, "trap 'echo got INT' INT; echo ready; while :; do sleep 1 & wait; done")
    assert caller.stdout is not None
    try:
        assert caller.stdout.readline() == "ready\n"
        caller.send_signal(signal.SIGINT)
        assert caller.stdout.readline() == "got INT\n"  # handled by the process, which goes on
        caller.send_signal(signal.SIGINT)
        assert caller.stdout.read() == "status 137\n"
    finally:
        caller.kill()
        caller.wait()


def test_sigterm_to_a_joining_caller_reaches_the_joined_process(box: Box) -> None:
    """`exec` forwards as `run` does: the caller's SIGTERM ends the joined process through its trap, and the
    caller's own handler never sees it. In-process (the join runs on this main thread) so that mutmut sees it."""
    pids: list[int] = []
    target = threading.Thread(target=lambda: run(box.spec("exec sleep 60"), stdout=io.BytesIO(), started=pids.append))
    target.start()
    out_r, out_w = os.pipe()
    reached_us: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda number, _frame: reached_us.append(number))

    def terminate_once_ready() -> None:
        with os.fdopen(os.dup(out_r), "rb", buffering=0) as output:
            if output.read(6) == b"ready\n":
                os.kill(os.getpid(), signal.SIGTERM)

    terminator = threading.Thread(target=terminate_once_ready)
    terminator.start()  # it waits for "ready", or for the end of the output once out_w is closed below
    try:
        until(lambda: pids, "the target never started")
        # Unforwarded, the trap never runs and the join ends with the 3 s sleep, status 0.
        result = join(pids[0], box.spec("trap 'exit 7' TERM; echo ready; sleep 3 & wait"), stdout=out_w)
        assert (result.status, reached_us) == (7, [])
    finally:
        signal.signal(signal.SIGTERM, previous)
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        target.join(30)
        os.close(out_w)
        terminator.join(30)
        os.close(out_r)


def test_a_killed_process_reports_128_plus_the_signal(box: Box) -> None:
    caller = _caller(box, "echo ready; sleep 100 & wait")
    assert caller.stdout is not None
    try:
        assert caller.stdout.readline() == "ready\n"
        (intermediate,) = children(caller.pid)
        (pid1,) = children(intermediate)
        os.kill(pid1, signal.SIGKILL)
        assert caller.stdout.read() == "status 137\n"
    finally:
        caller.kill()
        caller.wait()


def test_sigkill_of_the_caller_leaves_no_process(box: Box) -> None:
    marker = f"MARKER={uuid.uuid4()}"
    caller = _caller(box, "sleep 100 & echo ready; exec sleep 101", env=(marker,))
    assert caller.stdout is not None
    try:
        assert caller.stdout.readline() == "ready\n"
        assert len(_with_marker(marker)) == 2
        caller.kill()
        caller.wait()
        until(lambda: not _with_marker(marker), "sandboxed processes outlived their caller")
    finally:
        caller.kill()
        caller.wait()


def test_no_process_is_left_after_run_returns(box: Box) -> None:
    marker = f"MARKER={uuid.uuid4()}"
    status, _, _ = box.sh("sleep 100 & sleep 100 & exit 0", env=("PATH=/bin", marker))
    assert status == 0 and _with_marker(marker) == []  # PID 1's exit took the namespace with it, synchronously


#: What the next child the test process forks (run()'s intermediate) does first: [(the test process, action)].
_AFTER_FORK: list[tuple[int, Callable[[], None]]] = []
_AFTER_FORK_HOOKED: list[bool] = []


def _after_fork() -> None:
    if _AFTER_FORK and os.getppid() == _AFTER_FORK[0][0]:  # not the intermediate's own child
        _AFTER_FORK[0][1]()


@contextmanager
def _first_in_the_intermediate(action: Callable[[], None]) -> Iterator[None]:
    """`action` runs in run()'s intermediate right after the fork, before it reports anything: a hold-up or a
    death made from outside the sandbox code (os.register_at_fork; the hook stays, idle, once registered)."""
    if not _AFTER_FORK_HOOKED:
        os.register_at_fork(after_in_child=_after_fork)
        _AFTER_FORK_HOOKED.append(True)
    _AFTER_FORK[:] = [(os.getpid(), action)]
    try:
        yield
    finally:
        _AFTER_FORK.clear()


def test_an_intermediate_killed_before_it_reports_is_128_plus_the_signal_and_started_is_not_called(box: Box) -> None:
    """SIGKILLed from outside before it reports a pid or an error: the status a killed process has, no pid for `started`."""
    started: list[object] = []
    with _first_in_the_intermediate(lambda: os.kill(os.getpid(), signal.SIGKILL)):
        result = run(box.spec("touch /ran"), started=started.append)
    assert (result.status, result.created, started, (box.upper / "ran").exists()) == (137, (), [], False)


class _Interrupted(Exception):
    pass


def _reading_reports(frame: FrameType | None) -> bool:
    while frame is not None:
        if isinstance(frame.f_locals.get("self"), _Reports):
            return True
        frame = frame.f_back
    return False


def test_a_caller_interrupted_before_the_pid_arrives_kills_the_setup_and_raises(box: Box, tmp_path: Path) -> None:
    """The intermediate holds up (3 s) before it forks the process; the caller, waiting for its reports, is
    interrupted (a SIGALRM every 10 ms raises once it waits there). Without a pid to kill the process by, the
    caller SIGKILLs the intermediate, which never gets past its hold-up; a caller that waited for it instead would
    see it go on (then fail to report on the closed pipe, so the command would not run either way)."""

    def interrupt(_number: int, frame: FrameType | None) -> None:
        if _reading_reports(frame):
            signal.setitimer(signal.ITIMER_REAL, 0)
            raise _Interrupted

    def hold_up() -> None:
        time.sleep(3)
        (tmp_path / "went on").touch()

    before = set(children(os.getpid()))
    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        with _first_in_the_intermediate(hold_up), pytest.raises(_Interrupted):
            signal.setitimer(signal.ITIMER_REAL, 0.01, 0.01)
            run(box.spec("touch /ran"))
        assert (set(children(os.getpid())) - before, (tmp_path / "went on").exists(), (box.upper / "ran").exists()) == (set(), False, False)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        for pid in set(children(os.getpid())) - before:  # what a broken _launch left
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)


def test_a_caller_failing_after_the_pid_arrived_kills_the_process_first_and_raises_its_own_error(box: Box) -> None:
    """`started` raises once the process runs (as an interrupted caller would): run() SIGKILLs the process through
    its pidfd and waits until its PID namespace is gone before the caller's own exception goes on (no process of
    the run is left the moment run() returns, and no other exception takes the caller's place)."""
    marker = f"MARKER={uuid.uuid4()}"
    pids: list[int] = []

    def started(pid: int) -> None:
        pids.append(pid)
        raise _Interrupted

    with pytest.raises(_Interrupted):
        run(box.spec("sleep 60", env=("PATH=/bin", marker)), started=started)
    assert len(pids) == 1 and _with_marker(marker) == []
