"""A build stopped by Ctrl-C or SIGKILL leaves no mounts, tags nothing, and `imagekit prune` removes
what a killed build left (snapshot directories, unnamed blobs)."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import time
from pathlib import Path

from tests.mounts import mount_table, mounts_left
from tests.builder.conftest import IMAGEKIT, ok, run_imagekit

def _start(root: Path, context: Path, seconds: str) -> subprocess.Popen[bytes]:
    """A build whose RUN step sleeps `seconds`: a duration of the test's own, so that _sleepers() never takes
    the step of a build another xdist worker's test runs meanwhile for this one's."""
    context.mkdir(parents=True, exist_ok=True)
    (context / "Builderfile").write_text(f"FROM busybox\nRUN echo started > /dev/stderr; sleep {seconds}\n")
    env = {k: v for k, v in os.environ.items() if k != "IMAGEKIT_ROOT"}
    process = subprocess.Popen([IMAGEKIT, "--root", str(root), "build", "-t", "slow:1", str(context)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, start_new_session=True)
    assert process.stderr is not None
    deadline = time.monotonic() + 60
    seen = b""
    while b"started" not in seen and time.monotonic() < deadline:
        seen += process.stderr.readline()
    assert b"started" in seen, seen
    return process


def _sleepers(seconds: str) -> list[int]:
    """PIDs of the RUN step's `sleep SECONDS`, wherever they are; waits for it, since `started` is printed
    just before the step execs sleep."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                if Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:2] == [b"sleep", seconds.encode()]:
                    found.append(int(pid))
            except OSError:
                continue  # it ended meanwhile
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"the RUN step's sleep {seconds} never started")


def _gone(pids: list[int], timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(Path(f"/proc/{pid}").exists() for pid in pids):
            return True
        time.sleep(0.1)
    return False


def test_ctrl_c_stops_the_step_and_leaves_nothing(root: Path, tmp_path: Path) -> None:
    before = mount_table()
    seconds = str(600 + secrets.randbelow(100_000))
    process = _start(root, tmp_path / "ctx", seconds)
    sleepers = _sleepers(seconds)
    os.killpg(process.pid, signal.SIGINT)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 130, err
    assert b"Traceback" not in err
    assert _gone(sleepers)
    assert mounts_left(before, tmp_path) == []
    assert "slow" not in ok(run_imagekit(root, "images"))
    snapshots = root / "snapshots"
    assert not snapshots.exists() or not any(snapshots.iterdir())


def test_sigkill_leaves_debris_that_prune_removes(root: Path, tmp_path: Path) -> None:
    before = mount_table()
    seconds = str(600 + secrets.randbelow(100_000))
    process = _start(root, tmp_path / "ctx", seconds)
    sleepers = _sleepers(seconds)
    process.kill()
    process.wait(timeout=30)
    assert _gone(sleepers), "the RUN step outlived a SIGKILLed build"
    assert mounts_left(before, tmp_path) == []
    assert "slow" not in ok(run_imagekit(root, "images"))
    ok(run_imagekit(root, "prune"))
    snapshots = root / "snapshots"
    assert not snapshots.exists() or not any(snapshots.iterdir())
    assert not (root / "tmp").exists() or not any((root / "tmp").iterdir())
