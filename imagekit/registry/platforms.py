"""Choosing one image from an index by platform, normalised as containerd/platforms does.

`aarch64` is `arm64` and `arm64/v8` is plain `arm64`; `x86_64` is `amd64`; `arm` without a variant
is `arm/v7`, `armhf` is `arm/v7`, `armel` is `arm/v6`; `i386` is `386`. Entries whose platform is
`unknown/unknown` (BuildKit's attestation manifests) are never chosen.

Must not import imagekit.layout or imagekit.store.
"""

from __future__ import annotations

import platform as host_platform
from collections.abc import Sequence

from imagekit.errors import ImagekitError
from imagekit.oci import Descriptor, Platform


class PlatformNotFound(ImagekitError):
    """An index has no image for the wanted platform."""


def normalize(os: str, architecture: str, variant: str = "") -> tuple[str, str, str]:
    """(os, architecture, variant) in containerd's canonical spelling."""
    os, architecture, variant = os.lower(), architecture.lower(), variant.lower()
    if architecture in ("x86_64", "x86-64", "amd64"):
        architecture = "amd64"
        variant = "" if variant == "v1" else variant
    elif architecture in ("aarch64", "arm64"):
        architecture = "arm64"
        variant = "" if variant in ("8", "v8", "v8.0") else variant
    elif architecture == "armhf":
        architecture, variant = "arm", "v7"
    elif architecture == "armel":
        architecture, variant = "arm", "v6"
    elif architecture == "arm":
        variant = {"": "v7", "5": "v5", "6": "v6", "7": "v7", "8": "v8"}.get(variant, variant)
    elif architecture in ("i386", "i686", "x86"):
        architecture = "386"
    return os, architecture, variant


def parse_platform(text: str) -> Platform:
    """Parses `os/arch[/variant]` (the --platform syntax); raises ImagekitError on anything else."""
    parts = text.split("/")
    if not 2 <= len(parts) <= 3 or not all(parts):
        raise ImagekitError(f"invalid platform {text!r}: expected os/arch[/variant], e.g. linux/arm64")
    return Platform(*normalize(*parts))


def host() -> Platform:
    """The platform of this machine (Linux, its CPU architecture)."""
    return Platform(*normalize(host_platform.system() or "linux", host_platform.machine()))


def select(entries: Sequence[Descriptor], wanted: Platform) -> Descriptor:
    """The first index entry for `wanted`, exact variant first, then (if no variant was asked) any variant."""
    want = normalize(wanted.os, wanted.architecture, wanted.variant)
    candidates = [
        (normalize(e.platform.os, e.platform.architecture, e.platform.variant), e)
        for e in entries
        if e.platform is not None and (e.platform.os, e.platform.architecture) != ("unknown", "unknown")
    ]
    for key, entry in candidates:
        if key == want:
            return entry
    if not want[2]:
        for key, entry in candidates:
            if key[:2] == want[:2]:
                return entry
    available = ", ".join(sorted({"/".join(p for p in key if p) for key, _ in candidates})) or "none"
    raise PlatformNotFound(f"no image for platform {'/'.join(p for p in want if p)} in the index (available: {available})")
