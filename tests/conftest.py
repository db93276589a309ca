"""Suite-wide rule: the tests never touch the machine's own network.

`imagekit run` puts containers on the bridge by default, so every session (each xdist worker) runs in a
network namespace of its own: IMAGEKIT_HOST_NETNS names it for the CLI in subprocesses and for Runtime in
process, and the bridge, NAT rules and proxies of every container land there. Tests that look at the bridge
make their own namespace and set it over this one. The guards fail loudly if a test still changes a link, an
nftables chain or the bridge state (network.state_dir) of the machine's own namespace: per test for links and
state (cheap), per session for nftables.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from imagekit.runtime.container import HOST_NETNS_ENV
from tests.netns import machine_network, make_netns, remove_netns


@pytest.fixture(scope="session", autouse=True)
def session_host_netns(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The session's "host" network namespace, in IMAGEKIT_HOST_NETNS; the machine's network is unchanged at the end."""
    before = machine_network()
    pin = make_netns(tmp_path_factory.mktemp("hostns") / "netns")
    patch = pytest.MonkeyPatch()
    patch.setenv(HOST_NETNS_ENV, pin)
    try:
        yield pin
    finally:
        patch.undo()
        remove_netns(pin)
    after = machine_network()
    assert after == before, f"the tests changed the machine's own network: before {before}, after {after}"


@pytest.fixture(autouse=True)
def machine_network_untouched() -> Iterator[None]:
    """Fails the test that changed a link or the bridge state of the machine's own namespace."""
    before = machine_network(nft=False)
    yield
    after = machine_network(nft=False)
    assert after == before, f"this test changed the machine's own network: before {before}, after {after}"
