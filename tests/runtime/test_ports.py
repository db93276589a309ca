"""-p/-P parsing as Docker words it, and published ports for real: the userland proxy on 127.0.0.1 and DNAT on the
host-side address, in a network namespace each test makes (see netfixtures)."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from imagekit.errors import InvalidPublish, NetworkError
from imagekit.runtime import netns, network, ports
from imagekit.runtime.ports import Binding, PortSpec
from tests.runtime.netfixtures import LIVE, PAGE, Container, bridge, dead_supervisor, eventually, host_exec, http_get, outside, ruleset, www

__all__ = ["bridge", "outside", "www"]

A, B = "a" * 64, "b" * 64


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("80", [PortSpec(80)]),
        ("8080:80", [PortSpec(80, "tcp", "", 8080, 8080)]),
        ("127.0.0.1:8080:80/udp", [PortSpec(80, "udp", "127.0.0.1", 8080, 8080)]),
        ("127.0.0.1::80", [PortSpec(80, "tcp", "127.0.0.1", 0, 0)]),
        ("53/UDP", [PortSpec(53, "udp")]),
        ("80/", [PortSpec(80)]),
        ("8000-8001:80-81", [PortSpec(80, "tcp", "", 8000, 8000), PortSpec(81, "tcp", "", 8001, 8001)]),
        ("80-81", [PortSpec(80), PortSpec(81)]),
        ("9000-9009:80", [PortSpec(80, "tcp", "", 9000, 9009)]),
        ("0:80", [PortSpec(80)]),
    ],
)
def test_publish_specs_parse_as_docker_reads_them(text: str, expected: list[PortSpec]) -> None:
    assert ports.parse_publish(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no port specified: <empty>"),
        ("8080:", "no port specified: 8080:<empty>"),
        ("8080:/tcp", "no port specified: 8080:/tcp<empty>"),
        ("99999:80", "invalid hostPort: 99999 (in '99999:80')"),
        ("8080:65536", "invalid containerPort: 65536 (in '8080:65536')"),
        ("8080:0", "invalid containerPort: 0 (in '8080:0')"),
        ("http", "invalid containerPort: http (in 'http')"),
        ("81-80", "invalid containerPort: 81-80 (in '81-80')"),
        ("-1:80", "invalid hostPort: -1 (in '-1:80')"),
        ("8000-8002:80-81", "invalid ranges specified for container and host Ports: 80-81 and 8000-8002"),
        ("80/sctp", "invalid proto: sctp (imagekit publishes tcp and udp)"),
        ("80/icmp", "invalid proto: icmp (imagekit publishes tcp and udp)"),
        ("1.2.3:80:80", "invalid IP address '1.2.3' in publish spec '1.2.3:80:80'"),
        ("[::1]:80:80", "publish spec '[::1]:80:80': IPv6 host addresses are not supported, give an IPv4 address"),
    ],
)
def test_malformed_publish_specs_are_one_line_errors(text: str, message: str) -> None:
    with pytest.raises(InvalidPublish) as caught:
        ports.parse_publish(text)
    assert str(caught.value) == message


def test_publish_all_takes_every_exposed_port_on_a_free_host_port() -> None:
    assert ports.publish_all(["8080/tcp", "53/udp", "53/tcp"]) == [PortSpec(53, "tcp"), PortSpec(53, "udp"), PortSpec(8080, "tcp")]


def test_port_prints_as_docker_port() -> None:
    bindings = [Binding(80, "tcp", "0.0.0.0", 8080), Binding(53, "udp", "127.0.0.1", 5353), Binding(80, "tcp", "127.0.0.1", 9090)]
    assert ports.format_ports(bindings) == ["53/udp -> 127.0.0.1:5353", "80/tcp -> 0.0.0.0:8080", "80/tcp -> 127.0.0.1:9090"]
    assert ports.format_ports(bindings, "80") == ["0.0.0.0:8080", "127.0.0.1:9090"]
    assert ports.format_ports(bindings, "53/udp") == ["127.0.0.1:5353"]
    with pytest.raises(NetworkError, match="^no public port '53/tcp' published for web$"):
        ports.format_ports(bindings, "53", container="web")


def test_a_published_port_serves_through_the_proxy_and_through_dnat(bridge: network.Bridge, outside: str, www: Path, tmp_path: Path) -> None:
    web = Container(tmp_path / "web", www, network.connect(bridge, A, "web", supervisor=LIVE))
    published = ports.publish(bridge, A, web.endpoint.address, ports.parse_publish("8080:80"))
    direct = ports.publish(bridge, A, web.endpoint.address, ports.parse_publish("127.0.0.1:8081:80") + ports.parse_publish("8082:80"), userland_proxy=False)
    assert [str(binding) for binding in published.bindings + direct.bindings] == ["80/tcp -> 0.0.0.0:8080", "80/tcp -> 127.0.0.1:8081", "80/tcp -> 0.0.0.0:8082"]
    assert bridge.rules.owners() == {A}
    with web.serving(), published, direct:
        assert eventually(lambda: http_get(bridge.host_netns, "127.0.0.1", 8080), PAGE) == PAGE  # the userland proxy
        assert http_get(bridge.host_netns, "10.88.0.1", 8082) == PAGE  # DNAT in the output chain: no proxy serves 8082
        assert http_get(outside, "192.0.2.1", 8082) == PAGE  # DNAT in prerouting, from beyond the host
        assert http_get(outside, "192.0.2.1", 8081) == "error: Connection refused"  # published on 127.0.0.1 only
        assert http_get(bridge.host_netns, "127.0.0.1", 8082) == "error: Connection refused"  # loopback never sees DNAT
        neighbour = Container(tmp_path / "neighbour", www, network.connect(bridge, B, "neighbour", supervisor=LIVE))
        assert neighbour.sh("wget -q -O- http://10.88.0.1:8080/") == (0, PAGE)  # from the bridge: the proxy answers
    assert bridge.rules.owners() == set() and A not in ruleset(bridge)
    network.release(bridge, A)
    network.release(bridge, B)


def test_udp_is_proxied_both_ways(bridge: network.Bridge) -> None:
    endpoint = network.connect(bridge, A, "dns", supervisor=LIVE)
    server = netns.within(endpoint.netns, lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    server.bind((endpoint.address, 53))

    def echo() -> None:
        data, source = server.recvfrom(100)
        server.sendto(data.upper(), source)

    thread = threading.Thread(target=echo)
    thread.start()
    client = netns.within(bridge.host_netns, lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    client.settimeout(30)
    with server, client, ports.publish(bridge, A, endpoint.address, ports.parse_publish("127.0.0.1:5353:53/udp")):
        client.sendto(b"query", ("127.0.0.1", 5353))
        assert client.recvfrom(100)[0] == b"QUERY"
        thread.join()
    network.release(bridge, A)


def test_a_port_in_use_is_a_one_line_error_and_changes_nothing(bridge: network.Bridge) -> None:
    first = network.connect(bridge, A, "first", supervisor=LIVE)
    second = network.connect(bridge, B, "second", supervisor=LIVE)
    with ports.publish(bridge, A, first.address, ports.parse_publish("8080:80")):
        before = ruleset(bridge)
        with pytest.raises(NetworkError) as caught:
            ports.publish(bridge, B, second.address, ports.parse_publish("9090:80") + ports.parse_publish("8080:80"))
        assert str(caught.value) == "Bind for 0.0.0.0:8080 failed: port is already allocated"
        assert ruleset(bridge) == before
        ranged = ports.publish(bridge, B, second.address, ports.parse_publish("8080-8081:80"))  # a range skips the taken port
        assert [binding.host_port for binding in ranged.bindings] == [8081]
        ranged.close()
        ranged.close()
    free = ports.publish(bridge, B, second.address, ports.parse_publish("9090:80"))  # 9090 was freed by the failure
    free.close()


def test_release_and_cleanup_remove_the_port_rules(bridge: network.Bridge) -> None:
    endpoint = network.connect(bridge, A, "web", supervisor=dead_supervisor())
    published = ports.publish(bridge, A, endpoint.address, ports.parse_publish("8080:80"))
    assert network.cleanup_stale(bridge) == [A]  # a runner killed with its proxies: the rules go anyway
    assert A not in ruleset(bridge) and "ik" not in host_exec(bridge.host_netns, "ip", "-o", "link")
    published.close()
