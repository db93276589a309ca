"""The netlink requests the bridge makes for every container, without starting a program for them.

`add_veth` is `ip link add NAME master BRIDGE up type veth peer name eth0 netns PIN` in one request (the kernel
undoes it all when a part fails); `configure` sets the container's side as `ip -n PIN` would (lo up, the
address, the default route); `delete_link` is `ip link del NAME` (RTM_DELLINK); `nft_table_exists` is what
`nft list table ip NAME` would tell (NFT_MSG_GETTABLE). Each runs on a socket made in the namespace
(imagekit.runtime.netns.within) and reads the kernel's acknowledgement back: a program's start-up (iproute2's,
nftables' larger one) costs more than the kernel's work. The bridge itself (once) and NAT rules stay with `ip`
and `nft`, whose messages are many.

Imports: stdlib, imagekit.errors, imagekit.runtime.netns.
"""

from __future__ import annotations

import errno
import os
import socket
import struct

from imagekit.errors import NetworkError
from imagekit.runtime.netns import within

NETLINK_NETFILTER = 12
_HEADER = struct.Struct("=IHHII")  # struct nlmsghdr: length, type, flags, sequence, port
_IFINFO = struct.Struct("=BxHiII")  # struct ifinfomsg: family, type, index, flags, change
_REQUEST_ACK = 0x1 | 0x4  # NLM_F_REQUEST | NLM_F_ACK
_CREATE = 0x400 | 0x200  # NLM_F_CREATE | NLM_F_EXCL
_ERROR = 2  # NLMSG_ERROR: an acknowledgement (error 0) or a failure (-errno)
_RTM_NEWLINK, _RTM_DELLINK, _RTM_NEWADDR, _RTM_NEWROUTE = 16, 17, 20, 24
_IFF_UP = 0x1
_IFLA_IFNAME, _IFLA_MASTER, _IFLA_LINKINFO, _IFLA_NET_NS_FD = 3, 10, 18, 28
_IFLA_INFO_KIND, _IFLA_INFO_DATA, _VETH_INFO_PEER = 1, 2, 1
_IFA_ADDRESS, _IFA_LOCAL = 1, 2
_RTA_GATEWAY = 5
_RT_TABLE_MAIN, _RTPROT_BOOT, _RT_SCOPE_UNIVERSE, _RTN_UNICAST = 254, 3, 0, 1
_LOOPBACK_INDEX = 1  # lo is the first link of every network namespace
_NFT_MSG_GETTABLE = (10 << 8) | 1  # NFNL_SUBSYS_NFTABLES, NFT_MSG_GETTABLE
_NFTA_TABLE_NAME = 1


def add_veth(netns: str, name: str, master: str, peer: str, peer_netns: str) -> None:
    """A veth pair: `name` in `netns` on the bridge `master`, up, and `peer` in the namespace pinned at `peer_netns`
    (down: a veth cannot come up before its peer exists; configure() sets it up)."""
    index = within(netns, lambda: socket.if_nametoindex(master))
    target = os.open(peer_netns, os.O_RDONLY | os.O_CLOEXEC)
    try:
        inside = _IFINFO.pack(socket.AF_UNSPEC, 0, 0, 0, 0) + _string(_IFLA_IFNAME, peer) + _attribute(_IFLA_NET_NS_FD, struct.pack("=i", target))
        info = _string(_IFLA_INFO_KIND, "veth") + _attribute(_IFLA_INFO_DATA, _attribute(_VETH_INFO_PEER, inside))
        request = (_IFINFO.pack(socket.AF_UNSPEC, 0, 0, _IFF_UP, _IFF_UP) + _string(_IFLA_IFNAME, name)
                   + _attribute(_IFLA_MASTER, struct.pack("=I", index)) + _attribute(_IFLA_LINKINFO, info))
        with _socket(netns, socket.NETLINK_ROUTE) as sock:
            _check(_ask(sock, _RTM_NEWLINK, _CREATE, request), f"cannot add the veth {name} on {master}")
    finally:
        os.close(target)


def configure(netns: str, device: str, address: str, prefixlen: int, gateway: str) -> None:
    """In `netns`: lo and `device` up, `address`/`prefixlen` on `device`, the default route through `gateway`."""
    index = within(netns, lambda: socket.if_nametoindex(device))
    with _socket(netns, socket.NETLINK_ROUTE) as sock:
        for link, name in ((_LOOPBACK_INDEX, "lo"), (index, device)):
            _check(_ask(sock, _RTM_NEWLINK, 0, _IFINFO.pack(socket.AF_UNSPEC, 0, link, _IFF_UP, _IFF_UP)), f"cannot set {name} up")
        local = socket.inet_aton(address)
        ifaddrmsg = struct.pack("=BBBBI", socket.AF_INET, prefixlen, 0, _RT_SCOPE_UNIVERSE, index)
        request = ifaddrmsg + _attribute(_IFA_LOCAL, local) + _attribute(_IFA_ADDRESS, local)
        _check(_ask(sock, _RTM_NEWADDR, _CREATE, request), f"cannot add {address}/{prefixlen} to {device}")
        rtmsg = struct.pack("=BBBBBBBBI", socket.AF_INET, 0, 0, 0, _RT_TABLE_MAIN, _RTPROT_BOOT, _RT_SCOPE_UNIVERSE, _RTN_UNICAST, 0)
        _check(_ask(sock, _RTM_NEWROUTE, _CREATE, rtmsg + _attribute(_RTA_GATEWAY, socket.inet_aton(gateway))), f"cannot route through {gateway}")


def delete_link(netns: str, name: str) -> bool:
    """Deletes the link `name` of `netns` (a veth takes its peer along); False when there is none."""
    with _socket(netns, socket.NETLINK_ROUTE) as sock:
        failure = _ask(sock, _RTM_DELLINK, 0, _IFINFO.pack(socket.AF_UNSPEC, 0, 0, 0, 0) + _string(_IFLA_IFNAME, name))
    if failure == errno.ENODEV:
        return False
    _check(failure, f"cannot delete the link {name}")
    return True


def nft_table_exists(netns: str, name: str) -> bool:
    """Whether `netns` has the nftables table `ip` `name`."""
    nfgenmsg = struct.pack("=BBH", socket.AF_INET, 0, 0)  # nft's family ip, version 0, resource 0
    with _socket(netns, NETLINK_NETFILTER) as sock:
        failure = _ask(sock, _NFT_MSG_GETTABLE, 0, nfgenmsg + _string(_NFTA_TABLE_NAME, name))
    if failure != errno.ENOENT:
        _check(failure, f"cannot look for the nftables table ip {name}")
    return not failure


def _attribute(kind: int, value: bytes) -> bytes:
    """A netlink attribute (nested ones are attributes too), padded to 4 bytes."""
    return struct.pack("=HH", 4 + len(value), kind) + value + b"\0" * (-len(value) % 4)


def _string(kind: int, text: str) -> bytes:
    return _attribute(kind, text.encode() + b"\0")


def _socket(netns: str, protocol: int) -> socket.socket:
    """A netlink socket of `netns` (it keeps that namespace whichever thread uses it)."""
    try:
        return within(netns, lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, protocol))
    except OSError as err:
        raise NetworkError(f"netlink: {err.strerror}") from err


def _ask(sock: socket.socket, kind: int, flags: int, payload: bytes) -> int:
    """Sends one request asking for an acknowledgement and returns its errno (0: done), skipping any reply before it."""
    try:
        sock.sendall(_HEADER.pack(_HEADER.size + len(payload), kind, _REQUEST_ACK | flags, 1, 0) + payload)
        while True:
            data = sock.recv(65536)
            if not data:
                raise NetworkError("netlink: the kernel sent no acknowledgement")
            offset = 0
            while offset + _HEADER.size <= len(data):
                length, message, _, _, _ = _HEADER.unpack_from(data, offset)
                if message == _ERROR:
                    return -struct.unpack_from("=i", data, offset + _HEADER.size)[0]
                offset += max((length + 3) & ~3, _HEADER.size)
    except OSError as err:
        raise NetworkError(f"netlink: {err.strerror}") from err


def _check(failure: int, what: str) -> None:
    if failure:
        raise NetworkError(f"{what}: {os.strerror(failure)}")
