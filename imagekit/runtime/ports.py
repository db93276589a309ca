"""Published ports: `-p`/`-P` parsed as Docker does, DNAT rules in nftables, and docker-proxy's userland proxy.

`parse_publish("127.0.0.1:8080:80/tcp")` and `publish_all(exposed)` give PortSpecs; `publish(bridge, id, address,
specs)` takes the host ports (a port in use is a one-line NetworkError before anything else changes), adds one
DNAT rule per port (imagekit.runtime.nat: nftables or iptables, commented with the container id, so
network.release and network.cleanup_stale find them) and serves the proxies: Docker's default, because
DNAT never sees connections to 127.0.0.1 (they do not leave the host's loopback). The proxies are threads of
the caller (the runner's supervisor, one per container), not a daemon; `Published.close()` stops them and
removes the rules. `format_ports` prints what `port CONTAINER` prints (`80/tcp -> 0.0.0.0:8080`).

Sockets are made in the bridge's host namespace (imagekit.runtime.netns.within), so tests run all of it inside
a namespace they made.

Imports: stdlib, imagekit.errors, imagekit.runtime.{nat,netns,network}.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import select
import socket
import threading
from collections.abc import Iterable

from imagekit.errors import InvalidPublish, NetworkError
from imagekit.runtime import nat, netns, network
from imagekit.values import value

PROTOCOLS = ("tcp", "udp")
_CHUNK = 65536
_CONNECT_TIMEOUT = 10.0  # seconds a client waits for the container to accept before it is cut
_UDP_CLIENTS = 256  # flows a UDP proxy keeps (docker-proxy's UDPConnTrackMax is 1024); the oldest goes first


@value
class PortSpec:
    """One container port to publish: on `host_ip` ("" for all addresses), host port `host_port` (0 for any free
    one) or the first free one of host_port..host_port_end."""

    container_port: int
    proto: str = "tcp"
    host_ip: str = ""
    host_port: int = 0
    host_port_end: int = 0


@value
class Binding:
    """A published port: what the container record keeps and `port` prints."""

    container_port: int
    proto: str
    host_ip: str
    host_port: int

    @property
    def private(self) -> str:
        return f"{self.container_port}/{self.proto}"

    def __str__(self) -> str:
        return f"{self.private} -> {self.host_ip}:{self.host_port}"


def parse_publish(text: str) -> list[PortSpec]:
    """Docker's `-p [[IP:][HOST_PORT]:]CONTAINER_PORT[/PROTO]`, ranges included (`8000-8001:80-81`, or a host range
    to pick one port from for a single container port); errors as Docker words them, on one line."""
    parts = text.split(":")
    container = parts[-1]
    host = parts[-2] if len(parts) > 1 else ""
    ip = ":".join(parts[:-2])
    container, _, proto = container.partition("/")
    proto = (proto or "tcp").lower()
    if ip.startswith("["):
        ip = ip.removeprefix("[").removesuffix("]")
    if ip:
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            raise InvalidPublish(f"invalid IP address {ip!r} in publish spec {text!r}") from None
        if address.version != 4:
            raise InvalidPublish(f"publish spec {text!r}: IPv6 host addresses are not supported, give an IPv4 address")
    if not container:
        raise InvalidPublish(f"no port specified: {text}<empty>")
    start, end = _range(container, "containerPort", text)
    if start == 0:
        raise InvalidPublish(f"invalid containerPort: {container} (in {text!r})")
    host_start, host_end = _range(host, "hostPort", text) if host else (0, 0)
    if host and end - start != host_end - host_start and start != end:
        raise InvalidPublish(f"invalid ranges specified for container and host Ports: {container} and {host}")
    if proto not in PROTOCOLS:
        raise InvalidPublish(f"invalid proto: {proto} (imagekit publishes tcp and udp)")
    if start == end:
        return [PortSpec(start, proto, ip, host_start, host_end)]
    return [PortSpec(port, proto, ip, host_start + offset if host else 0, host_start + offset if host else 0) for offset, port in enumerate(range(start, end + 1))]


def publish_all(exposed: Iterable[str]) -> list[PortSpec]:
    """`-P`: every port the image EXPOSEs ("80/tcp", the keys of its config's ExposedPorts) on a free host port."""
    return sorted((spec for key in exposed for spec in parse_publish(key)), key=lambda spec: (spec.container_port, spec.proto))


def format_ports(bindings: Iterable[Binding], private: str = "", container: str = "") -> list[str]:
    """What `port CONTAINER [PRIVATE_PORT[/PROTO]]` prints: every binding as `80/tcp -> 0.0.0.0:8080`, or the host
    addresses of the one private port asked for (a NetworkError when it is not published)."""
    ordered = sorted(bindings, key=lambda binding: (binding.container_port, binding.proto, binding.host_ip, binding.host_port))
    if not private:
        return [str(binding) for binding in ordered]
    wanted = private if "/" in private else f"{private}/tcp"
    lines = [f"{binding.host_ip}:{binding.host_port}" for binding in ordered if binding.private == wanted]
    if not lines:
        raise NetworkError(f"no public port {wanted!r} published for {container or 'the container'}")
    return lines


def publish(bridge: network.Bridge, container_id: str, address: str, specs: Iterable[PortSpec], *, userland_proxy: bool = True) -> Published:
    """Publishes the container's ports (at `address` on the bridge) and returns the handle that unpublishes them.
    Host ports are taken first, so a port in use changes nothing; the proxies serve until close()."""
    nat.check_id(container_id)
    sockets: list[tuple[Binding, socket.socket]] = []
    try:
        for spec in specs:
            sockets.append(_take(bridge, spec))
        rules = [nat.Dnat(binding.proto, binding.host_ip, binding.host_port, address, binding.container_port) for binding, _ in sockets]
        if rules:  # none: nothing to mark on the lease, no program to run
            network.add_rules(bridge, container_id, rules)
    except BaseException:
        for _, sock in sockets:
            sock.close()
        raise
    return Published(bridge, container_id, address, sockets, userland_proxy)


class Published:
    """The published ports of one container and, with the userland proxy, the threads that serve them. One per
    container: close() deletes every NAT rule of the container."""

    def __init__(self, bridge: network.Bridge, container_id: str, address: str, sockets: list[tuple[Binding, socket.socket]], proxy: bool) -> None:
        self.bridge = bridge
        self.container_id = container_id
        self.bindings = tuple(binding for binding, _ in sockets)
        self._sockets = [sock for _, sock in sockets]
        self._wake_read, self._wake_write = os.pipe()
        self._open: set[socket.socket] = set()
        self._guard = threading.Lock()
        self._threads: list[threading.Thread] = []
        if proxy:
            for binding, sock in sockets:
                target = (address, binding.container_port)
                serve = self._serve_tcp if binding.proto == "tcp" else self._serve_udp
                thread = netns.thread_in(bridge.host_netns, lambda serve=serve, sock=sock, target=target: serve(sock, target), f"proxy {binding}")
                thread.start()
                self._threads.append(thread)

    def close(self) -> None:
        """Stops the proxies (open connections are cut), frees the host ports and deletes the DNAT rules (with no
        port published, there are none to look for). Idempotent."""
        if self._wake_write < 0:
            return
        os.write(self._wake_write, b"x")
        with self._guard:
            for sock in self._open:
                _cut(sock)
        for thread in self._threads:
            thread.join()
        for sock in self._sockets:
            sock.close()
        os.close(self._wake_write)
        os.close(self._wake_read)
        self._wake_write = -1
        if self.bindings:
            network.delete_rules(self.bridge, self.container_id)

    def __enter__(self) -> Published:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _serve_tcp(self, listener: socket.socket, target: tuple[str, int]) -> None:
        """Accepts until close(); each connection is relayed to the container by a thread of its own."""
        listener.listen(128)
        while self._wake_read not in select.select([listener, self._wake_read], [], [])[0]:
            try:
                client, _ = listener.accept()
            except OSError:
                continue
            threading.Thread(target=self._relay, args=(client, target), daemon=True).start()

    def _relay(self, client: socket.socket, target: tuple[str, int]) -> None:
        """Copies bytes both ways until both sides closed; an end that closes half-closes the other (like docker-proxy)."""
        upstream = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        with self._guard:
            self._open |= {client, upstream}
        try:
            upstream.settimeout(_CONNECT_TIMEOUT)
            upstream.connect(target)
            upstream.settimeout(None)
            peers = {client: upstream, upstream: client}
            while peers:
                for sock in select.select(list(peers), [], [])[0]:
                    data = sock.recv(_CHUNK)
                    if data:
                        peers[sock].sendall(data)
                    else:
                        peers[sock].shutdown(socket.SHUT_WR)
                        del peers[sock]
        except OSError:
            pass  # a refused or reset connection ends the relay, as it ends docker-proxy's
        finally:
            with self._guard:
                self._open -= {client, upstream}
            client.close()
            upstream.close()

    def _serve_udp(self, listener: socket.socket, target: tuple[str, int]) -> None:
        """Forwards datagrams through one upstream socket per client address, and replies back to the client."""
        flows: dict[tuple[str, int], socket.socket] = {}
        clients: dict[socket.socket, tuple[str, int]] = {}
        try:
            while True:
                ready = select.select([listener, self._wake_read, *clients], [], [])[0]
                if self._wake_read in ready:
                    return
                for sock in ready:
                    if sock is listener:
                        data, source = listener.recvfrom(_CHUNK)
                        if source not in flows:
                            if len(flows) >= _UDP_CLIENTS:
                                oldest = next(iter(flows))
                                del clients[flows[oldest]]
                                flows.pop(oldest).close()
                            flows[source] = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                            flows[source].connect(target)
                            clients[flows[source]] = source
                        flows[source].send(data)
                    else:
                        try:
                            listener.sendto(sock.recv(_CHUNK), clients[sock])
                        except OSError:  # ICMP unreachable from the container: forget the flow
                            del flows[clients.pop(sock)]
                            sock.close()
        finally:
            for sock in flows.values():
                sock.close()


def _take(bridge: network.Bridge, spec: PortSpec) -> tuple[Binding, socket.socket]:
    """Binds the host port (the first free one of a range, any free one for 0) in the bridge's host namespace."""
    kind = socket.SOCK_STREAM if spec.proto == "tcp" else socket.SOCK_DGRAM
    ip = spec.host_ip or "0.0.0.0"
    candidates = range(spec.host_port, max(spec.host_port, spec.host_port_end) + 1)
    for port in candidates:
        sock = netns.within(bridge.host_netns, lambda: socket.socket(socket.AF_INET, kind))
        if kind == socket.SOCK_STREAM:  # survives TIME_WAIT; on UDP it would let two sockets share the port
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((ip, port))
        except OSError as err:
            sock.close()
            if err.errno == errno.EADDRINUSE and port != candidates[-1]:
                continue
            wanted = f"{spec.host_port}-{spec.host_port_end}" if len(candidates) > 1 else str(port)
            if err.errno == errno.EADDRINUSE:
                raise NetworkError(f"Bind for {ip}:{wanted} failed: port is already allocated") from err
            raise NetworkError(f"Bind for {ip}:{wanted} failed: {err.strerror}") from err
        return Binding(spec.container_port, spec.proto, ip, sock.getsockname()[1]), sock
    raise AssertionError("unreachable: a range has at least one port")


def _range(text: str, what: str, spec: str) -> tuple[int, int]:
    """`N` or `N-M` with 0 <= N <= M <= 65535, as Docker's ParsePortRange."""
    first, dash, last = text.partition("-")
    try:
        if not (first.isdigit() and (not dash or last.isdigit())):
            raise ValueError(text)
        start, end = int(first), int(last) if dash else int(first)
        if end > 65535 or end < start:
            raise ValueError(text)
    except ValueError:
        raise InvalidPublish(f"invalid {what}: {text} (in {spec!r})") from None
    return start, end


def _cut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # never connected, or already closed
