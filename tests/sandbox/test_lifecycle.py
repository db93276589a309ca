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
from pathlib import Path

from imagekit.sandbox import Result, run
from imagekit.values import asdict
from tests.sandbox.conftest import Box

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


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as handle:
        return [int(word) for word in handle.read().split()]


def _with_marker(marker: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and marker.encode() in Path(f"/proc/{entry}/environ").read_bytes():
                found.append(int(entry))
        except OSError:
            continue
    return found


def _until(condition: object, what: str) -> None:
    deadline = time.monotonic() + 30
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


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


def test_a_killed_process_reports_128_plus_the_signal(box: Box) -> None:
    caller = _caller(box, "echo ready; sleep 100 & wait")
    assert caller.stdout is not None
    try:
        assert caller.stdout.readline() == "ready\n"
        (intermediate,) = _children(caller.pid)
        (pid1,) = _children(intermediate)
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
        _until(lambda: not _with_marker(marker), "sandboxed processes outlived their caller")
    finally:
        caller.kill()
        caller.wait()


def test_no_process_is_left_after_run_returns(box: Box) -> None:
    marker = f"MARKER={uuid.uuid4()}"
    status, _, _ = box.sh("sleep 100 & sleep 100 & exit 0", env=("PATH=/bin", marker))
    assert status == 0 and _with_marker(marker) == []  # PID 1's exit took the namespace with it, synchronously
