"""The copy fallback, for where overlayfs is unavailable: changesets applied straight onto directories.

Everything here goes through the layer machinery, so its rules hold exactly as for a layer from a
registry: a changeset (imagekit.layers.changes: an extracted layer dir read as overlay_upper, or a
snapshot_diff) is written as an uncompressed tar into a pipe by one thread and applied by
imagekit.layers.apply_layer from the other end. So a merged root is built with the same whiteout
semantics as `unpack`, and a layer dir is made in the same overlay format as an extraction, with no
second copy of the tree-walking or whiteout code.

Imports: stdlib, imagekit.errors, digest, oci, imagekit.layers.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

from imagekit.digest import CHUNK
from imagekit.errors import ImagekitError
from imagekit.layers.apply import Whiteouts, apply_layer
from imagekit.layers.changes import overlay_upper
from imagekit.layers.rootfs import Root
from imagekit.layers.tarformat import Member
from imagekit.layers.write import write_layer
from imagekit.oci import OCI_LAYER


def merge(lowers: Sequence[Path], dest: Path) -> None:
    """Makes the new directory `dest` the tree overlayfs would show for `lowers` (extracted layer
    dirs, topmost first), applying them bottom first with whiteouts deleting."""
    dest.mkdir(mode=0o755)
    os.chmod(dest, 0o755)
    with Root(dest) as root:
        for number, lower in enumerate(reversed(lowers), 1):
            apply_changes(overlay_upper(lower), root, "delete", f"lower {number}/{len(lowers)} ({lower.name[:12]})")


def apply_changes(changes: Iterable[Member], root: Root, whiteouts: Whiteouts, what: str) -> None:
    """Applies a changeset onto `root` as apply_layer applies a layer (whiteouts as `whiteouts` says).

    Errors of either side are raised as they are; a source error (unreadable, vanished) wins over
    the truncated tar it causes on the applying side.
    """
    read_fd, write_fd = os.pipe()
    failures: list[BaseException] = []

    def produce() -> None:
        try:
            with open(write_fd, "wb") as sink:
                write_layer(changes, sink, "none")
        except BaseException as err:  # handed over: the applying thread raises it
            failures.append(err)

    writer = threading.Thread(target=produce, name="imagekit-changes-writer", daemon=True)
    writer.start()
    try:
        with open(read_fd, "rb") as source:  # closing it unblocks a writer stuck on a full pipe (EPIPE)
            apply_layer(source, OCI_LAYER, root, what=what, whiteouts=whiteouts)
            while source.read(CHUNK):
                pass
    except ImagekitError:
        writer.join()
        if failures and isinstance(failures[0], ImagekitError):
            raise failures[0] from None
        raise
    writer.join()
    if failures:
        raise failures[0]
