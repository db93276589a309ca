"""The bridge network for real, as root, inside a network namespace each test makes (see netfixtures)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from imagekit.errors import NetworkError
from imagekit.runtime import netns, network, ports
from imagekit.values import replace
from tests.runtime.netfixtures import LIVE, PAGE, Container, answer_once, bridge, dead_supervisor, eventually, host_exec, leases, links, outside, ruleset, www

__all__ = ["bridge", "outside", "www"]

A, B = "a" * 64, "b" * 64


def test_two_containers_on_the_bridge_reach_each_other(bridge: network.Bridge, www: Path, tmp_path: Path) -> None:
    first = Container(tmp_path / "a", www, network.connect(bridge, A, "first", names=("web",), supervisor=LIVE))
    second = Container(tmp_path / "b", www, network.connect(bridge, B, "second", supervisor=LIVE))
    assert (first.endpoint.address, second.endpoint.address, first.endpoint.gateway) == ("10.88.0.2", "10.88.0.3", "10.88.0.1")
    with first.serving():
        answer = eventually(lambda: second.sh(f"wget -q -O- http://{first.endpoint.address}/")[1], PAGE)
    assert answer == PAGE
    status, out = second.sh("ip -o -4 addr show eth0; ip route; cat /etc/hosts /etc/hostname")
    assert status == 0, out
    assert "inet 10.88.0.3/16" in out and "default via 10.88.0.1 dev eth0" in out
    assert "10.88.0.3\tsecond\n" in out and out.endswith("second\n")
    assert "10.88.0.2\tfirst web\n" in Path(first.endpoint.etc_files[0][0]).read_text()
    assert links(bridge) == sorted([network.veth_name(A), network.veth_name(B), "imagekit0", "lo"])
    assert host_exec(bridge.host_netns, "cat", "/proc/sys/net/ipv4/ip_forward") == "1\n"


def test_a_container_reaches_beyond_the_host_masqueraded(bridge: network.Bridge, outside: str, www: Path, tmp_path: Path) -> None:
    client = Container(tmp_path / "client", www, network.connect(bridge, A, "client", supervisor=LIVE))
    server = netns.within(outside, lambda: socket.create_server(("192.0.2.2", 8000)))
    server.settimeout(20)  # a failure to connect fails the test rather than hanging it
    peers: list[str] = []
    thread = answer_once(server, b"from outside\n", peers)
    with server:
        status, out = client.sh("timeout 20 wget -q -O- http://192.0.2.2:8000/")
        thread.join()
    assert (status, out) == (0, "from outside\n")
    assert peers == ["192.0.2.1"]  # masqueraded: the outside never learns the container's address
    network.release(bridge, A)


@pytest.mark.parametrize("bridge", ["iptables"], indirect=True)
def test_iptables_forwards_through_a_drop_policy_as_docker_does(bridge: network.Bridge, outside: str, www: Path, tmp_path: Path) -> None:
    host_exec(bridge.host_netns, "iptables", "-P", "FORWARD", "DROP")  # what a host running Docker has
    client = Container(tmp_path / "client", www, network.connect(bridge, A, "client", supervisor=LIVE))
    server = netns.within(outside, lambda: socket.create_server(("192.0.2.2", 8000)))
    server.settimeout(20)  # a failure to connect fails the test rather than hanging it
    thread = answer_once(server, b"through\n", [])
    with server:
        status, out = client.sh("timeout 20 wget -q -O- http://192.0.2.2:8000/")
        thread.join()
    assert (status, out) == (0, "through\n")
    assert "DROP" in host_exec(bridge.host_netns, "iptables", "-S", "FORWARD").splitlines()[0]
    network.release(bridge, A)


def test_release_removes_veth_namespace_and_lease_and_is_idempotent(bridge: network.Bridge, www: Path, tmp_path: Path) -> None:
    endpoint = network.connect(bridge, A, "first", supervisor=LIVE)
    assert network.connect(bridge, A, "first", supervisor=LIVE).address == endpoint.address  # connecting twice keeps the lease
    network.release(bridge, A)
    network.release(bridge, A)
    assert links(bridge) == ["imagekit0", "lo"]
    assert not Path(endpoint.netns).exists()
    assert leases(bridge) == {}
    assert network.connect(bridge, B, "second", supervisor=LIVE).address == "10.88.0.2"  # the address is free again


def test_cleanup_stale_releases_what_no_live_container_holds(bridge: network.Bridge) -> None:
    kept = network.connect(bridge, A, "first", supervisor=LIVE)
    stale = network.connect(bridge, B, "second", supervisor=dead_supervisor())
    host_exec(bridge.host_netns, "ip", "link", "add", "ikorphan", "type", "veth", "peer", "name", "ikorphanpeer")
    host_exec(bridge.host_netns, "ip", "link", "set", "ikorphan", "master", "imagekit0")
    assert network.cleanup_stale(bridge) == [B]
    assert links(bridge) == sorted([network.veth_name(A), "imagekit0", "lo"])
    assert os.path.ismount(kept.netns) and not Path(stale.netns).exists()
    assert list(leases(bridge).values()) == [A]
    assert network.cleanup_stale(bridge) == []


def test_a_lease_names_its_store_by_absolute_path(bridge: network.Bridge, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    relative = replace(bridge, root=Path("store"))  # `imagekit --root store` from tmp_path
    network.connect(relative, A, "first", supervisor=LIVE)
    monkeypatch.chdir("/")
    assert network.cleanup_stale(bridge) == []  # another store's `ps`, elsewhere, sees A alive
    assert list(leases(bridge).values()) == [A]


def test_stores_on_one_host_share_the_leases_and_the_subnet(bridge: network.Bridge, tmp_path: Path) -> None:
    other = network.bridge(tmp_path / "other-store", bridge.host_netns)  # another store, the same host namespace
    assert other.state == bridge.state
    assert network.connect(bridge, A, "first", supervisor=LIVE).address == "10.88.0.2"
    assert network.connect(other, B, "second", supervisor=LIVE).address == "10.88.0.3"
    network.release(other, B)
    elsewhere = replace(other, subnet="10.99.0.0/24")
    with pytest.raises(NetworkError, match=r"^imagekit0 serves 10.88.0.0/16 to running containers, not 10.99.0.0/24: every store"):
        network.connect(elsewhere, B, "second", supervisor=LIVE)
    assert list(leases(bridge).values()) == [A]
    network.release(bridge, A)


def test_concurrent_connects_lease_distinct_addresses(bridge: network.Bridge) -> None:
    ids = [f"{n:064x}" for n in range(1, 7)]
    endpoints: list[network.Endpoint] = []
    gone = dead_supervisor()  # then one cleanup releases them all
    threads = [threading.Thread(target=lambda i=i: endpoints.append(network.connect(bridge, i, f"c{i[-1]}", supervisor=gone))) for i in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(endpoint.address for endpoint in endpoints) == [f"10.88.0.{n}" for n in range(2, 8)]
    assert len(links(bridge)) == 2 + len(ids)  # ids that share a prefix still get a veth each
    for endpoint in endpoints:
        assert f"inet {endpoint.address}/16" in host_exec(endpoint.netns, "ip", "-o", "-4", "addr", "show", "eth0")
    assert network.cleanup_stale(bridge) == ids
    assert links(bridge) == ["imagekit0", "lo"]


def test_a_failed_connect_leaves_nothing(bridge: network.Bridge, tmp_path: Path) -> None:
    host_exec(bridge.host_netns, "ip", "link", "add", "imagekit0", "type", "veth", "peer", "name", "notabridge")
    with pytest.raises(NetworkError, match=rf"^cannot add the veth {network.veth_name(A)} on imagekit0: Operation not supported$") as caught:  # a veth cannot be the master of a veth
        network.connect(bridge, A, "first", supervisor=LIVE)
    assert "\n" not in str(caught.value)
    assert links(bridge) == ["imagekit0", "lo", "notabridge"]
    assert not (bridge.root / "containers" / A / "netns").exists()
    assert leases(bridge) == {}


def test_a_container_id_that_could_escape_is_refused(bridge: network.Bridge) -> None:
    for act in (lambda: network.connect(bridge, "../x", "evil", supervisor=LIVE), lambda: network.release(bridge, "../x")):
        with pytest.raises(NetworkError, match=r"^container id '../x' cannot name NAT rules"):
            act()
    assert not (bridge.root / "x").exists()


@pytest.mark.parametrize("name", ["two words", "line\n10.0.0.1 bank", "", "-flag"])
def test_a_name_that_would_forge_etc_hosts_is_refused(bridge: network.Bridge, name: str) -> None:
    with pytest.raises(NetworkError, match="cannot name a container in /etc/hosts") as caught:
        network.connect(bridge, A, "web", names=(name,), supervisor=LIVE)
    assert "\n" not in str(caught.value)  # repr() escapes the newline
    assert not (bridge.state / "imagekit0.json").exists()


def test_the_subnet_comes_from_the_environment_or_the_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(network.SUBNET_ENV, raising=False)
    assert network.bridge(tmp_path).subnet == "10.88.0.0/16"
    (tmp_path / "networks").mkdir()
    (tmp_path / "networks" / "config.json").write_text('{"subnet": "10.99.0.0/24"}')
    assert (network.bridge(tmp_path).subnet, network.bridge(tmp_path).gateway) == ("10.99.0.0/24", "10.99.0.1")
    monkeypatch.setenv(network.SUBNET_ENV, "192.168.77.0/28")
    assert network.bridge(tmp_path).subnet == "192.168.77.0/28"


@pytest.mark.parametrize(("subnet", "problem"), [("10.88.0.1/16", "has host bits set"), ("fd00::/64", "not an IPv4 network"), ("10.1.1.0/31", "too small"), ("bridge", "not an IPv4 network")])
def test_a_bad_subnet_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, subnet: str, problem: str) -> None:
    monkeypatch.setenv(network.SUBNET_ENV, subnet)
    with pytest.raises(NetworkError, match=problem) as caught:
        network.bridge(tmp_path)
    assert "\n" not in str(caught.value)


def test_a_small_subnet_runs_out_of_addresses(bridge: network.Bridge) -> None:
    small = network.Bridge(root=bridge.root, host_netns=bridge.host_netns, subnet="10.77.0.0/30")
    assert network.connect(small, A, "first", supervisor=LIVE).address == "10.77.0.2"
    with pytest.raises(NetworkError, match=r"no free address left on imagekit0 \(10.77.0.0/30, 1 containers\)"):
        network.connect(small, B, "second", supervisor=LIVE)
    network.release(small, A)


def test_resolv_conf_drops_loopback_resolvers() -> None:
    host = "# managed\nsearch example.org\nnameserver 127.0.0.53\nnameserver 192.0.2.53\nnameserver ::1\noptions edns0\n"
    assert network.resolv_conf(host) == "# managed\nsearch example.org\nnameserver 192.0.2.53\noptions edns0\n"
    assert network.resolv_conf("nameserver 127.0.0.53\n") == "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"


#: every program the bridge could run
TOOLS = ("ip", "nft", "iptables", "iptables-save", "iptables-restore", "nsenter", "unshare")


@pytest.fixture
def programs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[], list[str]]:
    """Each of TOOLS first on PATH as a script that notes its name and runs the real one; the returned function
    gives the names noted since it was last called."""
    shims, log = tmp_path / "shims", tmp_path / "programs.log"
    shims.mkdir()
    for tool in TOOLS:
        real = shutil.which(tool)
        if real:
            (shims / tool).write_text(f'#!/bin/sh\necho {tool} >> {log}\nexec {real} "$@"\n')
            (shims / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{shims}:{os.environ['PATH']}")

    def noted() -> list[str]:
        names = log.read_text().split() if log.exists() else []
        log.unlink(missing_ok=True)
        return names

    return noted


def test_programs_run_only_to_make_the_bridge_and_for_port_rules(bridge: network.Bridge, programs: Callable[[], list[str]]) -> None:
    network.connect(bridge, A, "first", supervisor=LIVE)  # makes the bridge and the NAT table
    assert programs() == {"nft": ["ip", "nft"], "iptables": ["ip", "iptables-save", "iptables-restore"]}[bridge.nat]
    second = network.connect(bridge, B, "second", supervisor=LIVE)
    assert programs() == {"nft": [], "iptables": ["iptables-save"]}[bridge.nat]  # iptables has no look without a program
    assert network.cleanup_stale(bridge) == []  # `ps` with nothing stale
    network.release(bridge, A)
    network.release(bridge, A)
    assert programs() == []
    assert not published(bridge, second.address)
    with ports.publish(bridge, B, second.address, ports.parse_publish("8080:80")):
        assert published(bridge, second.address)
    programs()
    network.release(bridge, B)  # its lease says it published ports: they are looked for
    assert programs() == {"nft": ["nft"], "iptables": ["iptables-save"]}[bridge.nat]  # the proxies' close() deleted them
    assert B not in ruleset(bridge) and links(bridge) == ["imagekit0", "lo"]


def test_nat_is_made_again_when_its_table_went_and_never_twice(bridge: network.Bridge) -> None:
    network.connect(bridge, A, "first", supervisor=LIVE)
    made = ruleset(bridge)
    network.connect(bridge, B, "second", supervisor=LIVE)
    assert ruleset(bridge) == made
    if bridge.nat == "nft":
        host_exec(bridge.host_netns, "nft", "delete", "table", "ip", "imagekit")
    else:
        host_exec(bridge.host_netns, "iptables", "-t", "nat", "-F", "POSTROUTING")
    network.release(bridge, B)
    network.connect(bridge, B, "second", supervisor=LIVE)
    assert ruleset(bridge) == made


def test_a_port_published_after_the_release_is_refused_and_leaves_no_rule(bridge: network.Bridge) -> None:
    endpoint = network.connect(bridge, A, "web", supervisor=LIVE)
    network.release(bridge, A)  # `rm -f` from another process while the runner connected
    with pytest.raises(NetworkError, match=rf"^container {A} is not on imagekit0 any more: it was removed$"):
        ports.publish(bridge, A, endpoint.address, ports.parse_publish("8080:80"))
    assert A not in ruleset(bridge)
    server = netns.within(bridge.host_netns, lambda: socket.create_server(("0.0.0.0", 8080)))  # the port is free again
    server.close()


def published(bridge: network.Bridge, address: str) -> bool:
    """What the lease of `address` says: NAT rules may carry its container's id."""
    return json.loads((bridge.state / f"{bridge.name}.json").read_text())["leases"][address]["rules"]
