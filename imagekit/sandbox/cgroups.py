"""Container cgroups: create one with memory, CPU and pids limits, read whether it OOM-killed, remove it.

Two layouts exist and this module hides the difference. cgroup v2 (one unified tree) is used where it
is mounted with the controllers the limits need (`cgroup.controllers` lists them); otherwise v1, with
one directory per controller (`memory/`, `cpu/`, `pids/` under /sys/fs/cgroup), which is what hybrid
machines offer. A container's cgroup is `imagekit/<name>` in each, and its `dirs` are what the
sandbox joins (sandbox.Spec.cgroups) just before exec (open_joins, then join): the sandbox's own Python
set-up is never charged to the container's memory.

The values follow docker's: `--memory` sets the limit and, as docker's default, swap to twice it
(v1 memory.memsw.limit_in_bytes where swap accounting exists, v2 memory.swap.max = the limit);
`--cpus` becomes a CFS quota per 100 ms period; `--pids-limit` pids.max. docker refuses memory below
6 MiB, and so does `Limits.check`.

Imports: stdlib and imagekit.errors only (part of the sandbox leaf).
"""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path

from imagekit.errors import SandboxError
from imagekit.values import value

DEFAULT_ROOT = "/sys/fs/cgroup"
#: docker's minimum memory limit (daemon/daemon_unix.go linuxMinMemory).
MIN_MEMORY = 6 * 1024 * 1024
CPU_PERIOD = 100_000
_V1_CONTROLLERS = ("memory", "cpu", "pids")


@value
class Limits:
    """Resource limits; 0 means unlimited."""

    memory: int = 0
    cpus: float = 0.0
    pids: int = 0

    def check(self) -> None:
        """Refuses values docker refuses, with docker's wording."""
        if self.memory and self.memory < MIN_MEMORY:
            raise SandboxError("Minimum memory limit allowed is 6MB")
        if self.cpus < 0:
            raise SandboxError(f"invalid CPU count {self.cpus}: must be positive")
        if self.pids < 0:
            raise SandboxError(f"invalid pids limit {self.pids}: must be positive")


@value
class Usage:
    """One sample of a cgroup's use: CPU time in ns, memory and its limit in bytes (0: unlimited), bytes read
    from and written to block devices, and the number of processes."""

    cpu_ns: int
    memory: int
    memory_limit: int
    block_read: int
    block_write: int
    pids: int


@value
class Cgroup:
    """A container's cgroup: `version` 1 or 2 and its directories (one per v1 controller, or one)."""

    version: int
    dirs: tuple[str, ...]

    def oom_killed(self) -> bool:
        """Whether the kernel's OOM killer killed a process of this cgroup (memory.events on v2,
        memory.oom_control on v1: the `oom_kill` counter)."""
        name = "memory.events" if self.version == 2 else "memory.oom_control"
        for directory in self.dirs:
            counters = _counters(Path(directory) / name)
            if counters.get("oom_kill", 0) > 0:
                return True
        return False

    def pids(self) -> list[int]:
        """The pids in this cgroup (as the host sees them)."""
        found: set[int] = set()
        for directory in self.dirs:
            try:
                found.update(int(line) for line in (Path(directory) / "cgroup.procs").read_text().split())
            except OSError:
                continue
        return sorted(found)

    def usage(self) -> Usage:
        """What the container uses now, as docker stats reads it. Memory is usage less inactive file
        cache (v1 total_inactive_file, v2 inactive_file), docker's figure. On v1 the container joins no
        cpuacct or blkio hierarchy, so CPU time and block I/O are summed from /proc/PID/stat and
        /proc/PID/io of its processes (reaped children included through cutime/cstime)."""
        pids = self.pids()
        if self.version == 2:
            directory = Path(self.dirs[0])
            stat = _counters(directory / "memory.stat")
            memory = max(_number(directory / "memory.current") - stat.get("inactive_file", 0), 0)
            limit = _number(directory / "memory.max")
            cpu = _counters(directory / "cpu.stat").get("usage_usec", 0) * 1000
            read, write = _io_stat(directory / "io.stat")
        else:
            memory_dir = Path(self.dirs[0])
            stat = _counters(memory_dir / "memory.stat")
            memory = max(_number(memory_dir / "memory.usage_in_bytes") - stat.get("total_inactive_file", 0), 0)
            limit = _number(memory_dir / "memory.limit_in_bytes")
            cpu = sum(_process_cpu_ns(pid) for pid in pids)
            read, write = (sum(column) for column in zip((0, 0), *(_process_io(pid) for pid in pids)))
        return Usage(cpu_ns=cpu, memory=memory, memory_limit=limit, block_read=read, block_write=write, pids=len(pids))

    def remove(self, timeout: float = 2.0) -> None:
        """Removes the directories; waits up to `timeout` for dying processes to leave (rmdir says EBUSY
        until then). A missing directory is fine."""
        deadline = time.monotonic() + timeout
        for directory in self.dirs:
            while True:
                try:
                    os.rmdir(directory)
                    break
                except FileNotFoundError:
                    break
                except OSError as err:
                    if err.errno != errno.EBUSY or time.monotonic() > deadline:
                        raise SandboxError(f"cannot remove cgroup {directory}: {err.strerror}") from err
                    time.sleep(0.01)


def open_joins(directories: tuple[str, ...]) -> list[int]:
    """Write ends through which a single-threaded process moves itself into `directories` (join()), opened before
    pivot_root hides the host's /sys/fs/cgroup.

    v1 offers `tasks`, which moves one thread: a thread moving itself skips the kernel's global threadgroup lock
    (cgroup_procs_write_start, Linux 6.0), whose first writer waits for an RCU grace period, 5 to 15 ms of a
    container's start here against 0.4 ms. The sandbox's process is forked from one thread and has started none,
    so its one thread is the whole process. v2 has no `tasks` (its `cgroup.threads` moves threads only inside a
    threaded subtree): `cgroup.procs` there."""
    fds: list[int] = []
    try:
        for directory in directories:
            try:
                fds.append(os.open(os.path.join(directory, "tasks"), os.O_WRONLY | os.O_CLOEXEC))
            except FileNotFoundError:
                fds.append(os.open(os.path.join(directory, "cgroup.procs"), os.O_WRONLY | os.O_CLOEXEC))
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise
    return fds


def join(fds: list[int]) -> None:
    """Moves the calling process into the cgroups of open_joins' `fds` (and closes them): "0" names the caller,
    whatever its pid in a new PID namespace."""
    for fd in fds:
        os.write(fd, b"0")
        os.close(fd)


def version(root: str = DEFAULT_ROOT) -> int:
    """2 when `root` is a v2 hierarchy with the memory, cpu and pids controllers; else 1."""
    controllers = Path(root) / "cgroup.controllers"
    try:
        available = set(controllers.read_text().split())
    except OSError:
        return 1
    return 2 if {"memory", "cpu", "pids"} <= available else 1


def create(name: str, limits: Limits, root: str = DEFAULT_ROOT) -> Cgroup:
    """Creates cgroup `imagekit/<name>` with `limits` (v2 or v1, see the module docstring); nothing is
    left behind when a limit cannot be written. Raises SandboxError (one line)."""
    limits.check()
    if not name or "/" in name or name in (".", ".."):
        raise SandboxError(f"invalid cgroup name {name!r}")
    if version(root) == 2:
        parent = Path(root) / "imagekit"
        _mkdir(parent)
        _enable(Path(root), parent)
        cgroup = Cgroup(2, (str(parent / name),))
        writes = _v2_files(limits)
    else:
        cgroup = Cgroup(1, tuple(str(Path(root) / controller / "imagekit" / name) for controller in _V1_CONTROLLERS))
        writes = _v1_files(limits, Path(cgroup.dirs[0]).parent.parent)
    made: list[str] = []
    try:
        for directory in cgroup.dirs:
            Path(directory).parent.mkdir(parents=True, exist_ok=True)
            try:
                os.mkdir(directory)
            except FileExistsError:
                raise SandboxError(f"cgroup {directory} already exists") from None
            made.append(directory)
        for (index, filename), value in writes.items():
            _write(Path(cgroup.dirs[index if cgroup.version == 1 else 0]) / filename, value)
    except OSError as err:
        Cgroup(cgroup.version, tuple(made)).remove()
        raise SandboxError(f"cannot set up cgroup {name}: {err.filename or ''}: {err.strerror}") from err
    except BaseException:
        Cgroup(cgroup.version, tuple(made)).remove()
        raise
    return cgroup


def find(name: str, root: str = DEFAULT_ROOT) -> Cgroup:
    """The cgroup `create(name)` makes on this machine (whether or not it exists now)."""
    if version(root) == 2:
        return Cgroup(2, (str(Path(root) / "imagekit" / name),))
    return Cgroup(1, tuple(str(Path(root) / controller / "imagekit" / name) for controller in _V1_CONTROLLERS))


def _v2_files(limits: Limits) -> dict[tuple[int, str], str]:
    files = {}
    if limits.memory:
        files[(0, "memory.max")] = str(limits.memory)
        files[(0, "memory.swap.max")] = str(limits.memory)
    if limits.cpus:
        files[(0, "cpu.max")] = f"{round(limits.cpus * CPU_PERIOD)} {CPU_PERIOD}"
    if limits.pids:
        files[(0, "pids.max")] = str(limits.pids)
    return files


def _v1_files(limits: Limits, memory_root: Path) -> dict[tuple[int, str], str]:
    """Files by (index of the controller in _V1_CONTROLLERS, name); memsw only where swap is accounted."""
    files = {}
    if limits.memory:
        files[(0, "memory.limit_in_bytes")] = str(limits.memory)
        if (memory_root / "memory.memsw.limit_in_bytes").exists():
            files[(0, "memory.memsw.limit_in_bytes")] = str(2 * limits.memory)
    if limits.cpus:
        files[(1, "cpu.cfs_period_us")] = str(CPU_PERIOD)
        files[(1, "cpu.cfs_quota_us")] = str(round(limits.cpus * CPU_PERIOD))
    if limits.pids:
        files[(2, "pids.max")] = str(limits.pids)
    return files


def _enable(root: Path, parent: Path) -> None:
    """Delegates memory, cpu and pids to the children of `parent` (cgroup.subtree_control, top down)."""
    for directory in (root, parent):
        control = directory / "cgroup.subtree_control"
        enabled = set(control.read_text().split()) if control.exists() else set()
        missing = [c for c in ("memory", "cpu", "pids") if c not in enabled]
        if missing:
            try:
                _write(control, " ".join(f"+{c}" for c in missing))
            except OSError as err:
                raise SandboxError(f"cannot enable cgroup controllers in {directory}: {err.strerror}") from err


def _mkdir(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise SandboxError(f"cannot create cgroup {path}: {err.strerror}") from err


def _write(path: Path, value: str) -> None:
    with open(path, "w") as handle:
        handle.write(value)


def _counters(path: Path) -> dict[str, int]:
    try:
        text = path.read_text()
    except OSError:
        return {}
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if value.strip().isdigit():
            out[key] = int(value)
    return out


#: v1's "unlimited" memory.limit_in_bytes (PAGE_COUNTER_MAX pages, rounded): anything this large means none.
_UNLIMITED = 1 << 62


def _number(path: Path) -> int:
    """A file holding one number; "max", a v1 "unlimited" or an unreadable file give 0."""
    try:
        text = path.read_text().strip()
    except OSError:
        return 0
    value = int(text) if text.isdigit() else 0
    return 0 if value >= _UNLIMITED else value


def _io_stat(path: Path) -> tuple[int, int]:
    """v2 io.stat: rbytes and wbytes summed over devices."""
    read = write = 0
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return 0, 0
    for line in lines:
        for field in line.split()[1:]:
            key, _, value = field.partition("=")
            if key == "rbytes":
                read += int(value)
            elif key == "wbytes":
                write += int(value)
    return read, write


def _process_cpu_ns(pid: int) -> int:
    """utime + stime + cutime + cstime of /proc/PID/stat, in ns; 0 for a process gone meanwhile."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            data = handle.read()
    except OSError:
        return 0
    fields = data[data.rindex(b")") + 2 :].split()
    ticks = sum(int(value) for value in fields[11:15])
    return ticks * 1_000_000_000 // os.sysconf("SC_CLK_TCK")


def _process_io(pid: int) -> tuple[int, int]:
    """read_bytes and write_bytes of /proc/PID/io (what reached the block layer)."""
    counters = {}
    try:
        text = Path(f"/proc/{pid}/io").read_text()
    except OSError:
        return 0, 0
    for line in text.splitlines():
        key, _, value = line.partition(":")
        counters[key] = int(value.strip() or 0)
    return counters.get("read_bytes", 0), counters.get("write_bytes", 0)
