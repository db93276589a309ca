"""`imagekit run --rm busybox true`, start to exit, against `runc run` of a `umoci unpack` bundle of the same
image (issue 10's target: at most 2x runc, i.e. RATIO >= 0.50) and against `podman run --rm --runtime runc`
(at most half of podman's time, RATIO >= 2.0). All are whole commands as a user types them: imagekit's CLI
start-up (Python, click, the runtime's imports), the container's snapshot, cgroup and record, and its
removal; runc's bundle is unpacked once, as `runc run` assumes; podman has the image in a store of its own
under the bench's directory (pulled from imagekit's OCI layout, never from a registry) and needs the ulimits
MACHINE-NOTES.md names. Interleaved, median of 20, each sample after a sync: what the previous contender left
dirty (podman's store, imagekit's upper dir and records) is written out before the next one starts, so no contender's
fsyncs wait for another's writeback. imagekit is timed as a user installs it (`pip install` of this
tree into a virtualenv of its own, as a wheel: the ratios are this one's) and as this repository's editable
development install, whose import finder (setuptools' __editable__ hook, imported at every start) costs more. Every contender gets an empty network namespace
(`--network none`, as runc's bundle): the bench never touches the host's network, which the default bridge
would (bench/bridge.py measures the bridge, in a namespace of its own). Python's bytecode cache is allowed
(as an installed imagekit has it) even if the environment says PYTHONDONTWRITEBYTECODE.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path

from bench._report import ratio, runc_true, time_interleaved

IMAGEKIT = str(Path(sys.executable).with_name("imagekit"))
BUSYBOX = shutil.which("busybox") or "/bin/busybox"
PODMAN = shutil.which("podman")


def import_busybox(work: Path, store: Path, env: dict[str, str], applets: tuple[str, ...] = ("sh", "true")) -> list[str]:
    """`busybox:latest` (the host's static busybox as `applets`) imported into `store`; the imagekit command
    line that uses that store."""
    rootfs = work / "rootfs"
    (rootfs / "bin").mkdir(parents=True)
    shutil.copy2(BUSYBOX, rootfs / "bin" / "busybox")
    for applet in applets:
        (rootfs / "bin" / applet).symlink_to("busybox")
    with tarfile.open(work / "busybox.tar", "w") as archive:
        archive.add(rootfs, arcname=".")
    imagekit = [IMAGEKIT, "--root", str(store)]
    subprocess.run([*imagekit, "import", "-c", 'CMD ["sh"]', str(work / "busybox.tar"), "busybox:latest"], check=True,
                   env=env, stdout=subprocess.DEVNULL)
    return imagekit


def installed_imagekit(work: Path) -> str:
    """The `imagekit` command of a fresh virtualenv with this tree pip-installed (a wheel, no editable finder).
    Its runtime dependencies stay out: a run of a stored image never imports them (test_startup_imports)."""
    venv, wheels = work / "installed", work / "wheels"
    pip = [sys.executable, "-m", "pip", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "-w", str(wheels), str(Path(__file__).resolve().parent.parent)],
                   check=True, stdout=subprocess.DEVNULL)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    subprocess.run([*pip, "--python", str(venv / "bin" / "python"), "install", "--no-deps", *map(str, wheels.glob("*.whl"))], check=True)
    return str(venv / "bin" / "imagekit")


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="imagekit-bench-run."))
    env = {k: v for k, v in os.environ.items() if k not in ("IMAGEKIT_ROOT", "PYTHONDONTWRITEBYTECODE")}
    podman = [PODMAN, "--root", str(work / "podman"), "--runroot", str(work / "podman-run"), "--storage-driver", "overlay"] if PODMAN else []
    try:
        store = work / "store"
        imagekit = import_busybox(work, store, env)
        subprocess.run(["umoci", "unpack", "--image", f"{store}:docker.io/library/busybox:latest", str(work / "bundle")],
                       check=True, capture_output=True)
        runc = runc_true(work / "bundle")
        installed = [installed_imagekit(work), *imagekit[1:]]

        def run_with(command: list[str]) -> Callable[[], object]:
            return lambda: subprocess.run([*command, "run", "--rm", "--network", "none", "busybox", "true"], check=True, env=env)

        for command in (imagekit, installed):  # the first extracts the layer; both write their bytecode caches
            run_with(command)()

        contenders = {"imagekit": run_with(installed), "imagekit-editable": run_with(imagekit), "runc": runc}
        if podman:
            image_id = subprocess.run([*podman, "pull", "-q", f"oci:{store}:docker.io/library/busybox:latest"], check=True,
                                      capture_output=True, text=True).stdout.split()[-1]
            contenders["podman"] = lambda: subprocess.run(
                [*podman, "run", "--rm", "--pull", "never", "--runtime", "runc", "--ulimit", "nofile=1024:1024",
                 "--ulimit", "nproc=4096:4096", "--network", "none", image_id, "true"], check=True)
        times = time_interleaved(contenders, rounds=20, before=os.sync)
        ratio("imagekit run --rm busybox true (median of 20)", times["imagekit"], times["runc"], "runc run", "ratio >= 0.50 (at most 2x runc)")
        ratio("the same, editable development install", times["imagekit-editable"], times["runc"], "runc run", "")
        if podman:
            ratio("imagekit run --rm busybox true (median of 20)", times["imagekit"], times["podman"], "podman run --rm", "ratio >= 2.0 (at most half of podman)")
        else:
            print("bench run: podman is not installed, no podman ratio", flush=True)
    finally:
        if podman and (work / "podman").is_dir():
            subprocess.run([*podman, "rmi", "-a", "-f"], capture_output=True)  # its overlay layers, before the tree goes
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
