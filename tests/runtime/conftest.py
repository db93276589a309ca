"""Runtime fixtures: a busybox image (every applet linked, users `app` 1000:1001) in a fresh store, the real
`imagekit` CLI on it with Docker Hub pointed at a closed loopback port, and no container left running."""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from imagekit.registry.options import DOCKER_HUB_API_ENV
from tests.builder.conftest import CLOSED_PORT, busybox_tree
from tests.store.conftest import BUSYBOX, IMAGEKIT, ok, one_line_error  # noqa: F401

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="session")
def runtime_tar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("runtime-base")
    rootfs = busybox_tree(base / "rootfs")
    applets = subprocess.run([BUSYBOX, "--list"], check=True, capture_output=True, text=True).stdout.split()
    for applet in applets:
        link = rootfs / "bin" / applet
        if not link.exists() and not link.is_symlink():
            link.symlink_to("busybox")
    (rootfs / "home" / "app").mkdir(parents=True)
    (rootfs / "data").mkdir()
    (rootfs / "data" / "seed").write_text("from the image\n")
    out = base / "busybox.tar"
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as archive:
        archive.add(rootfs, arcname=".")
    return out


def run_cli(root: Path, *args: str, input: bytes | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "IMAGEKIT_ROOT"}
    env[DOCKER_HUB_API_ENV] = CLOSED_PORT  # an image the store lacks must never reach Docker Hub from a test
    result = subprocess.run([IMAGEKIT, "--root", str(root), *args], input=input, capture_output=True, timeout=timeout, env=env)
    return subprocess.CompletedProcess(result.args, result.returncode, result.stdout.decode(), result.stderr.decode())


@pytest.fixture
def root(tmp_path: Path, runtime_tar: Path) -> Path:
    """A store holding `busybox:latest` (CMD sh, PATH set) and `withvol:latest` (VOLUME /data)."""
    store = tmp_path / "store"
    ok(run_cli(store, "import", "-c", 'CMD ["sh"]', "-c", "ENV PATH=/usr/local/bin:/usr/bin:/bin", str(runtime_tar), "busybox:latest"))
    ok(run_cli(store, "import", "-c", 'CMD ["sh"]', "-c", "VOLUME /data", "-c", "STOPSIGNAL SIGUSR1", str(runtime_tar), "withvol:latest"))
    yield store
    leftover = run_cli(store, "ps", "-aq", "--no-trunc").stdout.split()
    if leftover:
        run_cli(store, "rm", "-f", *leftover)


@pytest.fixture
def ik(root: Path) -> Run:
    """`ik(*args)`: the real CLI on this test's store; asserts nothing."""

    def run(*args: str, input: bytes | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return run_cli(root, *args, input=input, timeout=timeout)

    return run


def inspect(ik: Run, name: str) -> dict:
    return json.loads(ok(ik("container", "inspect", name)))[0]


def wait_for(condition: Callable[[], bool], timeout: float = 10) -> None:
    """Polls `condition` until true; fails the test after `timeout` seconds (not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail("condition not reached in time")
        time.sleep(0.05)


def cgroup_dirs(container_id: str) -> list[Path]:
    return [Path("/sys/fs/cgroup") / c / "imagekit" / container_id for c in ("memory", "cpu", "pids")]
