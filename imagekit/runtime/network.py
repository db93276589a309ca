"""Docker's bridge network without a daemon: the bridge, one address, veth and network namespace per container.

`connect(bridge, id, hostname, supervisor=(pid, start))` wires a container: the bridge `imagekit0` with the
gateway address (made on first use), forwarding and masquerading for the subnet, a network namespace pinned
on ROOT/containers/<id>/netns (Spec.netns joins it), a veth pair (`ik` + a digest of the id on the bridge,
`eth0` in the container), a leased address, `lo` up, the default route through the gateway, and the
container's /etc/hosts, /etc/hostname and /etc/resolv.conf (Spec.etc_files). `release(bridge, id)` undoes
all of it, port rules included; both are idempotent.

One bridge serves every store on the host, so its state is the host network namespace's, not a store's (as
podman keeps /run/containers/networks): STATE_DIR/netns-<inode of the namespace>/<bridge>.json holds the
leases, each naming its owner (store root, container id, supervisor pid and start time), and
<bridge>.lock serializes every change. `cleanup_stale(bridge)` releases what a killed runner of ANY store
left: leases whose supervisor is dead or whose container's directory is gone, then veths and rules that no
lease owns; a live container of another store keeps everything.

Everything on the host side happens in `Bridge.host_netns`: "" is this process's namespace (production);
tests pass a namespace they made, so the machine's own network is never touched. A program's start-up is most
of what a step costs, so a connect and a release run none once the bridge is made (`ip -batch`, once) and NAT's
base (imagekit.runtime.nat: with iptables, one iptables-save per connect): the namespace is made, links looked
up, added, configured and deleted, and sysctls written from this process (imagekit.runtime.netns: a thread that
joined the namespace; imagekit.runtime.netlink). A lease says whether NAT rules may carry its container's id
(it published ports), so a release lists the rules only then, and cleanup_stale scans links and rules only when
some lease or pin is stale.

Imports: stdlib, imagekit.errors, imagekit.digest, imagekit.fsutil, imagekit.sandbox.linux, imagekit.runtime.{nat,netlink,netns,state}.
"""

from __future__ import annotations

import errno
import ipaddress
import json
import os
import re
from collections.abc import Iterable
from pathlib import Path

from imagekit import values
from imagekit.digest import Digest
from imagekit.errors import NetworkError
from imagekit.fsutil import atomic_write, locked
from imagekit.runtime import nat, netlink
from imagekit.runtime.netns import links, pin_new, within
from imagekit.runtime.state import supervisor_alive
from imagekit.sandbox import linux
from imagekit.values import value

BRIDGE = "imagekit0"
#: podman's default: Docker's 172.17.0.0/16 would collide with a Docker daemon on the same host.
DEFAULT_SUBNET = "10.88.0.0/16"
SUBNET_ENV = "IMAGEKIT_BRIDGE_SUBNET"
#: where the bridges' host-wide state lives, one directory per host network namespace (tmpfs: gone at boot, as links are)
STATE_DIR = Path("/run/imagekit/networks")
#: Docker's fallback when the host's resolv.conf names only loopback resolvers, unreachable from a container.
FALLBACK_NAMESERVERS = ("8.8.8.8", "8.8.4.4")
_HOSTNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,252}")


@value
class Bridge:
    """One bridge network as the store at `root` sees it: its links in `host_netns`, its leases in `state`
    (shared by every store whose containers use the bridge of that namespace)."""

    root: Path
    host_netns: str = ""
    name: str = BRIDGE
    subnet: str = DEFAULT_SUBNET
    #: the NAT backend, "nft" or "iptables"; "" picks $IMAGEKIT_NAT, else nft when installed (imagekit.runtime.nat)
    nat: str = ""

    @property
    def rules(self) -> nat.Nat:
        return nat.backend(self.nat, self.host_netns, self.name, self.subnet)

    @property
    def network(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self.subnet)

    @property
    def gateway(self) -> str:
        return str(self.network.network_address + 1)

    @property
    def state(self) -> Path:
        return state_dir(self.host_netns)


@value
class Lease:
    """An address and who holds it: a container of the store at `root`, connected by the supervisor `supervisor`
    (pid) that started at `supervisor_start` (imagekit.runtime.state.process_start). `rules`: NAT rules may carry
    its id (it published ports; a lease written before this was recorded may have them too)."""

    address: str
    container_id: str
    root: str
    supervisor: int
    supervisor_start: int
    rules: bool = True

    def alive(self) -> bool:
        """Its supervisor still runs and its container still exists: only then are its links and rules kept."""
        return supervisor_alive(self.supervisor, self.supervisor_start) and (Path(self.root) / "containers" / self.container_id).is_dir()


@value
class Endpoint:
    """A container on the bridge: `netns` goes to Spec.netns, `etc_files` to Spec.etc_files."""

    container_id: str
    address: str
    gateway: str
    netns: str
    veth: str
    etc_files: tuple[tuple[str, str], ...]


def bridge(root: Path | str, host_netns: str = "") -> Bridge:
    """The default bridge of the store at `root`; its subnet from $IMAGEKIT_BRIDGE_SUBNET, else ROOT/networks/config.json
    ({"subnet": "10.88.0.0/16"}), else DEFAULT_SUBNET. A subnet must leave room for the gateway and one container."""
    root = Path(root)
    subnet = os.environ.get(SUBNET_ENV, "")
    config = root / "networks" / "config.json"
    if not subnet and config.exists():
        try:
            subnet = json.loads(config.read_text()).get("subnet", "")
        except (OSError, ValueError, AttributeError) as err:
            raise NetworkError(f"{config}: not a JSON object with a \"subnet\": {err}") from err
    subnet = subnet or DEFAULT_SUBNET
    try:
        network = ipaddress.IPv4Network(subnet)
    except ValueError as err:
        raise NetworkError(f"bridge subnet {subnet!r} is not an IPv4 network like {DEFAULT_SUBNET}: {err}") from err
    if network.prefixlen > 30:
        raise NetworkError(f"bridge subnet {subnet!r} is too small: it needs a gateway and a container (a /30 at least)")
    return Bridge(root=root, host_netns=host_netns, subnet=str(network))


def state_dir(host_netns: str = "") -> Path:
    """The state of the bridges of the network namespace `host_netns` ("" is this process's): keyed by the
    namespace's inode, so every store on a host shares it and a namespace a test made never does."""
    try:
        inode = os.stat(host_netns or "/proc/self/ns/net").st_ino
    except OSError as err:
        raise NetworkError(f"cannot find the network namespace {host_netns or 'of this process'}: {err.strerror}") from err
    return STATE_DIR / f"netns-{inode}"


def veth_name(container_id: str) -> str:
    """The host-side link of a container: derived from a digest of its id (15 bytes at most), so a crash loses
    nothing and ids that share a prefix get different links."""
    return "ik" + Digest.of_bytes(container_id.encode()).hex[:12]


def netns_path(root: Path, container_id: str) -> Path:
    return root / "containers" / container_id / "netns"


def connect(bridge: Bridge, container_id: str, hostname: str, names: Iterable[str] = (), *, supervisor: tuple[int, int]) -> Endpoint:
    """Puts the container on the bridge and returns its endpoint; again, the same endpoint (the etc files rewritten).
    `supervisor` (pid, start time) is the process that serves it: its lease lives as long as that process.
    On failure nothing is left behind."""
    nat.check_id(container_id)
    names = tuple(names)
    for name in (hostname, *names):
        if not _HOSTNAME.fullmatch(name):
            raise NetworkError(f"{name!r} cannot name a container in /etc/hosts: use letters, digits, '_', '.', '-'")
    with _lock(bridge):
        try:
            return _connect(bridge, container_id, hostname, names, supervisor)
        except BaseException:
            _release(bridge, container_id, bridge.root)
            raise


def release(bridge: Bridge, container_id: str) -> None:
    """Removes the container's port rules, veth, network namespace and lease; what is gone already is skipped."""
    with _lock(bridge):
        _release(bridge, container_id, bridge.root)


def cleanup_stale(bridge: Bridge) -> list[str]:
    """Releases what killed runners left, whatever their store: every lease that is no longer alive (Lease.alive),
    every namespace pinned in this store without a live lease, then every veth on the bridge and NAT rule that no
    live lease owns. Returns the container ids released. Nothing stale, nothing to scan: a veth or rule always has
    a lease until its release removes it (the lease goes last), so `ps` runs no program then."""
    with _lock(bridge):
        leases = _leases(bridge)
        live = {lease.container_id for lease in leases if lease.alive()}
        stale = {lease.container_id: Path(lease.root) for lease in leases if lease.container_id not in live}
        containers = bridge.root / "containers"
        if containers.is_dir():
            for entry in containers.iterdir():
                if entry.name not in live and os.path.ismount(entry / "netns"):
                    stale.setdefault(entry.name, bridge.root)
        if not stale:
            return []
        for container_id, root in stale.items():
            _release(bridge, container_id, root)
        for owner in bridge.rules.owners() - live:
            bridge.rules.delete(owner)
        keep = {veth_name(container_id) for container_id in live}
        for link in _bridge_links(bridge):
            if link not in keep:
                netlink.delete_link(bridge.host_netns, link)
        return sorted(stale)


def hosts_file(address: str, hostname: str, names: Iterable[str] = ()) -> str:
    """Docker's /etc/hosts for a container: loopback and IPv6 names, then its address with its hostname and names."""
    extra = " ".join(name for name in names if name and name != hostname)
    return (
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\n"
        "ff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n"
        f"{address}\t{hostname}{' ' + extra if extra else ''}\n"
    )


def resolv_conf(host: str) -> str:
    """The container's resolv.conf from the host's text: loopback resolvers (systemd-resolved, dnsmasq) cannot be
    reached from the container's namespace and are dropped, as Docker does; none left gives Docker's fallback."""
    lines, servers = [], 0
    for line in host.splitlines():
        words = line.split()
        if words[:1] == ["nameserver"] and len(words) > 1:
            try:
                if ipaddress.ip_address(words[1].split("%")[0]).is_loopback:
                    continue
            except ValueError:
                continue
            servers += 1
        lines.append(line)
    if not servers:
        lines += [f"nameserver {server}" for server in FALLBACK_NAMESERVERS]
    return "\n".join(lines) + "\n"


def _connect(bridge: Bridge, container_id: str, hostname: str, names: tuple[str, ...], supervisor: tuple[int, int]) -> Endpoint:
    address = _lease(bridge, container_id, supervisor)
    pin = netns_path(bridge.root, container_id)
    if not os.path.ismount(pin):
        pin.parent.mkdir(parents=True, exist_ok=True)
        pin.touch()
        pin_new(str(pin))
    veth = veth_name(container_id)
    _ensure_bridge(bridge)
    if "eth0" not in links(str(pin)):
        netlink.add_veth(bridge.host_netns, veth, bridge.name, "eth0", str(pin))
        netlink.configure(str(pin), "eth0", address, bridge.network.prefixlen, bridge.gateway)
    folder = pin.parent
    files = {"hosts": hosts_file(address, hostname, names), "hostname": hostname + "\n", "resolv.conf": resolv_conf(_read_host_resolv())}
    for name, text in files.items():  # not durable, as Runtime's own: every connect writes them again
        (folder / name).write_text(text)
    etc = tuple((str(folder / name), f"/etc/{name}") for name in files)
    return Endpoint(container_id=container_id, address=address, gateway=bridge.gateway, netns=str(pin), veth=veth, etc_files=etc)


def _release(bridge: Bridge, container_id: str, root: Path) -> None:
    """Releases the container of the store at `root` (its netns pin is there)."""
    nat.check_id(container_id)  # it names a path under ROOT/containers
    leases = _leases(bridge)
    if any(lease.container_id == container_id and lease.rules for lease in leases):
        bridge.rules.delete(container_id)
    netlink.delete_link(bridge.host_netns, veth_name(container_id))  # its peer, eth0, goes along
    pin = netns_path(root, container_id)
    try:
        linux.umount2(str(pin), linux.MNT_DETACH)
    except OSError as err:
        if err.errno not in (errno.EINVAL, errno.ENOENT):  # not a mount point (any more), or gone
            raise NetworkError(f"cannot remove the network namespace {pin}: {err.strerror}") from err
    pin.unlink(missing_ok=True)
    if any(lease.container_id == container_id for lease in leases):
        _save_leases(bridge, [lease for lease in leases if lease.container_id != container_id])


def _ensure_bridge(bridge: Bridge) -> None:
    """The bridge with its gateway address, up; forwarding on; the NAT table with masquerading. Idempotent."""

    def look() -> bool:
        Path("/proc/sys/net/ipv4/ip_forward").write_text("1\n")
        return bridge.name in links("")

    if not within(bridge.host_netns, look):
        _ip(bridge, [f"link add {bridge.name} type bridge", f"addr add {bridge.gateway}/{bridge.network.prefixlen} dev {bridge.name}", f"link set {bridge.name} up"])
    bridge.rules.ensure()


def _lease(bridge: Bridge, container_id: str, supervisor: tuple[int, int]) -> str:
    """The container's address: the one it holds (now served by `supervisor`), else the lowest free one after the
    gateway. One bridge has one subnet, whichever store asks: another one is refused while a live lease uses it."""
    subnet, leases = _read(bridge)
    mine = Lease("", container_id, os.path.abspath(bridge.root), *supervisor, rules=False)  # read from any directory
    if subnet != bridge.subnet and any(lease.alive() for lease in leases):
        raise NetworkError(f"{bridge.name} serves {subnet} to running containers, not {bridge.subnet}: every store on this host "
                           f"must use one subnet (${SUBNET_ENV} or ROOT/networks/config.json)")
    for lease in leases:
        if lease.container_id == container_id:
            _save_leases(bridge, [values.replace(mine, address=lease.address, rules=lease.rules) if item is lease else item for item in leases])
            return lease.address
    taken = {lease.address for lease in leases}
    for host in bridge.network.hosts():
        address = str(host)
        if address != bridge.gateway and address not in taken:
            _save_leases(bridge, [*leases, values.replace(mine, address=address)])
            return address
    raise NetworkError(f"no free address left on {bridge.name} ({bridge.subnet}, {len(leases)} containers)")


def _leases(bridge: Bridge) -> list[Lease]:
    return _read(bridge)[1]


def _read(bridge: Bridge) -> tuple[str, list[Lease]]:
    """The subnet the leases were given from and the leases."""
    path = bridge.state / f"{bridge.name}.json"
    if not path.exists():
        return bridge.subnet, []
    try:
        body = json.loads(path.read_text())
        return str(body["subnet"]), [Lease(address=str(address), **owner) for address, owner in body["leases"].items()]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise NetworkError(f"{path}: unreadable leases ({err}); remove it when no container runs") from err


def _save_leases(bridge: Bridge, leases: list[Lease]) -> None:
    ordered = sorted(leases, key=lambda lease: ipaddress.IPv4Address(lease.address))
    owners = {lease.address: {k: v for k, v in values.asdict(lease).items() if k != "address"} for lease in ordered}
    text = json.dumps({"subnet": bridge.subnet, "leases": owners}, indent=2).encode() + b"\n"
    atomic_write(bridge.state / f"{bridge.name}.json", text, mode=0o644, durable=False)  # a reboot ends its links and processes too


def _lock(bridge: Bridge) -> object:
    bridge.state.mkdir(parents=True, exist_ok=True)
    return locked(bridge.state / f"{bridge.name}.lock")


def _read_host_resolv() -> str:
    try:
        return Path("/etc/resolv.conf").read_text()
    except OSError:
        return ""


def _bridge_links(bridge: Bridge) -> list[str]:
    if bridge.name not in links(bridge.host_netns):
        return []
    return [link["ifname"] for link in json.loads(_run(bridge, ["ip", "-j", "link", "show", "master", bridge.name]) or "[]")]


def add_rules(bridge: Bridge, container_id: str, rules: list[nat.Dnat]) -> None:
    """Adds the container's NAT rules (all or none) while it holds a lease, which from then on says it has rules;
    a container released meanwhile (`rm -f`) is a NetworkError, so no rule outlives its lease."""
    with _lock(bridge):
        leases = _leases(bridge)
        mine = [lease for lease in leases if lease.container_id == container_id]
        if not mine:
            raise NetworkError(f"container {container_id} is not on {bridge.name} any more: it was removed")
        if not mine[0].rules:
            _save_leases(bridge, [values.replace(lease, rules=True) if lease is mine[0] else lease for lease in leases])
        bridge.rules.add(container_id, rules)


def delete_rules(bridge: Bridge, container_id: str) -> None:
    """Deletes the container's NAT rules (those commented with its id); release() does it too."""
    with _lock(bridge):
        bridge.rules.delete(container_id)


def _ip(bridge: Bridge, commands: list[str]) -> None:
    _run(bridge, ["ip", "-batch", "-"], "\n".join(commands) + "\n")


def _run(bridge: Bridge, argv: list[str], stdin: str = "") -> str:
    return nat.command(bridge.host_netns, argv, stdin)
