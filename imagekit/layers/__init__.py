"""Layers: the filesystem changesets of the OCI image-spec, written deterministically and applied safely.

Every layer from a registry is untrusted input; this package is where that is dealt with. Submodules
each own one job: `compression` (codecs; `zstdframes` catches cut zstd streams), `tarformat` (deterministic headers), `changes` (what a layer
holds: a tree, an overlayfs upper directory, a snapshot comparison), `write` (one streaming pass to a
blob), `tarread` (a bounded streaming tar reader), `rootfs` (paths resolved inside a root), `apply`
(one layer onto a root, or alone in overlayfs' format) and `unpack` (an image's layers, atomically). The names below are the API.

Imports: stdlib, isal, zstandard, imagekit.errors, digest, oci, image. Never layout, registry or cli.
"""

from imagekit.layers.apply import ApplyReport, Limits, apply_layer, parse_size
from imagekit.layers.changes import overlay_upper, snapshot_diff, tree
from imagekit.layers.rootfs import Root
from imagekit.layers.unpack import apply_layers, check_usable, unpack
from imagekit.layers.write import WrittenLayer, write_layer

__all__ = [
    "ApplyReport",
    "Limits",
    "Root",
    "WrittenLayer",
    "apply_layer",
    "apply_layers",
    "check_usable",
    "overlay_upper",
    "parse_size",
    "snapshot_diff",
    "tree",
    "unpack",
    "write_layer",
]
