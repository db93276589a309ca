"""Talking to registries: the OCI distribution spec v1.1 and Docker Registry HTTP API v2, over requests.

A sibling of imagekit.layout: both trade in imagekit.image.Image, and only the CLI wires them together.
Must not import imagekit.layout, imagekit.store, build or runtime.
"""
