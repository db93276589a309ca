"""Shared printing and timing for benchmarks, so every ratio reads the same way."""

from __future__ import annotations

import statistics
import subprocess
import time
from collections.abc import Callable


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
