"""What one `imagekit build` is asked to do, as a value: the CLI and `imagekit.build()` both fill it in.

Imports: stdlib, imagekit.errors, imagekit.sandbox (the isolation and network words).
"""

from __future__ import annotations

from pathlib import Path

from imagekit.sandbox.spec import Isolation, Network
from imagekit.values import field, value

#: Builderfile names looked for in the context, in this order, when `-f` is not given.
DEFAULT_FILES = ("Builderfile", "Dockerfile", "Containerfile")
FORMATS = ("oci", "docker")


@value
class Secret:
    """`--secret id=ID,src=PATH`: a host file a RUN may mount with `--mount=type=secret,id=ID`."""

    id: str
    source: Path


@value
class BuildOptions:
    """Everything about a build except where the store is. `context` None is `imagekit build -`
    (a Builderfile on stdin, `builderfile_text`, and no context)."""

    context: Path | None
    builderfile: Path | None = None
    builderfile_text: bytes | None = None
    tags: tuple[str, ...] = ()
    build_args: dict[str, str] = field(default_factory=dict)
    target: str = ""
    no_cache: bool = False
    pull: bool = False
    network: Network = "host"
    isolation: Isolation = "namespaces"
    compression: str = "gzip"
    labels: dict[str, str] = field(default_factory=dict)
    platform: str = ""
    format: str = "oci"
    secrets: tuple[Secret, ...] = ()
    quiet: bool = False
