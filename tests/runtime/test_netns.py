"""Network namespaces made and used from threads, and the netlink requests of the bridge, for real in namespaces
the tests make (never the machine's own)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from imagekit.errors import NetworkError
from imagekit.runtime import nat, netlink, netns
from tests.runtime.netfixtures import host_exec


@pytest.fixture
def pin(tmp_path: Path) -> Iterator[str]:
    """An empty file to pin a namespace on; unmounted afterwards if a test pinned one."""
    path = tmp_path / "netns"
    path.touch()
    yield str(path)
    if os.path.ismount(path):
        subprocess.run(["umount", str(path)], check=True)


def test_pin_new_makes_an_empty_namespace_of_its_own(pin: str) -> None:
    netns.pin_new(pin)
    assert os.path.ismount(pin)
    assert netns.links(pin) == {"lo"}
    assert os.stat(pin).st_ino not in (os.stat("/proc/self/ns/net").st_ino, os.stat(os.environ["IMAGEKIT_HOST_NETNS"]).st_ino)
    assert host_exec(pin, "readlink", "/proc/self/ns/net").strip() == f"net:[{os.stat(pin).st_ino}]"


def test_pin_new_on_a_missing_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(NetworkError, match=r"^cannot make a network namespace on .*/missing: No such file or directory$"):
        netns.pin_new(str(tmp_path / "missing"))


def test_a_program_started_within_a_namespace_runs_there(pin: str) -> None:
    netns.pin_new(pin)
    shown = netns.within(pin, lambda: subprocess.run(["readlink", "/proc/self/ns/net"], capture_output=True, text=True, check=True).stdout)
    assert shown.strip() == f"net:[{os.stat(pin).st_ino}]"
    assert os.readlink("/proc/thread-self/ns/net") != shown.strip()  # the caller's thread never moved


def test_delete_link_takes_the_peer_along_and_says_when_there_is_none(pin: str) -> None:
    netns.pin_new(pin)
    host_exec(pin, "ip", "link", "add", "ikone", "type", "veth", "peer", "name", "iktwo")
    assert netns.links(pin) == {"lo", "ikone", "iktwo"}
    assert netlink.delete_link(pin, "ikone") is True
    assert netns.links(pin) == {"lo"}
    assert netlink.delete_link(pin, "ikone") is False
    with pytest.raises(NetworkError, match=r"^cannot delete the link lo: Operation not supported$"):
        netlink.delete_link(pin, "lo")


def test_nft_table_exists_sees_what_nft_made_and_removed(pin: str) -> None:
    netns.pin_new(pin)
    assert not netlink.nft_table_exists(pin, nat.TABLE)
    nat.Nftables(pin, "imagekit0", "10.88.0.0/16").ensure()
    assert netlink.nft_table_exists(pin, nat.TABLE)
    assert not netlink.nft_table_exists(pin, "other")
    host_exec(pin, "nft", "delete", "table", "ip", nat.TABLE)
    assert not netlink.nft_table_exists(pin, nat.TABLE)
