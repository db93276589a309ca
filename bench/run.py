"""`imagekit run --rm busybox true`, start to exit, against `runc run` of a `umoci unpack` bundle of the same
image (issue 10's target: at most 2x runc, i.e. RATIO >= 0.50). Both are whole commands as a user types
them: imagekit's CLI start-up (Python, click, the runtime's imports), the container's snapshot, cgroup
and record, and its removal; runc's bundle is unpacked once, as `runc run` assumes. Interleaved, median
of 20. Both containers get an empty network namespace (`--network none`, as runc's bundle): the bench never
touches the host's network, which the default bridge would. Python's bytecode cache is allowed (as an installed imagekit has it) even if the environment says
PYTHONDONTWRITEBYTECODE.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from bench._report import ratio, runc_true, time_interleaved

IMAGEKIT = str(Path(sys.executable).with_name("imagekit"))
BUSYBOX = shutil.which("busybox") or "/bin/busybox"


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="imagekit-bench-run."))
    env = {k: v for k, v in os.environ.items() if k not in ("IMAGEKIT_ROOT", "PYTHONDONTWRITEBYTECODE")}
    try:
        rootfs = work / "rootfs"
        (rootfs / "bin").mkdir(parents=True)
        shutil.copy2(BUSYBOX, rootfs / "bin" / "busybox")
        for applet in ("sh", "true"):
            (rootfs / "bin" / applet).symlink_to("busybox")
        with tarfile.open(work / "busybox.tar", "w") as archive:
            archive.add(rootfs, arcname=".")
        store = work / "store"
        imagekit = [IMAGEKIT, "--root", str(store)]
        subprocess.run([*imagekit, "import", "-c", 'CMD ["sh"]', str(work / "busybox.tar"), "busybox:latest"], check=True,
                       env=env, stdout=subprocess.DEVNULL)
        subprocess.run(["umoci", "unpack", "--image", f"{store}:docker.io/library/busybox:latest", str(work / "bundle")],
                       check=True, capture_output=True)
        runc = runc_true(work / "bundle")
        subprocess.run([*imagekit, "run", "--rm", "--network", "none", "busybox", "true"], check=True, env=env)  # extracts the layer, warms caches

        def ours() -> object:
            return subprocess.run([*imagekit, "run", "--rm", "--network", "none", "busybox", "true"], check=True, env=env)

        times = time_interleaved({"imagekit": ours, "runc": runc}, rounds=20)
        ratio("imagekit run --rm busybox true (median of 20)", times["imagekit"], times["runc"], "runc run", "ratio >= 0.50 (at most 2x runc)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
