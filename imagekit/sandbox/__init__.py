"""Linux isolation for RUN steps and containers: `run(spec)` and `call(rootfs, fn)`; knows nothing of images.

    spec.py     Rootfs, Mount, Spec, Result: the contract the builder and the runner fill in
    linux.py    ctypes: unshare, the new mount API, pivot_root, prctl, sethostname
    mounts.py   the root (overlayfs with any number of lowers), runc's standard mounts, binds, masks
    process.py  the sandboxed process's set-up between fork and exec
    run.py      run(spec) -> Result: fork, namespaces, status, signals; join(pid, spec): exec into a running one
    streams.py  what may stand for stdin, stdout, stderr; pipes pumped to objects without a fileno
    console.py  Spec.tty: a pty of the container's own devpts, its master relayed to the caller's streams
    call.py     call(rootfs, fn, *args): a Python function over the mounted rootfs, in a private mount namespace

Imports: stdlib and imagekit.errors only (a leaf, see tests/test_dependencies.py).
"""

from imagekit.sandbox.call import call
from imagekit.sandbox.run import join, run
from imagekit.sandbox.spec import Isolation, Mount, Network, Result, Rootfs, Spec

__all__ = ["Isolation", "Mount", "Network", "Result", "Rootfs", "Spec", "call", "join", "run"]
