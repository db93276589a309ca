"""Running images as containers (issue 10): the container network part.

    network.py  the bridge `imagekit0`, one pinned network namespace, veth and leased address per container
    nat.py      masquerading and DNAT rules, nftables or iptables
    ports.py    -p/-P parsing, published ports (DNAT and the userland proxy), `port` output

Imports: see each module (imagekit.runtime may use errors, fsutil, sandbox, store, snapshots, config, layers).
"""
