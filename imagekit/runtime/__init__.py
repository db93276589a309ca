"""Running images as containers (issue 10): images become sandboxed processes with limits, volumes,
networks and a record.

    options.py    RunOptions, VolumeSpec and the parsers of docker's flag syntax (-v, --mount, --memory...)
    process.py    docker's rules for argv (Entrypoint + Cmd), env, user, cwd, capabilities, stop signal
    state.py      Container records under ROOT/containers/<id>/, names, finding, noticing lost supervisors
    volumes.py    named and anonymous volumes under ROOT/volumes/<name>/_data
    container.py  Runtime: create, start (foreground or supervised), stop, kill, wait, remove
    handle.py     ContainerHandle: what imagekit.run() returns (wait, logs, stop, remove)
    network.py    the bridge `imagekit0` (the default network), one pinned network namespace, veth and leased
                  address per container; its leases shared by every store (/run/imagekit/networks)
    nat.py        masquerading and DNAT rules, nftables or iptables
    ports.py      -p/-P parsing, published ports (DNAT and the userland proxy), `port` output

`imagekit run` and imagekit.run() put containers on the bridge unless asked for host or none; only they and
`ps` import the network modules.

Imports: see each module (imagekit.runtime may use errors, fsutil, sandbox, store, snapshots, config, layers,
users, image, platforms).
"""
