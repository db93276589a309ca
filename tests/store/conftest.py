"""Store fixtures: a busybox-static rootfs tarball, and the real `imagekit` command on a store root."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

IMAGEKIT = str(Path(sys.executable).with_name("imagekit"))
BUSYBOX = shutil.which("busybox") or "/bin/busybox"
APPLETS = ("sh", "echo", "ls", "cat", "true")

Run = Callable[..., subprocess.CompletedProcess[str]]


def make_busybox_rootfs(directory: Path) -> Path:
    """A one-binary rootfs: /bin/busybox and symlinks for a few applets."""
    (directory / "bin").mkdir(parents=True)
    shutil.copy2(BUSYBOX, directory / "bin" / "busybox")
    for applet in APPLETS:
        (directory / "bin" / applet).symlink_to("busybox")
    (directory / "etc").mkdir()
    (directory / "etc" / "hostname").write_text("busybox\n")
    return directory


@pytest.fixture(scope="session")
def busybox_tar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not Path(BUSYBOX).is_file():
        pytest.fail("busybox-static is not installed (make test installs it)")
    base = tmp_path_factory.mktemp("busybox")
    rootfs = make_busybox_rootfs(base / "rootfs")
    out = base / "busybox.tar"
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as archive:
        archive.add(rootfs, arcname=".")
    return out


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "store"


def run_imagekit(root: Path, *args: str, input: bytes | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Runs the installed `imagekit` console script on `root`; never raises on a non-zero exit."""
    env = {k: v for k, v in os.environ.items() if k != "IMAGEKIT_ROOT"}
    result = subprocess.run(
        [IMAGEKIT, "--root", str(root), *args], input=input, capture_output=True, timeout=timeout, env=env
    )
    return subprocess.CompletedProcess(result.args, result.returncode, result.stdout.decode(), result.stderr.decode())


@pytest.fixture
def imagekit(root: Path) -> Run:
    """`imagekit(*args)` on this test's store; asserts nothing, returns the CompletedProcess."""

    def run(*args: str, input: bytes | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return run_imagekit(root, *args, input=input, timeout=timeout)

    return run


def ok(result: subprocess.CompletedProcess[str]) -> str:
    """stdout of a command that must have succeeded; the failure message shows its stderr."""
    assert result.returncode == 0, f"{result.args} exited {result.returncode}: {result.stderr}"
    return result.stdout


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The single stderr line of a command that must have failed cleanly."""
    assert result.returncode != 0, f"{result.args} succeeded: {result.stdout}"
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one stderr line, got: {result.stderr!r}"
    return lines[0]


def oci_image_tool_validate(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["oci-image-tool", "validate", "--type", "image", str(root)], capture_output=True, text=True, timeout=120)
