"""Shared printing and timing for benchmarks, so every ratio reads the same way."""

from __future__ import annotations

import json
import statistics
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path


def time_interleaved(
    runs: dict[str, Callable[[], object]], rounds: int = 3, *, before: Callable[[], object] | None = None
) -> dict[str, float]:
    """Runs each contender once per round, interleaved (A B A B ...), and returns the median seconds.

    Interleaving matters on these shared, noisy 2-core machines: a slow minute hurts both sides.
    `before`, if given, runs untimed before every run (e.g. `os.sync`, so one contender's unwritten
    data is not flushed during the next one's fsync).
    """
    samples: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            if before is not None:
                before()
            start = time.perf_counter()
            run()
            samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in samples.items()}


def shell(command: str) -> Callable[[], object]:
    """A contender that runs a shell pipeline (with pipefail) and fails loudly if it fails."""
    return lambda: subprocess.run(["bash", "-o", "pipefail", "-c", command], check=True, stdout=subprocess.DEVNULL)


def ratio(name: str, ours: float, theirs: float, peer: str, target: str = "") -> None:
    """Prints `RATIO name: throughput ratio` where >1 means imagekit is faster than the peer."""
    value = theirs / ours if ours else float("inf")
    goal = f"  target {target}" if target else ""
    print(f"RATIO {name}: {value:.2f}  (imagekit {ours:.3f}s, {peer} {theirs:.3f}s){goal}", flush=True)


def runc_true(bundle: Path) -> Callable[[], object]:
    """The peer of every "run busybox true" bench: `runc run` of `bundle` (a `runc spec` or `umoci unpack`
    bundle whose rootfs has /bin/true) made to run `true` without a terminal, each run a new container ID."""
    config = json.loads((bundle / "config.json").read_text())
    config["process"].update(args=["true"], terminal=False)
    (bundle / "config.json").write_text(json.dumps(config))
    return lambda: subprocess.run(["runc", "run", "-b", str(bundle), f"imagekit-bench-{uuid.uuid4().hex[:12]}"], check=True)
