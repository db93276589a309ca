"""Snapshots: each layer extracted once per diff_id and shared by builds and containers, in containerd's
Snapshotter shape (extract, prepare, commit, adopt, remove, usage, gc), daemonless.

A layer is extracted alone, in overlayfs' format (whiteouts as 0/0 character devices, opaque
directories as an xattr), and verified against its diff_id; `prepare` stacks such layer dirs under a
writable upper dir as a sandbox Rootfs; `commit` reads the changes the sandbox left; `adopt` makes the
upper dir the extracted layer of the diff_id the caller wrote, so the next step stands on it without
extracting anything. Where overlayfs cannot be mounted, a copy of the merged tree stands in, and the
changes are the difference of two copies. Submodules: `snapshotter` (the Snapshots class and the
state on disk), `overlay` (the probe and the mount options), `copy` (the fallback's merging and
applying), `stubs` (mount stubs and their traces out of a snapshot before commit).

Imports: stdlib, imagekit.errors, digest, image, oci, layers, store, sandbox (the Rootfs value only).
Never registry, build, runtime or cli.
"""

from imagekit.snapshots.overlay import mount_options
from imagekit.snapshots.snapshotter import Snapshots, Usage

__all__ = ["Snapshots", "Usage", "mount_options"]
