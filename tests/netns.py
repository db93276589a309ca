"""Network namespaces the tests make, and what the machine's own network looks like.

`make_netns(pin)` pins a new network namespace (lo up) on a file of the test; the bridge, NAT rules and proxies
of the containers a test runs live there (IMAGEKIT_HOST_NETNS), never on the machine's network.
`remove_netns(pin)` drops the pin and the bridge state keyed by that namespace (network.state_dir).
`machine_network()` is what the suite's guard (tests/conftest.py) compares before and after.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from contextlib import suppress
from pathlib import Path

from imagekit.runtime import network


def make_netns(pin: Path) -> str:
    pin.touch()
    subprocess.run(["unshare", f"--net={pin}", "ip", "link", "set", "lo", "up"], check=True)
    return str(pin)


def remove_netns(pin: Path | str) -> None:
    """Removes the namespace's bridge state (while the pin still names it) and what it leaves empty, then the pin."""
    state = network.state_dir(str(pin))
    shutil.rmtree(state, ignore_errors=True)
    for parent in (state.parent, state.parent.parent):
        with suppress(OSError):  # another session's state is still there
            parent.rmdir()
    subprocess.run(["umount", str(pin)], check=True)


def machine_network(*, nft: bool = True) -> dict[str, object]:
    """The machine's links, its IPv4 forwarding switch, its nftables chains (unless `nft` is False: a subprocess)
    and the state imagekit keeps for its namespace's bridge (network.state_dir: the leases file's modification
    time)."""
    leases = network.state_dir("") / f"{network.BRIDGE}.json"
    seen: dict[str, object] = {"links": sorted(os.listdir("/sys/class/net")),
                               "ip_forward": Path("/proc/sys/net/ipv4/ip_forward").read_text().strip(),
                               "bridge state": leases.stat().st_mtime_ns if leases.exists() else None}
    if nft and shutil.which("nft"):
        done = subprocess.run(["nft", "list", "chains"], capture_output=True, text=True, check=True, env={"PATH": os.environ["PATH"]})
        seen["nft"] = sorted(done.stdout.splitlines())
    return seen
