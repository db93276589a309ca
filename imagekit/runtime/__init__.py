"""Containers of `imagekit run`: images become sandboxed processes with limits, volumes and a record.

    options.py    RunOptions, VolumeSpec and the parsers of docker's flag syntax (-v, --mount, --memory...)
    process.py    docker's rules for argv (Entrypoint + Cmd), env, user, cwd, capabilities, stop signal
    state.py      Container records under ROOT/containers/<id>/, names, finding, noticing lost supervisors
    volumes.py    named and anonymous volumes under ROOT/volumes/<name>/_data
    container.py  Runtime: create, start (foreground or supervised), stop, kill, wait, remove
    handle.py     ContainerHandle: what imagekit.run() returns (wait, logs, stop, remove)

Not yet here: networks other than host and none (bridge, veth, -p), stats.

Imports: stdlib, imagekit.errors, config, image, fsutil, snapshots, sandbox, store, users.
"""
