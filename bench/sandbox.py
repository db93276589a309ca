"""Sandbox bench: `run()` of busybox `true` on an overlay root against `runc run` of the same rootfs.

runc gets a bundle from `runc spec` (its defaults: PID, UTS, IPC, mount and network namespaces,
masked paths, capabilities); imagekit runs the same with network "none", so both make a network
namespace. imagekit's side is the library call, without the CLI's start-up: what the builder pays
per RUN step. Target: at most the time of `runc run` (ratio >= 1.00); the runner's target for
`imagekit run --rm busybox true` is 2x runc.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

from bench._report import ratio, time_interleaved
from imagekit.sandbox import Rootfs, Spec, run

BUSYBOX = shutil.which("busybox") or "/bin/busybox"


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="imagekit-bench-sandbox."))
    try:
        rootfs = work / "bundle" / "rootfs"
        (rootfs / "bin").mkdir(parents=True)
        shutil.copy2(BUSYBOX, rootfs / "bin" / "busybox")
        (rootfs / "bin" / "true").symlink_to("busybox")
        subprocess.run(["runc", "spec"], cwd=work / "bundle", check=True)
        config = json.loads((work / "bundle" / "config.json").read_text())
        config["process"].update(args=["true"], terminal=False)
        (work / "bundle" / "config.json").write_text(json.dumps(config))
        counter = iter(range(100000))

        def ours() -> object:
            n = next(counter)
            (work / f"upper{n}").mkdir()
            (work / f"work{n}").mkdir()
            spec = Spec(Rootfs((str(rootfs),), str(work / f"upper{n}"), str(work / f"work{n}")), ("true",), env=("PATH=/bin",), network="none")
            assert run(spec).status == 0

        def runc() -> object:
            return subprocess.run(["runc", "run", "-b", str(work / "bundle"), f"imagekit-bench-{next(counter)}"], check=True)

        times = time_interleaved({"imagekit": ours, "runc": runc}, rounds=20)
        ratio("run busybox true (median of 20)", times["imagekit"], times["runc"], "runc run", "ratio >= 1.00")
    finally:
        shutil.rmtree(work, ignore_errors=True)
