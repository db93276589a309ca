"""`imagekit build`: Builderfile stages into images, one sandboxed, cached step at a time.

Modules: `options` (what a build is asked to do), `build` (the Builder: stages, steps, the image),
`dispatch` (config-only instructions), `run` (one RUN: command, mounts, sandbox spec), `context` and
`copy` (the build context and COPY/ADD), `cache` (step records), `output` (what the user sees).
`imagekit.build(...)` (in imagekit/__init__.py) is the Python entry point.

Imports: builderfile, and imagekit below the CLI; never imagekit.registry (pulls are injected).
"""
