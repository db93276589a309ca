"""The two netlink requests the bridge makes on every container, without starting a program for them.

`delete_link(netns, name)` is `ip link del NAME` (RTM_DELLINK); `nft_table_exists(netns, name)` is what
`nft list table ip NAME` would tell (NFT_MSG_GETTABLE). Each is one message on a socket made in the namespace
(imagekit.runtime.netns.within) and one acknowledgement read back: a program's start-up (iproute2's, nftables'
larger one) costs more than the kernel's work. Everything else stays with `ip` and `nft`, whose messages are
many and whose errors read better.

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
_REQUEST_ACK = 0x1 | 0x4  # NLM_F_REQUEST | NLM_F_ACK
_ERROR = 2  # NLMSG_ERROR: an acknowledgement (error 0) or a failure (-errno)
_RTM_DELLINK = 17
_IFLA_IFNAME = 3
_NFT_MSG_GETTABLE = (10 << 8) | 1  # NFNL_SUBSYS_NFTABLES, NFT_MSG_GETTABLE
_NFTA_TABLE_NAME = 1


def delete_link(netns: str, name: str) -> bool:
    """Deletes the link `name` of `netns` (a veth takes its peer along); False when there is none."""
    ifinfomsg = struct.pack("=BxHiII", socket.AF_UNSPEC, 0, 0, 0, 0)
    failure = _request(netns, socket.NETLINK_ROUTE, _RTM_DELLINK, ifinfomsg + _attribute(_IFLA_IFNAME, name))
    if failure == errno.ENODEV:
        return False
    if failure:
        raise NetworkError(f"cannot delete the link {name}: {os.strerror(failure)}")
    return True


def nft_table_exists(netns: str, name: str) -> bool:
    """Whether `netns` has the nftables table `ip` `name`."""
    nfgenmsg = struct.pack("=BBH", socket.AF_INET, 0, 0)  # nft's family ip, version 0, resource 0
    failure = _request(netns, NETLINK_NETFILTER, _NFT_MSG_GETTABLE, nfgenmsg + _attribute(_NFTA_TABLE_NAME, name))
    if failure and failure != errno.ENOENT:
        raise NetworkError(f"cannot look for the nftables table ip {name}: {os.strerror(failure)}")
    return not failure


def _attribute(kind: int, text: str) -> bytes:
    """A netlink attribute holding `text` NUL-terminated, padded to 4 bytes."""
    value = text.encode() + b"\0"
    return struct.pack("=HH", 4 + len(value), kind) + value + b"\0" * (-len(value) % 4)


def _request(netns: str, protocol: int, kind: int, payload: bytes) -> int:
    """Sends one request asking for an acknowledgement and returns its errno (0: done), skipping any reply
    before it; on a socket of `netns`."""

    def ask() -> int:
        with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, protocol) as sock:
            sock.sendall(_HEADER.pack(_HEADER.size + len(payload), kind, _REQUEST_ACK, 1, 0) + payload)
            while True:
                data = sock.recv(65536)
                offset = 0
                while offset + _HEADER.size <= len(data):
                    length, message, _, _, _ = _HEADER.unpack_from(data, offset)
                    if message == _ERROR:
                        return -struct.unpack_from("=i", data, offset + _HEADER.size)[0]
                    offset += max((length + 3) & ~3, _HEADER.size)

    try:
        return within(netns, ask)
    except OSError as err:
        raise NetworkError(f"netlink: {err.strerror}") from err
