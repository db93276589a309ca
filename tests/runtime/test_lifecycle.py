"""Containers' life cycle: -d, logs, stop, kill, start, rm (-f), --rm, supervisors, --init, signals."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from tests.runtime.conftest import IMAGEKIT, Run, cgroup_dirs, inspect, ok, one_line_error, wait_for


def leftovers(root: Path, container_id: str) -> list[Path]:
    """What a removed container must not leave: its state dir, its snapshot, its cgroups."""
    paths = [root / "containers" / container_id, root / "snapshots" / container_id, *cgroup_dirs(container_id)]
    return [p for p in paths if p.exists()]


def test_detach_logs_stop_rm(ik: Run, root: Path) -> None:
    container_id = ok(ik("run", "-d", "--name", "web", "--init", "busybox", "sh", "-c",
                         "echo out; echo err >&2; trap 'echo bye; exit 0' TERM; while true; do sleep 0.1; done")).strip()
    assert len(container_id) == 64
    wait_for(lambda: "bye" not in ik("logs", "web").stdout and "err" in ik("logs", "web").stdout)
    assert ok(ik("ps", "-q")).split() == [container_id[:12]]
    assert "Up" in ok(ik("ps")) and "web" in ok(ik("ps"))
    assert sorted(ok(ik("logs", "web")).split()) == ["err", "out"]
    assert ok(ik("logs", "--tail", "1", "web")).count("\n") == 1
    state = inspect(ik, "web")["State"]
    assert state["Running"] and state["Pid"] > 0
    assert (root / "containers" / container_id / "container.log").is_file()
    ok(ik("stop", "web"))
    state = inspect(ik, container_id[:8])["State"]
    assert state["Status"] == "exited" and state["ExitCode"] == 0  # the trap ran: SIGTERM reached sh
    assert ok(ik("logs", "web")).splitlines()[-1] == "bye"
    assert ok(ik("ps", "-q")) == "" and ok(ik("ps", "-aq")).split() == [container_id[:12]]
    assert not any(p.exists() for p in cgroup_dirs(container_id))  # the cgroup lives only while it runs
    ok(ik("rm", "web"))
    assert leftovers(root, container_id) == []
    assert ok(ik("ps", "-aq")) == ""


def test_stop_timeout_kills_and_stopsignal_is_the_images(ik: Run) -> None:
    ok(ik("run", "-d", "--name", "stubborn", "busybox", "sleep", "100"))  # PID 1 without a handler ignores SIGTERM
    ok(ik("stop", "-t", "0.5", "stubborn"))
    assert inspect(ik, "stubborn")["State"]["ExitCode"] == 137
    ok(ik("run", "-d", "--name", "usr1", "--init", "withvol", "sh", "-c",
          "trap 'exit 42' USR1; trap 'exit 43' TERM; while true; do sleep 0.1; done"))
    wait_for(lambda: inspect(ik, "usr1")["State"]["Running"])
    ok(ik("stop", "usr1"))
    assert inspect(ik, "usr1")["State"]["ExitCode"] == 42  # STOPSIGNAL SIGUSR1 from the image


def test_kill_with_signal_and_start_again(ik: Run) -> None:
    ok(ik("run", "-d", "--name", "k", "--init", "busybox", "sh", "-c", "echo run >> /count; cat /count | wc -l; sleep 100"))
    ok(ik("kill", "-s", "TERM", "k"))
    wait_for(lambda: inspect(ik, "k")["State"]["Status"] == "exited")
    assert inspect(ik, "k")["State"]["ExitCode"] == 143
    assert one_line_error(ik("kill", "k")).endswith("is not running")
    ok(ik("start", "k"))
    wait_for(lambda: ok(ik("logs", "k")).split() == ["1", "2"])  # same container filesystem, second run
    ok(ik("kill", "k"))
    wait_for(lambda: inspect(ik, "k")["State"]["ExitCode"] == 137)


def test_rm_refuses_running_and_force_cleans_up(ik: Run, root: Path) -> None:
    container_id = ok(ik("run", "-d", "--name", "busy", "-m", "64m", "busybox", "sleep", "100")).strip()
    assert all(p.is_dir() for p in cgroup_dirs(container_id))
    pid = inspect(ik, "busy")["State"]["Pid"]
    assert "it is running" in one_line_error(ik("rm", "busy"))
    ok(ik("rm", "-f", "busy"))
    assert leftovers(root, container_id) == []
    assert not Path(f"/proc/{pid}").exists() or Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"


def test_rm_flag_leaves_nothing(ik: Run, root: Path) -> None:
    out = ok(ik("run", "--rm", "-m", "32m", "withvol", "sh", "-c", "echo x > /data/x; grep memory /proc/self/cgroup"))
    container_id = out.strip().rsplit("/", 1)[1]
    assert out.strip().endswith(f":/imagekit/{container_id}") and len(container_id) == 64
    assert list((root / "containers").iterdir()) == [root / "containers" / "lock"]
    assert list((root / "snapshots").iterdir()) == []
    assert list((root / "volumes").iterdir()) == []  # the anonymous volume went with it
    assert leftovers(root, container_id) == []
    detached = ok(ik("run", "-d", "--rm", "busybox", "true")).strip()
    wait_for(lambda: not (root / "containers" / detached).exists())
    assert leftovers(root, detached) == []


def test_supervisor_killed_then_ps_marks_exited(ik: Run, root: Path) -> None:
    container_id = ok(ik("run", "-d", "--name", "orphan", "busybox", "sleep", "100")).strip()
    record = inspect(ik, "orphan")
    pid = record["State"]["Pid"]
    supervisor = int(Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[1])  # the intermediate's parent
    supervisor = int(Path(f"/proc/{supervisor}/stat").read_text().split(")")[1].split()[1])
    os.kill(supervisor, signal.SIGKILL)
    wait_for(lambda: not Path(f"/proc/{pid}").exists())  # the container dies with its supervisor
    out = ok(ik("ps", "-a"))
    assert "Exited (255)" in out
    assert inspect(ik, "orphan")["State"]["Error"] == "its supervisor process died"
    ok(ik("rm", "orphan"))
    assert leftovers(root, container_id) == []


def test_init_reaps_zombies(ik: Run) -> None:
    script = "(sleep 0.1 &); exec sleep 100"  # the orphaned sleep is reparented to PID 1
    for name, flags in (("plain", ()), ("reaper", ("--init",))):
        ok(ik("run", "-d", "--name", name, *flags, "busybox", "sh", "-c", script))
    def zombies(name: str) -> int:
        pid = inspect(ik, name)["State"]["Pid"]
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        return sum(Path(f"/proc/{child}/stat").read_text().split(")")[1].split()[0] == "Z" for child in children)
    wait_for(lambda: zombies("plain") == 1)  # sleep as PID 1 never waits: the orphan stays a zombie
    assert zombies("reaper") == 0


def test_foreground_signals_are_forwarded(root: Path) -> None:
    process = subprocess.Popen([IMAGEKIT, "--root", str(root), "run", "--rm", "--init", "busybox", "sh", "-c",
                                "trap 'echo got-term; exit 7' TERM; echo ready; while true; do sleep 0.1; done"],
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    assert process.stdout.readline() == "ready\n"
    process.send_signal(signal.SIGTERM)
    out, _ = process.communicate(timeout=30)
    assert out == "got-term\n" and process.returncode == 7


def test_logs_follow_ends_when_the_container_exits(ik: Run) -> None:
    ok(ik("run", "-d", "--name", "talker", "busybox", "sh", "-c", "for i in 1 2 3; do echo line$i; sleep 0.2; done; exit 5"))
    followed = ik("logs", "-f", "talker", timeout=30)  # returns only once the container has exited
    assert ok(followed).split() == ["line1", "line2", "line3"]
    assert inspect(ik, "talker")["State"]["ExitCode"] == 5
