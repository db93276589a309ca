"""Layers: the filesystem changesets of the OCI image-spec, written deterministically and applied safely.

Every layer from a registry is untrusted input; this package is where that is dealt with. Submodules
each own one job: `compression` (codecs; `zstdframes` catches cut zstd streams), `tarformat` (deterministic headers), `changes` (what a layer
holds: a tree, an overlayfs upper directory, a snapshot comparison), `write` (one streaming pass to a
blob), `tarread` (a bounded streaming tar reader), `rootfs` (paths resolved inside a root, and removal),
`overlayfs` (overlayfs' whiteouts and xattr prefix), `apply` (one layer onto a root, or alone in
overlayfs' format) and `unpack` (an image's layers, atomically).

Callers import each name from the submodule that owns it (`from imagekit.layers.unpack import unpack`):
this file imports nothing, so a container start, which needs only `rootfs` and `overlayfs`, does not pay
for the tar and compression modules (isal, zstandard) the others bring.

Imports: stdlib, isal, zstandard, imagekit.errors, digest, oci, image, log. Never layout, registry or cli.
"""
