"""Layers: the filesystem changesets of the OCI image-spec, written deterministically and applied safely.

Every layer from a registry is untrusted input; this package is where that is dealt with.
Submodules each own one job (compression codecs, writing, applying); this file only names the package.

Imports: stdlib, isal, zstandard, imagekit.errors, digest, oci. Never layout, registry or cli.
"""
