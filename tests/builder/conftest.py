"""Builder fixtures: a busybox base image in a fresh store, contexts in tmp_path, and the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from imagekit.registry.options import DOCKER_HUB_API_ENV

from tests.store.conftest import BUSYBOX, IMAGEKIT, make_busybox_rootfs, ok, one_line_error, run_imagekit  # noqa: F401

#: Where "Docker Hub" answers in builder tests: a loopback port nothing listens on (the discard port).
CLOSED_PORT = "127.0.0.1:9"
APPLETS = ("sh", "echo", "ls", "cat", "true", "false", "id", "mkdir", "touch", "rm", "ip", "hostname", "sleep", "stat", "wc")
PASSWD = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001:app:/home/app:/bin/sh\n"
GROUP = "root:x:0:\napp:x:1001:\nextra:x:2000:app\n"


def busybox_tree(directory: Path) -> Path:
    """A busybox rootfs with users (`app` 1000:1001, also in `extra` 2000) and the applets the tests use."""
    make_busybox_rootfs(directory)
    for applet in APPLETS:
        link = directory / "bin" / applet
        if not link.is_symlink():
            link.symlink_to("busybox")
    (directory / "etc" / "passwd").write_text(PASSWD)
    (directory / "etc" / "group").write_text(GROUP)
    (directory / "tmp").mkdir(mode=0o1777)
    os.chmod(directory / "tmp", 0o1777)
    return directory


@pytest.fixture(scope="session")
def busybox_base_tar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not Path(BUSYBOX).is_file():
        pytest.fail("busybox-static is not installed (make test installs it)")
    base = tmp_path_factory.mktemp("builder-base")
    rootfs = busybox_tree(base / "rootfs")
    out = base / "busybox.tar"
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as archive:
        archive.add(rootfs, arcname=".")
    return out


@pytest.fixture
def root(tmp_path: Path, busybox_base_tar: Path) -> Path:
    """A store holding `busybox:latest` (the busybox tree above, CMD sh)."""
    store = tmp_path / "store"
    ok(run_imagekit(store, "import", "-c", 'CMD ["sh"]', "-c", "ENV PATH=/usr/local/bin:/usr/bin:/bin",
                    str(busybox_base_tar), "busybox:latest"))
    return store


def build(root: Path, context: Path, *args: str, text: str | None = None, env: dict[str, str] | None = None,
          timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`imagekit build ARGS CONTEXT` on `root`, writing `text` as the context's Builderfile first."""
    if text is not None:
        context.mkdir(parents=True, exist_ok=True)
        (context / "Builderfile").write_text(text)
    full_env = {k: v for k, v in os.environ.items() if k not in ("IMAGEKIT_ROOT", "SOURCE_DATE_EPOCH")}
    full_env[DOCKER_HUB_API_ENV] = CLOSED_PORT  # a FROM the store lacks must never reach Docker Hub from a test
    full_env.update(env or {})
    result = subprocess.run([IMAGEKIT, "--root", str(root), "build", *args, str(context)],
                            capture_output=True, timeout=timeout, env=full_env)
    return subprocess.CompletedProcess(result.args, result.returncode, result.stdout.decode(), result.stderr.decode())


def inspect(root: Path, ref: str) -> dict:
    return json.loads(ok(run_imagekit(root, "inspect", ref)))[0]


def unpack(root: Path, ref: str, dest: Path) -> Path:
    ok(run_imagekit(root, "unpack", ref, str(dest)))
    return dest
