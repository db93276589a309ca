"""The relay of a tty run (sandbox.console): how long it waits, flow control, the window size, what it leaves.

Each test holds the sandbox where its rule matters at a point of its own choosing (a sink pipe left full, a FIFO
the process must open, the `started` callback), so that nothing depends on who runs first. A run that a broken
relay would never end runs in a thread with a bound, after which the test kills the sandbox and fails."""

from __future__ import annotations

import fcntl
import io
import os
import select
import signal
import struct
import termios
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from types import SimpleNamespace

import pytest

from imagekit.sandbox import Result, console, join, run
from tests.sandbox.conftest import Box, children, until

#: How long a relay that should end by itself gets before the test stops it (every run here takes well under 1 s).
BOUND = 3.0


def _in_thread(work: Callable[[], object]) -> tuple[threading.Thread, list[object]]:
    """`work()` running in a thread; its result, or the exception it raised, in the list once it ended."""
    outcome: list[object] = []

    def target() -> None:
        try:
            outcome.append(work())
        except Exception as err:  # noqa: BLE001 - the test asserts on it
            outcome.append(err)

    thread = threading.Thread(target=target)
    thread.start()
    return thread, outcome


def _stop(thread: threading.Thread, pids: list[int], bound: float = BOUND) -> None:
    """Waits `bound` for `thread`, then SIGKILLs the sandboxed process pids[0] (its PID namespace goes with it,
    and the pty hangs up) and waits for the thread to end."""
    thread.join(bound)
    if thread.is_alive() and pids:
        os.kill(pids[0], signal.SIGKILL)
    thread.join(30)


def _grandchildren() -> list[int]:
    """The children of this process's children."""
    return [grandchild for child in children(os.getpid()) for grandchild in children(child)]


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return b""


def _is_ptmx(fd: int) -> bool:
    """Whether `fd` is a pty master (opened through a ptmx, whose device number every master's file keeps)."""
    try:
        return os.major(os.fstat(fd).st_rdev) == 5 and os.minor(os.fstat(fd).st_rdev) == 2
    except OSError:
        return False


def _masters() -> set[int]:
    """The pty masters this process holds."""
    return {fd for fd in map(int, os.listdir("/proc/self/fd")) if _is_ptmx(fd)}


def _the_master(inherited: set[int]) -> int:
    """The relay's pty master: the one this process holds besides those it held before the run (these tests open
    no pty of their own, but the process may have inherited one: mutmut's worker did)."""
    return next(iter(_masters() - inherited))


def _main_in_select() -> bool:
    """Whether the main thread (the relay's, here) sleeps in select. Its thread id is the process id: in a forked
    process (mutmut's worker) threading's `main_thread().native_id` is still the parent's on Python 3.11."""
    main = os.getpid()
    state = Path(f"/proc/self/task/{main}/stat").read_text().rpartition(")")[2].split()[0]
    return state == "S" and Path(f"/proc/self/task/{main}/wchan").read_text().startswith("poll_schedule_timeout")


def _set_size(fd: int, rows: int, columns: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))


def test_output_after_a_quiet_while_is_relayed(box: Box) -> None:
    """While the process runs the relay waits for its output however long it is quiet: the quiet timeout only
    starts at the process's end, and only the process's end (the pidfd) starts it, not its first output."""
    out = io.BytesIO()
    result = run(box.spec("echo early; sleep 0.5; echo late", tty=True), stdin=io.BytesIO(), stdout=out)
    assert (result.status, out.getvalue()) == (0, b"early\r\nlate\r\n")


def test_a_process_that_ends_while_its_input_stays_open_ends_the_relay(box: Box) -> None:
    """`run -it` of a command that never reads: nobody types, the input stays open, and the run still returns
    when the command ends. The relay reads the input only when select says there is some; a read on the open,
    empty pipe would wait for a keystroke that never comes (closing it afterwards unblocks such a relay)."""
    given, given_w = os.pipe()
    out = io.BytesIO()
    worker, outcome = _in_thread(lambda: run(box.spec("echo hi", tty=True), stdin=given, stdout=out))
    try:
        worker.join(BOUND)
        assert not worker.is_alive(), "the relay waited for input after the process ended"
        assert ([getattr(result, "status", result) for result in outcome], out.getvalue()) == ([0], b"hi\r\n")
    finally:
        os.close(given_w)
        worker.join(30)
        os.close(given)


def test_the_relay_sleeps_while_the_process_is_quiet(box: Box, monkeypatch: pytest.MonkeyPatch) -> None:
    """`run -it` of a process that is quiet for a while costs the relay no CPU meanwhile: it waits in select until
    the pty has output, the input has data, or the process ended, and asks to write only while it holds input.
    Counted in select calls, each of which returns for an event; a relay that polls would make thousands."""
    calls: list[object] = []

    def counting(*args: object) -> object:
        calls.append(args)
        return select.select(*args)  # type: ignore[call-overload]

    monkeypatch.setattr(console, "select", SimpleNamespace(select=counting))
    out = io.BytesIO()
    result = run(box.spec("sleep 0.3; echo done", tty=True), stdin=io.BytesIO(b"typed\n"), stdout=out)
    assert (result.status, out.getvalue().endswith(b"done\r\n")) == (0, True)
    assert 0 < len(calls) < 50


def test_an_exec_whose_command_leaves_a_job_on_the_terminal_returns_when_the_command_ends(box: Box) -> None:
    """`exec -t` of `sleep 60 & echo x`: the job keeps the pty open for a minute (in a join nothing kills it when the
    command ends, unlike a run's PID 1), and the relay returns after a quiet moment once the command ended,
    while the job still runs."""
    pids: list[int] = []
    target, _ = _in_thread(lambda: run(box.spec("exec sleep 60"), stdin=io.BytesIO(), stdout=io.BytesIO(), started=pids.append))
    try:
        until(lambda: pids, "the target never started")
        out = io.BytesIO()

        def exec_t() -> tuple[int, list[bytes]]:
            # The job ignores the SIGHUP the command's end as session leader sends its terminal's foreground group.
            result = join(pids[0], box.spec("trap '' HUP; sleep 60 & echo x", tty=True), stdin=io.BytesIO(), stdout=out)
            return result.status, [_cmdline(job) for job in children(pids[0])]  # the job, orphaned to the target's PID 1

        joiner, outcome = _in_thread(exec_t)
        _stop(joiner, pids)
        assert outcome == [(0, [b"sleep\x0060\x00"])]  # returned while the job still holds the terminal
        assert out.getvalue() == b"x\r\n"
    finally:
        with suppress(ProcessLookupError):  # gone already if _stop had to kill it
            os.kill(pids[0], signal.SIGKILL)
        target.join(30)


def test_a_tty_join_relays_its_input_and_has_the_callers_size(box: Box) -> None:
    """`exec -it` into a running sandbox: the joined process reads what `stdin` gives through the pty, and the pty
    has the size of the caller's terminal (`size_from`)."""
    pids: list[int] = []
    target, _ = _in_thread(lambda: run(box.spec("exec sleep 60"), stdin=io.BytesIO(), stdout=io.BytesIO(), started=pids.append))
    source, source_slave = os.openpty()
    try:
        until(lambda: pids, "the target never started")
        _set_size(source_slave, 33, 111)
        out = io.BytesIO()
        script = "stty size; read -t 3 line; echo got $line"  # the typed line may be echoed before or after the size
        result = join(pids[0], box.spec(script, tty=True), stdin=io.BytesIO(b"typed\n"), stdout=out, size_from=source)
        assert result.status == 0 and b"33 111\r\n" in out.getvalue() and out.getvalue().endswith(b"got typed\r\n")
    finally:
        os.kill(pids[0], signal.SIGKILL)
        target.join(30)
        os.close(source)
        os.close(source_slave)


def test_output_left_in_the_pty_at_the_end_is_read_whole(box: Box) -> None:
    """The process writes 16 KiB and ends while the relay is held up writing to a full sink pipe (one page):
    most of it is still in the pty when the relay sees the end, and read after it, not dropped."""
    sink, sink_w = os.pipe()
    fcntl.fcntl(sink_w, fcntl.F_SETPIPE_SZ, 4096)
    intermediates: list[int] = []
    pids: list[int] = []
    before = set(children(os.getpid()))
    try:
        worker, outcome = _in_thread(lambda: run(box.spec("head -c 16384 /dev/zero", tty=True), stdin=io.BytesIO(), stdout=sink_w, started=pids.append))
        # run()'s one fork, the intermediate, which nothing reaps before the relay got past the full sink: its pidfd
        # turns readable when it ends, as the relay's `done` does (taken from the process's parent in `started`, it
        # raced the process's end: by then the intermediate may have reaped it).
        until(lambda: set(children(os.getpid())) - before, "the sandbox never started")
        intermediates += [os.pidfd_open(child) for child in set(children(os.getpid())) - before]
        # The pty holds 17 KiB, the pipe 4 KiB, the relay one 4 KiB read: the process ends without anyone reading.
        assert select.select(intermediates, [], [], 30)[0], "the sandbox did not end"
        received = 0
        while worker.is_alive() or select.select([sink], [], [], 0)[0]:
            if select.select([sink], [], [], 0.1)[0]:
                received += len(os.read(sink, 65536))
        _stop(worker, pids)
        assert [getattr(result, "status", result) for result in outcome] == [0]
        assert received == 16384
    finally:
        for fd in (sink, sink_w, *intermediates):
            os.close(fd)


def test_input_beyond_what_the_pty_holds_waits_for_the_process_and_its_output_flows_meanwhile(box: Box) -> None:
    """300 KiB of input for a process that first sleeps, then writes 100 KB before it reads: the relay keeps what
    the pty does not take (no loss) and reads the output meanwhile. A relay blocked writing the input to the pty
    would wait for a reader that waits for its output to be read (not even the process's end wakes a write blocked
    on a pty): each `timeout` (well above the milliseconds these take) breaks such a deadlock with less output."""
    ready = box.upper / "ready"
    given, given_w = os.pipe()
    pids: list[int] = []
    out = io.BytesIO()
    # The first head in a subshell: the shell is PID 1, which no signal without a handler reaches from inside, and
    # the shell's stderr to /dev/null: its "Terminated" for a job `timeout` ended would block it on the full pty.
    script = ("exec 2>/dev/null; stty raw -echo; touch /ready; sleep 0.5; (timeout 3 head -c 100000 /dev/zero); "
              "timeout 3 head -c 307200 | wc -c")

    def write_input() -> None:
        with open(given_w, "wb") as pipe:  # closed after: the relay reads to the end of its input, then on
            until(ready.exists, "the process never set its terminal raw")  # input before that would be echoed and cooked
            pipe.write(b"i" * 307200)

    worker, outcome = _in_thread(lambda: run(box.spec(script, tty=True), stdin=given, stdout=out, started=pids.append))
    writer, _ = _in_thread(write_input)
    try:
        _stop(worker, pids, 15)
        assert [getattr(result, "status", result) for result in outcome] == [0]
        assert out.getvalue() == b"\0" * 100000 + b"307200\n"
    finally:
        os.close(given)  # a writer still blocked gets EPIPE
        writer.join(30)


def test_the_pty_has_the_callers_size_from_the_start_and_follows_it_before_and_while_relaying(box: Box) -> None:
    """On the main thread, with a size source: the command sees the caller's size before the relay runs (allocate
    sets it); a resize made between the fork and the relay reaches the pty (the relay copies the size once as it
    starts); a resize during the relay reaches it on SIGWINCH (the relay's handler); and SIGWINCH's handler is the
    caller's again afterwards. Each size is asked for once the previous step is done: the files and the input say when."""
    source, source_slave = os.openpty()  # no process has it as its terminal: a resize here signals nobody
    given, given_w = os.pipe()
    before = signal.getsignal(signal.SIGWINCH)
    first, second = box.upper / "first", box.upper / "second"
    main = threading.get_ident()
    ended = threading.Event()  # the run is over: nothing more to wait for

    def while_relaying() -> None:
        try:
            with suppress(AssertionError):  # no handler (a broken relay): the resize below is not followed, the test says so
                deadline = time.monotonic() + BOUND
                while signal.getsignal(signal.SIGWINCH) == before:  # the relay's handler is in: it runs
                    assert time.monotonic() < deadline
                    time.sleep(0.01)
            os.write(given_w, b"a\n")
            until(lambda: second.exists() or ended.is_set(), "the command never wrote its second size")
            _set_size(source_slave, 55, 133)
            signal.pthread_kill(main, signal.SIGWINCH)  # what the terminal would send: the handler runs before the relay reads on
            os.write(given_w, b"b\n")
        finally:
            os.close(given_w)  # the end of the input

    helper: list[threading.Thread] = []

    def started(_pid: int) -> None:  # the process has exec'd; the relay starts when this returns
        until(first.exists, "the command never wrote its first size")
        _set_size(source_slave, 44, 122)
        helper.append(_in_thread(while_relaying)[0])

    try:
        _set_size(source_slave, 33, 111)
        out = io.BytesIO()
        script = "stty size > /first.new; mv /first.new /first; read -t 10 a; stty size > /second.new; mv /second.new /second; read -t 10 b; stty size"
        result: Result = run(box.spec(script, tty=True), stdin=given, stdout=out, size_from=source_slave, started=started)
        assert signal.getsignal(signal.SIGWINCH) == before
        assert (result.status, first.read_text(), second.read_text(), out.getvalue().split(b"\r\n")[-2]) == (0, "33 111\n", "44 122\n", b"55 133")
    finally:
        ended.set()
        signal.signal(signal.SIGWINCH, before)
        for thread in helper:
            thread.join(30)
        for fd in (source, source_slave, given):
            os.close(fd)
        if not helper:
            os.close(given_w)


def test_a_process_killed_before_it_sends_the_master_is_a_status(box: Box, tmp_path: Path) -> None:
    """The process is held before its pty exists (it opens its cgroup's `tasks` first, here a FIFO nobody reads)
    and SIGKILLed there: the console socket closes without a master, and the run is status 137, not a traceback."""
    held = tmp_path / "held"
    held.mkdir()
    os.mkfifo(held / "tasks")

    ended = threading.Event()

    def kill_the_process() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            for pid in _grandchildren():  # the intermediate's child, the sandboxed process
                os.kill(pid, signal.SIGKILL)
                return
            if ended.wait(0.01):  # run() failed before the process started: nothing to kill
                return
        os.close(os.open(held / "tasks", os.O_RDONLY | os.O_NONBLOCK))  # not found: let the run go on and fail

    killer, _ = _in_thread(kill_the_process)
    try:
        result = run(box.spec("true", tty=True, cgroups=(str(held),)), stdin=io.BytesIO(), stdout=io.BytesIO())
    finally:
        ended.set()
        killer.join(30)
    assert result.status == 128 + signal.SIGKILL


def test_output_taken_from_the_pty_between_the_select_and_the_read_writes_nothing(box: Box) -> None:
    """The relay reads the master right after select said it is readable; should the output be gone by then (read by
    another holder of the master), the read would block, and the relay writes nothing and goes on. Placed for certain:
    the relay runs on the main thread; a SIGUSR1 made pending while it sleeps in its select (sent to a helper thread,
    so that the select goes on) runs our handler as soon as the select returns, before the relay's read (Python runs
    handlers at the next function call at the latest), and the handler reads the pty's output first."""
    inherited = _masters()
    given, given_w = os.pipe()
    os.close(given_w)  # no input: the relay's first select sees the end, every later one waits on the pty alone
    sink, sink_w = os.pipe()
    taken: list[bytes] = []

    def take_the_output(_number: int, _frame: object) -> None:
        taken.append(os.read(_the_master(inherited), 100))

    def signal_then_go(pid: int) -> None:
        ending = signal.SIGKILL  # should anything here fail: the command must end all the same
        try:
            until(_main_in_select, "the relay never waited in its select")
            signal.pthread_kill(threading.get_ident(), signal.SIGUSR1)  # pending for the main thread, which sleeps on
            os.kill(pid, signal.SIGUSR1)  # the command prints, then waits for a second one
            ending = signal.SIGUSR1
            until(lambda: taken and _main_in_select(), "the relay never read on")  # its read came after our handler's
        finally:
            os.kill(pid, ending)

    helper: list[threading.Thread] = []
    previous = signal.signal(signal.SIGUSR1, take_the_output)
    try:
        script = "trap 'trap \"exit 0\" USR1; echo out' USR1; while :; do sleep 0.01; done"
        result = run(box.spec(script, tty=True), stdin=given, stdout=sink_w, started=lambda pid: helper.append(_in_thread(lambda: signal_then_go(pid))[0]))
        assert (result.status, taken) == (0, [b"out\r\n"])
        assert (os.read(sink, 100) if select.select([sink], [], [], 0)[0] else b"") == b""  # the relay wrote nothing
    finally:
        signal.signal(signal.SIGUSR1, previous)
        for thread in helper:
            thread.join(30)
        for fd in (given, sink, sink_w):
            os.close(fd)


def test_input_the_pty_has_no_room_for_after_the_select_waits_in_the_relay(box: Box) -> None:
    """The relay writes pending input when select said the pty has room; should the room be gone by then (taken by
    another writer), the write would block, and the relay keeps the input and goes on. Placed as the read above: a
    SIGUSR1 made pending while the relay waits with input the full pty cannot take; the command then reads 70000
    bytes, the select returns, and the test's handler fills the pty before the relay writes."""
    inherited = _masters()
    ready = box.upper / "ready"
    given, given_w = os.pipe()
    filled: list[int] = []
    ended = threading.Event()  # the run is over: nothing more to wait for

    def fill_the_pty(_number: int, _frame: object) -> None:
        count = 0
        with suppress(BlockingIOError):
            while True:
                count += os.write(_the_master(inherited), b"h" * 4096)
        filled.append(count)

    def waiting_with_input() -> bool:  # asleep though input is there: it holds a chunk the pty did not take
        return _main_in_select() and select.select([given], [], [], 0)[0] != []

    def write_input() -> None:
        with suppress(BrokenPipeError), open(given_w, "wb") as pipe:
            until(ready.exists, "the process never set its terminal raw")
            pipe.write(b"i" * 307200)

    def signal_then_read(pid: int) -> None:
        ending = signal.SIGKILL  # should anything here fail: the command must end all the same
        try:
            until(waiting_with_input, "the relay never waited with input for the pty")
            signal.pthread_kill(threading.get_ident(), signal.SIGUSR1)  # pending for the main thread, which sleeps on
            os.kill(pid, signal.SIGUSR1)  # the command reads 70000 bytes (more than the pty held: it wakes the relay), then waits for a second one
            ending = signal.SIGUSR1
            until(lambda: (filled and _main_in_select()) or ended.is_set(), "the relay never wrote on")
        finally:
            os.kill(pid, ending)

    helper: list[threading.Thread] = []
    writer, _ = _in_thread(write_input)
    previous = signal.signal(signal.SIGUSR1, fill_the_pty)
    try:
        script = ("stty raw -echo; touch /ready; trap 'trap \"exit 0\" USR1; head -c 70000 > /dev/null' USR1; "
                  "while :; do sleep 0.01; done")
        result = run(box.spec(script, tty=True), stdin=given, stdout=io.BytesIO(),
                     started=lambda pid: helper.append(_in_thread(lambda: signal_then_read(pid))[0]))
        assert result.status == 0 and len(filled) == 1 and filled[0] > 0
    finally:
        ended.set()
        signal.signal(signal.SIGUSR1, previous)
        for thread in helper:
            thread.join(30)
        os.close(given)  # a writer still blocked gets EPIPE
        writer.join(30)
