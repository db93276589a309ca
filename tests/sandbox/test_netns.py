"""Spec.netns: the sandboxed process joins a network namespace someone else made (the runner's, per container)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from imagekit.errors import SandboxError
from imagekit.sandbox import run
from tests.sandbox.conftest import Box


@pytest.fixture
def netns(tmp_path: Path) -> Iterator[str]:
    """A new network namespace pinned on a file of the test, with a veth pair `ikpeer0`/`ikpeer1` in it."""
    pin = tmp_path / "netns"
    pin.touch()
    subprocess.run(["unshare", f"--net={pin}", "true"], check=True)
    try:
        subprocess.run(["nsenter", f"--net={pin}", "ip", "link", "add", "ikpeer0", "type", "veth", "peer", "name", "ikpeer1"], check=True)
        yield str(pin)
    finally:
        subprocess.run(["umount", str(pin)], check=True)


def test_the_process_joins_the_given_network_namespace(box: Box, netns: str) -> None:
    status, out, _ = box.sh("ip -o link | cut -d: -f2; ls /sys/class/net", netns=netns)
    assert status == 0, out
    assert out.split() == ["lo", "ikpeer1@ikpeer0", "ikpeer0@ikpeer1", "ikpeer0", "ikpeer1", "lo"]


def test_a_missing_netns_is_a_one_line_setup_error(box: Box, tmp_path: Path) -> None:
    with pytest.raises(SandboxError, match=r"^sandbox: .*/missing: No such file or directory$"):
        run(box.spec("true", netns=str(tmp_path / "missing")))


def test_a_file_that_is_no_netns_is_refused(box: Box, tmp_path: Path) -> None:
    other = tmp_path / "plain"
    other.touch()
    with pytest.raises(SandboxError, match=r"^sandbox: setns .*/plain: Invalid argument$"):
        run(box.spec("true", netns=str(other)))


@pytest.mark.parametrize(("netns", "network"), [("relative/ns", "host"), ("/proc/1/ns/net", "none")])
def test_netns_must_be_absolute_and_excludes_network_none(box: Box, netns: str, network: str) -> None:
    with pytest.raises(SandboxError, match="must be an absolute path, with network 'host'"):
        run(box.spec("true", netns=netns, network=network))
