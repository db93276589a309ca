"""builderfile: a pure-Python parser for Dockerfile syntax, compatible with BuildKit's `dockerfile:1` frontend.

Standalone: stdlib only, never imports imagekit.
"""
