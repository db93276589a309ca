"""`imagekit exec`: a command in a running container's namespaces (mount, UTS, IPC, network, PID), root and cgroup,
with -e, -u and -w as docker's; a stopped or missing container is a one-line error, exit 125."""

from __future__ import annotations

import os
from pathlib import Path

from tests.runtime.conftest import Run, cgroup_dirs, inspect, ok, one_line_error, wait_for

NAMESPACES = ("ipc", "uts", "net", "pid", "mnt")


def started(ik: Run) -> dict:
    ok(ik("run", "-d", "--name", "box", "--network", "none", "--hostname", "inbox", "busybox", "sh", "-c", "echo hi > /tmp/mark; exec sleep 300"))
    wait_for(lambda: ik("exec", "box", "cat", "/tmp/mark").stdout == "hi\n")
    return inspect(ik, "box")


def test_exec_joins_every_namespace_root_and_cgroup_of_the_container(ik: Run) -> None:
    details = started(ik)
    pid = details["State"]["Pid"]
    script = f"for n in {' '.join(NAMESPACES)}; do readlink /proc/self/ns/$n; done; cat /proc/1/cmdline; echo; hostname; cat /proc/self/cgroup"
    lines = ok(ik("exec", "box", "sh", "-c", script)).splitlines()
    assert lines[:5] == [os.readlink(f"/proc/{pid}/ns/{name}") for name in NAMESPACES]
    assert lines[5] == "sleep\x00300\x00"
    assert lines[6] == "inbox"
    container_id = details["Id"]
    assert any(line.endswith(f"/imagekit/{container_id}") for line in lines[7:])
    assert any(Path(d).is_dir() for d in cgroup_dirs(container_id))


def test_exec_takes_env_user_workdir_and_returns_the_status(ik: Run) -> None:
    started(ik)
    assert ok(ik("exec", "-e", "FOO=bar", "box", "sh", "-c", "echo $FOO $PATH")) == "bar /usr/local/bin:/usr/bin:/bin\n"
    assert ok(ik("exec", "-u", "app", "box", "id", "-u")) == "1000\n"
    assert ok(ik("exec", "-w", "/tmp", "box", "pwd")) == "/tmp\n"
    assert ik("exec", "box", "sh", "-c", "exit 3").returncode == 3
    assert ik("exec", "box", "nosuchcommand").returncode == 127
    assert ok(ik("exec", "box", "cat")) == ""  # without -i, stdin is empty
    assert ok(ik("exec", "-i", "box", "cat", input=b"piped\n")) == "piped\n"


def test_exec_into_a_stopped_or_missing_container_is_one_line_exit_125(ik: Run) -> None:
    ok(ik("run", "--name", "done", "busybox", "true"))
    result = ik("exec", "done", "true")
    assert one_line_error(result) == "imagekit: container done is not running"
    assert result.returncode == 125
    missing = ik("exec", "nosuch", "true")
    assert one_line_error(missing) == "imagekit: no such container: nosuch"
    assert missing.returncode == 125
    relative = ik("exec", "-w", "tmp", "done", "pwd")
    assert one_line_error(relative) == "imagekit: the working directory 'tmp' is invalid: it needs to be an absolute path"
