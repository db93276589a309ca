"""The one place for platforms: this host's, containerd's normalisation, parsing --platform, choosing from an index.

Names are normalised as containerd/platforms does (`normalizeArch`), extended with the machine names
the kernel reports (`uname -m`), so the host, a `--platform` flag and an index entry all compare in one
spelling: `x86_64` is `amd64`; `aarch64` is `arm64` and `arm64/v8` is plain `arm64`; `arm` without a
variant is `arm/v7`, `armhf` and `armv7l` are `arm/v7`, `armel` and `armv6l` are `arm/v6`; `i386` and
`i686` are `386`. Index entries whose platform is `unknown/unknown` (BuildKit's attestation manifests)
are never chosen.

Imports: stdlib, imagekit.errors and imagekit.oci only (the store, the registry and the builder use it).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from imagekit.errors import ImagekitError, PlatformNotFound
from imagekit.oci import Descriptor, Platform

#: Machine names (uname -m, GOARCH aliases) -> (architecture, variant); a variant of None keeps the given one.
_ARCHITECTURES: dict[str, tuple[str, str | None]] = {
    "x86_64": ("amd64", None),
    "x86-64": ("amd64", None),
    "amd64": ("amd64", None),
    "aarch64": ("arm64", None),
    "arm64": ("arm64", None),
    "armhf": ("arm", "v7"),
    "armv7l": ("arm", "v7"),
    "armel": ("arm", "v6"),
    "armv6l": ("arm", "v6"),
    "armv5tel": ("arm", "v5"),
    "arm": ("arm", None),
    "i386": ("386", ""),
    "i686": ("386", ""),
    "x86": ("386", ""),
}

#: Per architecture: variant spellings -> the canonical one (containerd's normalizeArch).
_VARIANTS: dict[str, dict[str, str]] = {
    "amd64": {"v1": ""},
    "arm64": {"8": "", "v8": "", "v8.0": ""},
    "arm": {"": "v7", "5": "v5", "6": "v6", "7": "v7", "8": "v8"},
}


def normalize(os: str, architecture: str, variant: str = "") -> tuple[str, str, str]:
    """(os, architecture, variant) in containerd's canonical spelling; unknown names pass through lowercased."""
    os, architecture, variant = os.lower(), architecture.lower(), variant.lower()
    architecture, forced = _ARCHITECTURES.get(architecture, (architecture, None))
    if forced is not None:
        variant = forced
    variant = _VARIANTS.get(architecture, {}).get(variant, variant)
    return os, architecture, variant


def parse_platform(text: str) -> Platform:
    """Parses `os/arch[/variant]` (the --platform syntax), normalised; raises ImagekitError on anything else."""
    parts = text.split("/")
    if not 2 <= len(parts) <= 3 or not all(parts):
        raise ImagekitError(f"invalid platform {text!r}: expected os/arch[/variant], e.g. linux/arm64")
    return Platform(*normalize(*parts))


def host() -> Platform:
    """The platform images run on here: linux/<this CPU's architecture>[/variant], normalised."""
    return Platform(*normalize("linux", os.uname().machine))  # platform.machine()'s source, without its import


def select(entries: Sequence[Descriptor], wanted: Platform) -> Descriptor:
    """The first index entry for `wanted`, exact variant first, then (if no variant was asked) any variant.

    Raises PlatformNotFound naming the platforms the index does offer.
    """
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
