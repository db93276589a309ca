"""`imagekit stats`: samples of running containers' use (cgroups, /proc) and docker's table of them.

Each figure is docker's: CPU % is the container's CPU time over the host's, between two samples, times
the number of CPUs (so one busy CPU is 100 %); memory is the cgroup's usage less inactive file cache, over
its limit or the host's memory when it has none; NET I/O is what the container's interfaces (not `lo`)
received and sent, 0B for a container on the host's network; sizes as docker's go-units prints them.

Imports: stdlib, imagekit.sandbox.cgroups, imagekit.runtime.state.
"""

from __future__ import annotations

import os
from pathlib import Path

from imagekit.runtime.state import Container
from imagekit.sandbox import cgroups
from imagekit.values import value

HEADER = ("CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O", "BLOCK I/O", "PIDS")
_BINARY = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")
_DECIMAL = ("B", "kB", "MB", "GB", "TB", "PB", "EB")


@value
class Sample:
    """One container's counters at one time, with the host's CPU time (ns) to weigh them against."""

    usage: cgroups.Usage
    system_ns: int
    net_rx: int
    net_tx: int


def sample(container: Container, cgroup_root: str = cgroups.DEFAULT_ROOT) -> Sample:
    """Reads the container's cgroup, the host's CPU time and, off the host network, its interfaces."""
    usage = cgroups.find(container.id, cgroup_root).usage()
    host_network = (container.network or container.spec.get("network")) == "host"
    rx, tx = (0, 0) if host_network or not container.pid else _net_dev(container.pid)
    return Sample(usage, _system_ns(), rx, tx)


def row(container: Container, before: Sample, after: Sample) -> tuple[str, ...]:
    """docker stats' columns for `container` between two of its samples."""
    system = after.system_ns - before.system_ns
    cpu = after.usage.cpu_ns - before.usage.cpu_ns
    cpu_percent = cpu / system * (os.cpu_count() or 1) * 100 if system > 0 and cpu > 0 else 0.0
    limit = after.usage.memory_limit or _host_memory()
    memory_percent = after.usage.memory / limit * 100 if limit else 0.0
    return (
        container.short_id,
        container.name,
        f"{cpu_percent:.2f}%",
        f"{bytes_size(after.usage.memory)} / {bytes_size(limit)}",
        f"{memory_percent:.2f}%",
        f"{human_size(after.net_rx)} / {human_size(after.net_tx)}",
        f"{human_size(after.usage.block_read)} / {human_size(after.usage.block_write)}",
        str(after.usage.pids),
    )


def idle_row(container: Container) -> tuple[str, ...]:
    """docker stats' row of a container that is not running: every figure zero, the memory limit too
    (the daemon sends an empty sample for it, and the CLI's entry stays zero)."""
    return (container.short_id, container.name, "0.00%", "0B / 0B", "0.00%", "0B / 0B", "0B / 0B", "0")


def table(rows: list[tuple[str, ...]]) -> str:
    """The first row over the others, laid out as docker's formatter does (Go's tabwriter with minimum
    width 10 and padding 3: each column but the last as wide as its widest cell plus 3, at least 10)."""
    widths = [max(10, max(len(r[i]) for r in rows) + 3) for i in range(len(rows[0]) - 1)]
    return "\n".join(("".join(cell.ljust(w) for cell, w in zip(r, widths)) + r[-1]).rstrip() for r in rows)


def bytes_size(size: float) -> str:
    """go-units BytesSize: powers of 1024, four significant digits ("47.69MiB", "256MiB")."""
    return _size(size, 1024.0, _BINARY)


def human_size(size: float) -> str:
    """go-units HumanSize: powers of 1000, four significant digits ("1.2kB", "648B")."""
    return _size(size, 1000.0, _DECIMAL)


def _size(size: float, base: float, units: tuple[str, ...]) -> str:
    index = 0
    while size >= base and index < len(units) - 1:
        size /= base
        index += 1
    return f"{size:.4g}{units[index]}"


def _system_ns() -> int:
    """The host's CPU time (all CPUs, every state), the first line of /proc/stat, in ns, as docker sums it."""
    with open("/proc/stat") as handle:
        fields = handle.readline().split()[1:8]
    return sum(int(value) for value in fields) * 1_000_000_000 // os.sysconf("SC_CLK_TCK")


def _host_memory() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return 0


def _net_dev(pid: int) -> tuple[int, int]:
    """Bytes received and sent by the interfaces of `pid`'s network namespace, `lo` left out."""
    try:
        lines = Path(f"/proc/{pid}/net/dev").read_text().splitlines()[2:]
    except OSError:
        return 0, 0
    rx = tx = 0
    for line in lines:
        name, _, counters = line.partition(":")
        if name.strip() == "lo":
            continue
        fields = counters.split()
        rx += int(fields[0])
        tx += int(fields[8])
    return rx, tx
