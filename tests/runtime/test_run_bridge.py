"""`imagekit run` on the bridge (the default) with -p/-P, `port`, ps's PORTS and inspect's NetworkSettings, for real
through the CLI: the bridge, NAT rules and proxies live in a network namespace each test makes (IMAGEKIT_HOST_NETNS),
and what a container added (veth, lease, rules, proxy, netns pin) is gone after --rm, rm -f, and a SIGKILLed
supervisor followed by ps. Two stores share the bridge: distinct addresses, and one's `ps` cleans only the dead."""

from __future__ import annotations

import json
import os
import shutil
import signal
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from imagekit.runtime.container import HOST_NETNS_ENV
from imagekit.runtime.network import state_dir, veth_name
from tests.netns import make_netns, remove_netns
from tests.runtime.conftest import Run, inspect, ok, one_line_error, run_cli, wait_for
from tests.runtime.netfixtures import eventually, host_exec, http_get

PAGE = "hello from the bridge\n"


@pytest.fixture
def web_tar(runtime_tar: Path, tmp_path: Path) -> Path:
    """busybox with /www/index.html, to import as `web:latest`."""
    tar = tmp_path / "web.tar"
    shutil.copy(runtime_tar, tar)
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "index.html").write_text(PAGE)
    with tarfile.open(tar, "a") as archive:
        archive.add(tmp_path / "www", arcname="./www")
    return tar


def import_web(store: Path, tar: Path) -> None:
    """`web:latest` in `store`: CMD httpd on port 80, EXPOSE 80."""
    ok(run_cli(store, "import", "-c", 'CMD ["httpd", "-f", "-p", "80", "-h", "/www"]', "-c", "EXPOSE 80", str(tar), "web:latest"))


def remove_all(store: Path) -> None:
    leftover = run_cli(store, "ps", "-aq", "--no-trunc").stdout.split()
    if leftover:
        run_cli(store, "rm", "-f", *leftover)


@pytest.fixture
def hostns(root: Path, web_tar: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The test's "host" network namespace (lo up), named by IMAGEKIT_HOST_NETNS for every CLI call; the store
    gets `web:latest` (import_web). Request it before `ik`."""
    import_web(root, web_tar)
    pin = make_netns(tmp_path / "hostns")
    monkeypatch.setenv(HOST_NETNS_ENV, pin)
    try:
        yield pin
    finally:
        remove_all(root)
        remove_netns(pin)


def traces(root: Path, hostns: str, container_id: str) -> list[str]:
    """What the container still has on the bridge: its veth, leases, rules, a pinned namespace."""
    found = []
    if veth_name(container_id) in [link["ifname"] for link in json.loads(host_exec(hostns, "ip", "-j", "link", "show"))]:
        found.append(f"veth {veth_name(container_id)}")
    if container_id in host_exec(hostns, "nft", "list", "ruleset"):
        found.append("nft rule")
    leases = state_dir(hostns) / "imagekit0.json"
    if leases.exists() and container_id in leases.read_text():
        found.append("lease")
    if os.path.ismount(root / "containers" / container_id / "netns"):
        found.append("netns pin")
    return found


def get(hostns: str, address: str, port: int) -> str:
    return eventually(lambda: http_get(hostns, address, port), PAGE)


def test_a_published_port_serves_httpd_and_rm_f_removes_everything(hostns: str, ik: Run, root: Path) -> None:
    cid = ok(ik("run", "-d", "--name", "web", "-p", "8080:80", "web")).strip()  # the bridge is the default
    assert get(hostns, "127.0.0.1", 8080) == PAGE
    details = inspect(ik, "web")
    address = details["NetworkSettings"]["IPAddress"]
    assert address.startswith("10.88.")
    assert details["NetworkSettings"]["Ports"] == {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]}
    assert details["HostConfig"]["NetworkMode"] == "bridge"
    assert get(hostns, address, 80) == PAGE
    assert ok(ik("exec", "web", "wget", "-qO-", "http://127.0.0.1/")) == PAGE  # exec joins its network namespace
    assert ok(ik("port", "web")) == "80/tcp -> 0.0.0.0:8080\n"
    assert ok(ik("port", "web", "80/tcp")) == "0.0.0.0:8080\n"
    assert one_line_error(ik("port", "web", "81")) == "imagekit: no public port '81/tcp' published for web"
    assert "0.0.0.0:8080->80/tcp" in ok(ik("ps")).splitlines()[1]
    assert len(traces(root, hostns, cid)) == 4  # veth, rule, lease, pin: what must go
    ok(ik("rm", "-f", "web"))
    assert traces(root, hostns, cid) == []
    assert http_get(hostns, "127.0.0.1", 8080).startswith("error")


def test_publish_all_takes_a_free_port_for_each_exposed_one(hostns: str, ik: Run) -> None:
    ok(ik("run", "-d", "--name", "web", "--network", "bridge", "-P", "web"))
    (line,) = ok(ik("port", "web")).splitlines()
    assert line.startswith("80/tcp -> 0.0.0.0:")
    assert get(hostns, "127.0.0.1", int(line.rsplit(":", 1)[1])) == PAGE


def test_two_bridge_containers_reach_each_other_and_rm_leaves_nothing(hostns: str, ik: Run, root: Path) -> None:
    server = ok(ik("run", "-d", "--name", "server", "--network", "bridge", "web")).strip()
    address = inspect(ik, "server")["NetworkSettings"]["IPAddress"]
    fetched = ik("run", "--rm", "--name", "client", "--network", "bridge", "web", "sh", "-c",
                 f"for i in 1 2 3 4 5 6 7 8 9 10; do wget -qO- http://{address}/ && exit 0; sleep 0.2; done; exit 1")
    assert ok(fetched) == PAGE
    assert ok(ik("ps", "-aq", "--no-trunc")).split() == [server]
    leases = json.loads((state_dir(hostns) / "imagekit0.json").read_text())["leases"]
    assert [lease["container_id"] for lease in leases.values()] == [server]  # the --rm client's lease went with it, as did its veth:
    assert sorted(traces(root, hostns, server)) == ["lease", "netns pin", "veth " + veth_name(server)]
    ok(ik("rm", "-f", "server"))
    assert traces(root, hostns, server) == []


def test_a_killed_supervisor_leaves_nothing_after_ps(hostns: str, ik: Run, root: Path) -> None:
    cid = ok(ik("run", "-d", "--name", "web", "--network", "bridge", "-p", "8080:80", "web")).strip()
    assert get(hostns, "127.0.0.1", 8080) == PAGE
    assert len(traces(root, hostns, cid)) == 4
    record = json.loads((root / "containers" / cid / "config.json").read_text())
    os.kill(record["supervisor"], signal.SIGKILL)
    wait_for(lambda: not os.path.exists(f"/proc/{record['supervisor']}"))
    listing = ok(ik("ps", "-a"))
    assert "Exited (255)" in listing and "8080" not in listing
    assert traces(root, hostns, cid) == []
    assert http_get(hostns, "127.0.0.1", 8080).startswith("error")


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--network", "bridge", "-p", "8080:http"], "imagekit: invalid containerPort: http (in '8080:http')"),
        (["--network", "bridge", "-p", "80/sctp"], "imagekit: invalid proto: sctp (imagekit publishes tcp and udp)"),
        (["-p", "70000:80"], "imagekit: invalid hostPort: 70000 (in '70000:80')"),  # on the default network: the bridge
    ],
)
def test_a_malformed_publish_is_one_line_exit_125_and_leaves_nothing(hostns: str, ik: Run, root: Path, flags: list[str], message: str) -> None:
    result = ik("run", "--rm", *flags, "web", "true")
    assert one_line_error(result) == message
    assert result.returncode == 125
    assert ok(ik("ps", "-aq")) == ""
    assert not state_dir(hostns).exists()
    assert [link for link in json.loads(host_exec(hostns, "ip", "-j", "link", "show")) if link["ifname"] != "lo"] == []


def test_stop_releases_the_bridge_and_start_connects_again(hostns: str, ik: Run, root: Path) -> None:
    cid = ok(ik("run", "-d", "--name", "web", "--network", "bridge", "-p", "8080:80", "web")).strip()
    assert get(hostns, "127.0.0.1", 8080) == PAGE
    ok(ik("stop", "-t", "1", "web"))
    assert traces(root, hostns, cid) == []
    assert inspect(ik, "web")["NetworkSettings"] == {"IPAddress": "", "Ports": {}}
    ok(ik("start", "web"))
    assert get(hostns, "127.0.0.1", 8080) == PAGE
    assert ok(ik("port", "web")) == "80/tcp -> 0.0.0.0:8080\n"


def test_a_host_port_in_use_fails_the_second_container_and_leaves_nothing_of_it(hostns: str, ik: Run, root: Path) -> None:
    ok(ik("run", "-d", "--name", "first", "--network", "bridge", "-p", "8080:80", "web"))
    result = ik("run", "-d", "--name", "second", "--network", "bridge", "-p", "8080:80", "web")
    assert one_line_error(result) == "imagekit: Bind for 0.0.0.0:8080 failed: port is already allocated"
    assert result.returncode == 125
    second = inspect(ik, "second")
    assert (second["State"]["Status"], second["State"]["ExitCode"]) == ("exited", 125)
    assert traces(root, hostns, second["Id"]) == []
    assert get(hostns, "127.0.0.1", 8080) == PAGE  # the first one still serves


def test_the_python_api_publishes_too(hostns: str, root: Path) -> None:
    import imagekit
    from imagekit.runtime.ports import parse_publish

    handle = imagekit.run("web", root=root, name="api", publish=tuple(parse_publish("127.0.0.1:8081:80")))
    assert get(hostns, "127.0.0.1", 8081) == PAGE
    assert handle.reload().ports == ({"container_port": 80, "proto": "tcp", "host_ip": "127.0.0.1", "host_port": 8081},)
    handle.remove(force=True)
    assert traces(root, hostns, handle.id) == []


@pytest.mark.parametrize("mode", ["host", "none"])
def test_published_ports_off_the_bridge_are_discarded_with_dockers_warning(hostns: str, ik: Run, mode: str) -> None:
    result = ik("run", "--name", "off", "--network", mode, "-p", "8080:80", "-P", "web", "true")
    assert (result.returncode, result.stderr) == (0, f"WARNING: Published ports are discarded when using {mode} network mode\n")
    assert inspect(ik, "off")["NetworkSettings"] == {"IPAddress": "", "Ports": {}}
    assert [link["ifname"] for link in json.loads(host_exec(hostns, "ip", "-j", "link", "show"))] == ["lo"]


def test_two_stores_share_the_bridge_and_ps_cleans_only_what_died(hostns: str, ik: Run, root: Path, web_tar: Path, tmp_path: Path) -> None:
    other = tmp_path / "other-store"
    import_web(other, web_tar)
    try:
        mine = ok(ik("run", "-d", "--name", "mine", "-p", "8080:80", "web")).strip()
        theirs = ok(run_cli(other, "run", "-d", "--name", "theirs", "-p", "8081:80", "web")).strip()
        doomed = ok(run_cli(other, "run", "-d", "--name", "doomed", "-p", "8082:80", "web")).strip()
        addresses = [json.loads(ok(run_cli(store, "container", "inspect", name)))[0]["NetworkSettings"]["IPAddress"]
                     for store, name in ((root, "mine"), (other, "theirs"), (other, "doomed"))]
        assert len(set(addresses)) == 3  # one lease table for the bridge, whichever store asks
        reach = f"for i in 1 2 3 4 5 6 7 8 9 10; do wget -qO- http://{addresses[1]}/ && exit 0; sleep 0.2; done; exit 1"
        assert ok(ik("exec", "mine", "sh", "-c", reach)) == PAGE  # across stores, by address
        record = json.loads((other / "containers" / doomed / "config.json").read_text())
        os.kill(record["supervisor"], signal.SIGKILL)
        wait_for(lambda: not os.path.exists(f"/proc/{record['supervisor']}"))
        ok(ik("ps"))  # this store's ps cleans what the other store's dead runner left...
        assert traces(other, hostns, doomed) == []
        assert http_get(hostns, "127.0.0.1", 8082).startswith("error")
        for store, container_id, port in ((other, theirs, 8081), (root, mine, 8080)):  # ...and nothing of a live container
            assert sorted(traces(store, hostns, container_id)) == ["lease", "netns pin", "nft rule", f"veth {veth_name(container_id)}"]
            assert get(hostns, "127.0.0.1", port) == PAGE
        assert ok(ik("exec", "mine", "sh", "-c", reach)) == PAGE
    finally:
        remove_all(other)
