"""`imagekit stats`: real containers with known workloads, read from their cgroups on this machine."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from imagekit.runtime.stats import bytes_size, human_size
from tests.runtime.conftest import IMAGEKIT, Run, ok, wait_for


def _columns(output: str, name: str) -> list[str]:
    line = next(line for line in output.splitlines() if f" {name} " in line)
    return [cell.strip() for cell in line.split("   ") if cell.strip()]


def _mib(text: str) -> float:
    number, unit = float(text.rstrip("BKMGiT")), text.lstrip("0123456789.")
    return number * {"B": 1 / 2**20, "KiB": 1 / 1024, "MiB": 1, "GiB": 1024}[unit]


def test_stats_shows_memory_cpu_and_pids_of_known_workloads(ik: Run) -> None:
    ok(ik("run", "-d", "--name", "mem", "--memory", "256m", "busybox", "sh", "-c",
          "head -c 50000000 /dev/zero > /dev/shm/x; touch /tmp/done; sleep 30"))
    ok(ik("run", "-d", "--name", "busy", "--network", "host", "busybox", "sh", "-c", "while :; do :; done"))
    wait_for(lambda: ik("exec", "mem", "test", "-e", "/tmp/done").returncode == 0)
    output = ok(ik("stats", "--no-stream"))
    assert output.splitlines()[0].split() == ["CONTAINER", "ID", "NAME", "CPU", "%", "MEM", "USAGE", "/", "LIMIT",
                                              "MEM", "%", "NET", "I/O", "BLOCK", "I/O", "PIDS"]
    mem = _columns(output, "mem")
    usage, limit = mem[3].split(" / ")
    assert _mib(usage) >= 47 and limit == "256MiB"
    assert float(mem[4].rstrip("%")) >= 18
    busy = _columns(output, "busy")
    assert float(busy[2].rstrip("%")) > 20
    assert int(busy[7]) >= 1 and int(mem[7]) >= 1
    assert busy[5] == "0B / 0B"  # host network
    only = ok(ik("stats", "--no-stream", "busy"))
    assert len(only.splitlines()) == 2 and " busy " in only
    ok(ik("rm", "-f", "mem", "busy"))
    assert ok(ik("stats", "--no-stream")).splitlines() == [ok(ik("stats", "--no-stream")).splitlines()[0]]


def test_streaming_stats_refresh_until_ctrl_c_which_exits_0(ik: Run, root: Path) -> None:
    ok(ik("run", "-d", "--name", "idle", "busybox", "sleep", "30"))
    env = {k: v for k, v in os.environ.items() if k != "IMAGEKIT_ROOT"}
    process = subprocess.Popen([IMAGEKIT, "--root", str(root), "stats", "idle"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env=env, text=True)
    assert process.stdout is not None
    headers = 0
    while headers < 2:  # two refreshes
        line = process.stdout.readline()
        assert line, process.stderr.read() if process.stderr else ""
        headers += line.startswith("CONTAINER ID")
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=10)
    assert process.returncode == 0 and "Traceback" not in err
    ok(ik("rm", "-f", "idle"))


ZEROS = ["0.00%", "0B / 0B", "0.00%", "0B / 0B", "0B / 0B", "0"]


def test_a_stopped_container_shows_zeros_when_named_or_with_all(ik: Run) -> None:
    ok(ik("run", "--network", "none", "--name", "done", "busybox", "true"))
    ok(ik("run", "-d", "--network", "none", "--name", "up", "busybox", "sleep", "30"))
    short_id = ok(ik("inspect", "-f", "{{.Id}}", "done"))[:12]
    named = ok(ik("stats", "--no-stream", "done")).splitlines()
    assert len(named) == 2 and _columns(named[1], "done") == [short_id, "done", *ZEROS]
    running = ok(ik("stats", "--no-stream")).splitlines()
    assert len(running) == 2 and " up " in running[1]
    every = ok(ik("stats", "--no-stream", "-a"))
    assert _columns(every, "done") == [short_id, "done", *ZEROS]
    up = _columns(every, "up")
    assert up[7] == "1" and up[3] != "0B / 0B"  # the running one keeps its real figures
    ok(ik("rm", "-f", "up"))


def _tables(process: subprocess.Popen[str]) -> Callable[[], list[str]]:
    """`next_table()`: the rows of the next complete table `stats` streams (a table ends where the next header starts)."""
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True).start()  # type: ignore[union-attr]
    while not lines.get(timeout=30).startswith("CONTAINER ID"):
        pass

    def next_table() -> list[str]:
        rows = []
        while not (line := lines.get(timeout=30)).startswith("CONTAINER ID"):
            rows.append(line.rstrip("\n"))
        return rows

    return next_table


def test_containers_that_stop_or_go_while_stats_streams(ik: Run, root: Path) -> None:
    for name in ("first", "second"):
        ok(ik("run", "-d", "--network", "none", "--name", name, "busybox", "sleep", "60"))
    env = {k: v for k, v in os.environ.items() if k != "IMAGEKIT_ROOT"}
    process = subprocess.Popen([IMAGEKIT, "--root", str(root), "stats", "first", "second"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=env, text=True)
    next_table = _tables(process)
    try:
        assert sorted(row.split()[1] for row in next_table()) == ["first", "second"]
        ok(ik("kill", "first"))
        wait_for(lambda: any(" first " in row and _columns(row, "first")[2:] == ZEROS for row in next_table()), timeout=20)
        ok(ik("rm", "-f", "first"))
        wait_for(lambda: [row.split()[1] for row in next_table()] == ["second"], timeout=20)
        assert _columns(next(row for row in next_table()), "second")[7] == "1"
    finally:
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=10)
    assert process.returncode == 0 and err == ""
    ok(ik("rm", "-f", "second"))


def test_stats_of_an_unknown_container_is_one_line(ik: Run) -> None:
    result = ik("stats", "--no-stream", "nope")
    assert result.returncode == 1 and result.stderr.strip() == "imagekit: no such container: nope"


@pytest.mark.parametrize(("size", "binary", "decimal"), [(0, "0B", "0B"), (648, "648B", "648B"), (1200, "1.172KiB", "1.2kB"),
                                                         (256 * 2**20, "256MiB", "268.4MB"), (50_000_000, "47.68MiB", "50MB")])
def test_sizes_are_printed_as_go_units_prints_them(size: int, binary: str, decimal: str) -> None:
    assert bytes_size(size) == binary and human_size(size) == decimal


def test_v2_usage_is_read_from_the_unified_files(tmp_path: Path) -> None:
    from imagekit.sandbox import cgroups

    directory = tmp_path / "imagekit" / "c1"
    directory.mkdir(parents=True)
    (directory / "cgroup.procs").write_text(f"{os.getpid()}\n")
    (directory / "memory.current").write_text("60000000\n")
    (directory / "memory.stat").write_text("anon 50000000\nfile 10000000\ninactive_file 4000000\n")
    (directory / "memory.max").write_text("268435456\n")
    (directory / "cpu.stat").write_text("usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n")
    (directory / "io.stat").write_text("8:0 rbytes=4096 wbytes=8192 rios=1 wios=2\n8:16 rbytes=1000 wbytes=0 rios=1 wios=0\n")
    usage = cgroups.Cgroup(2, (str(directory),)).usage()
    assert usage == cgroups.Usage(cpu_ns=1_500_000, memory=56_000_000, memory_limit=268435456, block_read=5096, block_write=8192, pids=1)
    (directory / "memory.max").write_text("max\n")
    assert cgroups.Cgroup(2, (str(directory),)).usage().memory_limit == 0
