"""Network test fixtures: a "host" network namespace per test (the bridge, NAT rules and addresses live there,
never on the machine's own network), a busybox rootfs with httpd, containers run on the bridge, and the
supervisors a lease names: this process (LIVE) or one that is gone (`dead_supervisor`)."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from imagekit.runtime import nat, network
from imagekit.runtime.netns import within
from imagekit.runtime.state import process_start
from imagekit.sandbox import Result, Spec, run
from imagekit.values import replace
from tests.netns import make_netns, remove_netns
from tests.sandbox.conftest import ENV, make_box
from tests.store.conftest import make_busybox_rootfs

APPLETS = ("httpd", "wget", "ip", "cat", "hostname", "timeout")  # not wget -T: it crashes this busybox
PAGE = "hello from the container\n"
#: the supervisor of the containers a test connects in process: the test itself, alive while it runs
LIVE = (os.getpid(), process_start(os.getpid()))


def dead_supervisor() -> tuple[int, int]:
    """(pid, start time) of a process that ran and is gone: a runner that was killed."""
    child = subprocess.Popen(["sleep", "60"])
    start = process_start(child.pid)
    child.kill()
    child.wait()
    return child.pid, start


@pytest.fixture(scope="session")
def www(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A read-only lower: busybox with httpd and wget, and /www/index.html."""
    root = make_busybox_rootfs(tmp_path_factory.mktemp("net") / "busybox")
    for applet in APPLETS:
        if not (root / "bin" / applet).exists():
            (root / "bin" / applet).symlink_to("busybox")
    (root / "www").mkdir()
    (root / "www" / "index.html").write_text(PAGE)
    return root


def host_exec(netns: str, *argv: str, check: bool = True) -> str:
    """Runs a command in the test's host namespace (no proxy variables: nothing may leave it)."""
    done = subprocess.run(["nsenter", f"--net={netns}", *argv], capture_output=True, text=True, env={"PATH": os.environ["PATH"]}, timeout=60)
    if check and done.returncode != 0:
        raise AssertionError(f"{argv}: {done.returncode} {done.stderr}")
    return done.stdout + done.stderr


@pytest.fixture(params=nat.BACKENDS)
def bridge(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[network.Bridge]:
    """The default bridge of a store in tmp_path, its host side in a network namespace this test made (lo up),
    with each NAT backend."""
    pin = make_netns(tmp_path / "hostns")
    try:
        yield replace(network.bridge(tmp_path / "store", host_netns=pin), nat=request.param)
    finally:
        for containers in tmp_path.glob("*/containers"):
            for entry in containers.iterdir():
                if os.path.ismount(entry / "netns"):
                    subprocess.run(["umount", str(entry / "netns")], check=True)
        remove_netns(pin)


@pytest.fixture
def outside(bridge: network.Bridge, tmp_path: Path) -> Iterator[str]:
    """Another namespace made by the test, standing for the world beyond the host: 192.0.2.2/24 on a veth whose
    host end `ikout` has 192.0.2.1/24 (TEST-NET-1, which exists only in these namespaces)."""
    pin = make_netns(tmp_path / "outside")
    try:
        host_exec(bridge.host_netns, "ip", "link", "add", "ikout", "type", "veth", "peer", "name", "eth0", "netns", str(pin))
        host_exec(bridge.host_netns, "ip", "addr", "add", "192.0.2.1/24", "dev", "ikout")
        host_exec(bridge.host_netns, "ip", "link", "set", "ikout", "up")
        host_exec(str(pin), "ip", "addr", "add", "192.0.2.2/24", "dev", "eth0")
        host_exec(str(pin), "ip", "link", "set", "eth0", "up")
        yield pin
    finally:
        subprocess.run(["umount", pin], check=True)


def answer_once(server: socket.socket, body: bytes, peers: list[str]) -> threading.Thread:
    """A started thread that answers one HTTP request on `server` with `body` and records the client's address."""

    def answer() -> None:
        connection, peer = server.accept()
        with connection:
            peers.append(peer[0])
            connection.recv(4096)
            connection.sendall(b"HTTP/1.0 200 OK\r\n\r\n" + body)

    thread = threading.Thread(target=answer)
    thread.start()
    return thread


def http_get(netns: str, address: str, port: int) -> str:
    """The body of GET / from address:port, or the error, from a socket made in the namespace `netns` (the host's
    busybox wget crashes outside a container, and a subprocess would not be quicker)."""

    def get() -> str:
        try:
            with socket.create_connection((address, port), timeout=10) as sock:
                sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
                answer = b"".join(iter(lambda: sock.recv(65536), b""))
        except OSError as err:
            return f"error: {err.strerror or err}"
        return answer.partition(b"\r\n\r\n")[2].decode(errors="replace")

    return within(netns, get)


def links(bridge: network.Bridge) -> list[str]:
    return sorted(link["ifname"] for link in json.loads(host_exec(bridge.host_netns, "ip", "-j", "link", "show")))


def leases(bridge: network.Bridge) -> dict[str, str]:
    """The bridge's leases (shared by every store on its host namespace): address -> container id."""
    path = bridge.state / f"{bridge.name}.json"
    return {address: owner["container_id"] for address, owner in json.loads(path.read_text())["leases"].items()} if path.exists() else {}


def ruleset(bridge: network.Bridge) -> str:
    return host_exec(bridge.host_netns, "nft", "list", "ruleset")


class Container:
    """A container of the test: a fresh overlay over `www`, on the bridge with `endpoint`."""

    def __init__(self, base: Path, lower: Path, endpoint: network.Endpoint) -> None:
        self.box = make_box(base, lower)
        self.endpoint = endpoint

    def spec(self, script: str) -> Spec:
        return Spec(rootfs=self.box.rootfs, argv=("sh", "-c", script), env=ENV, netns=self.endpoint.netns, etc_files=self.endpoint.etc_files, hostname=self.endpoint.container_id[:12])

    def sh(self, script: str) -> tuple[int, str]:
        out = io.BytesIO()
        result = run(self.spec(script), stdout=out, stderr=out)
        return result.status, out.getvalue().decode()

    @contextmanager
    def serving(self, script: str = "httpd -f -p 80 -h /www") -> Iterator[None]:
        """Runs `script` in the background until the block ends (then its shell, PID 1, exits and the server dies)."""
        read, write = os.pipe()
        results: list[Result] = []
        thread = threading.Thread(target=lambda: results.append(run(self.spec(f"{script} & read line; exit 0"), stdin=read)))
        thread.start()
        try:
            yield
        finally:
            os.close(write)
            thread.join()
            os.close(read)
        assert results and results[0].status == 0


def eventually(probe: Callable[[], str], expected: str) -> str:
    """Probes until `expected` is in the answer (a server in a thread needs a moment to listen); the last answer."""
    answer = ""
    for _ in range(100):
        answer = probe()
        if expected in answer:
            return answer
        time.sleep(0.1)
    return answer
