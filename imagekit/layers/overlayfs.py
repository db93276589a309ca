"""overlayfs' own markers on disk: which xattr prefix its opaque flags use here, and what a whiteout is.

Apart from the layer code because a container start needs them (the overlay mount's options, the
overlay probe) and must not pay for the tar, compression and apply machinery it does not run.

Imports: stdlib only.
"""

from __future__ import annotations

import os
import stat
from functools import cache


@cache
def overlay_xattr_prefix() -> str:
    """`trusted.overlay.` for real root (not in a user namespace), else `user.overlay.` (mount with userxattr).

    trusted.* xattrs need CAP_SYS_ADMIN in the initial user namespace; overlayfs reads the user.*
    ones instead when mounted with `userxattr`, as rootless runtimes mount it.
    """
    if os.geteuid() != 0:
        return "user.overlay."
    try:
        with open("/proc/self/uid_map") as maps:
            initial = maps.read().split() == ["0", "0", "4294967295"]
    except OSError:
        initial = False
    return "trusted.overlay." if initial else "user.overlay."


def is_whiteout(st: os.stat_result) -> bool:
    """Whether `st` is overlayfs' whiteout: a character device numbered 0/0."""
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
