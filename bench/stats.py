"""`imagekit stats` with 10 running containers: the time one refresh takes (issue 10's target: under 100 ms).

A refresh is what `stats` does every second: list the store's containers, read each running one's cgroup
and /proc counters, and format docker's table. It is timed in-process over the same runtime calls the CLI
makes (`containers.all`, `stats.sample`, `stats.row`, `stats.table`), median of 20, after 10 containers
started with `imagekit run -d --network none` (no bridge: the bench never touches the host's network).
Also timed: the whole `imagekit stats --no-stream` command, which adds the interpreter's start-up and its
0.5 s between the two samples CPU % needs (docker's `--no-stream` waits for two samples as well).
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.run import IMAGEKIT, import_busybox
from imagekit.runtime import stats
from imagekit.runtime.container import Runtime
from imagekit.store import Store

CONTAINERS = 10


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="imagekit-bench-stats."))
    env = {k: v for k, v in os.environ.items() if k not in ("IMAGEKIT_ROOT", "PYTHONDONTWRITEBYTECODE")}
    store = work / "store"
    imagekit = [IMAGEKIT, "--root", str(store)]
    try:
        import_busybox(work, store, env, ("sh", "sleep"))
        for _ in range(CONTAINERS):
            subprocess.run([*imagekit, "run", "-d", "--network", "none", "busybox", "sleep", "1000"], check=True, env=env,
                           stdout=subprocess.DEVNULL)
        runtime = Runtime(Store(store))
        before = {c.id: stats.sample(c, runtime.cgroup_root) for c in runtime.containers.all() if c.state == "running"}
        if len(before) != CONTAINERS:
            sys.exit(f"bench stats: {len(before)} of {CONTAINERS} containers are running")

        def refresh() -> str:
            running = [c for c in runtime.containers.all() if c.state == "running"]
            rows = [stats.row(c, before[c.id], stats.sample(c, runtime.cgroup_root)) for c in running]
            return stats.table([stats.HEADER, *rows])

        refreshes = []
        for _ in range(20):
            start = time.perf_counter()
            refresh()
            refreshes.append(time.perf_counter() - start)
        command = []
        for _ in range(5):
            start = time.perf_counter()
            subprocess.run([*imagekit, "stats", "--no-stream"], check=True, env=env, stdout=subprocess.DEVNULL)
            command.append(time.perf_counter() - start)
        print(f"FIGURE stats refresh of {CONTAINERS} running containers: {statistics.median(refreshes) * 1000:.1f} ms "
              f"(median of 20)  target < 100 ms", flush=True)
        print(f"FIGURE imagekit stats --no-stream with {CONTAINERS} containers: {statistics.median(command):.3f} s "
              f"(median of 5; 0.5 s of it is the wait between its two samples)", flush=True)
    finally:
        ids = subprocess.run([*imagekit, "ps", "-aq"], capture_output=True, text=True, env=env).stdout.split()
        if ids:
            subprocess.run([*imagekit, "rm", "-f", *ids], capture_output=True, env=env)
        shutil.rmtree(work, ignore_errors=True)
