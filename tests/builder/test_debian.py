"""Builds on a real Debian rootfs (mmdebstrap minbase, made once and cached between test runs), with
a RUN that installs a package with apt-get from the Debian archive this machine's apt names."""

from __future__ import annotations

import fcntl
import os
import subprocess
from pathlib import Path

import pytest

from tests.builder.conftest import build, ok, run_imagekit, unpack

CACHE = Path(os.environ.get("IMAGEKIT_TEST_CACHE", "/var/cache/imagekit-tests"))
DEBIAN_TAR = CACHE / "bookworm-minbase.tar"


@pytest.fixture(scope="session")
def debian_tar() -> Path:
    """The cached rootfs; made under a lock so parallel test workers make it once."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / "debian.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not DEBIAN_TAR.is_file():
            partial = CACHE / "bookworm-minbase.partial.tar"  # mmdebstrap picks the format by the name
            subprocess.run(["mmdebstrap", "--quiet", "--variant=minbase", "--mode=root", "bookworm", str(partial)],
                           check=True, timeout=600)
            partial.rename(DEBIAN_TAR)
    return DEBIAN_TAR


def test_apt_get_install_in_a_run_step(root: Path, tmp_path: Path, debian_tar: Path) -> None:
    ok(run_imagekit(root, "import", "-c", "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    str(debian_tar), "debian:bookworm", timeout=300))
    text = """\
FROM debian:bookworm
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends hello && rm -rf /var/lib/apt/lists/*
RUN hello > /greeting
CMD ["hello"]
"""
    result = build(root, tmp_path / "ctx", "-t", "deb-hello:1", text=text, timeout=600)
    ok(result)
    out = unpack(root, "deb-hello:1", tmp_path / "out")
    assert (out / "greeting").read_text() == "Hello, world!\n"
    assert (out / "usr" / "bin" / "hello").is_file()
    assert not (out / "var" / "lib" / "apt" / "lists" / "lock").exists()
