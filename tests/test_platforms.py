"""The one platform answer: host, --platform and index entries normalised alike (containerd's rules plus uname -m)."""

from __future__ import annotations

import platform as python_platform

import pytest

from imagekit import platforms
from imagekit.digest import Digest
from imagekit.errors import ImagekitError, PlatformNotFound
from imagekit.oci import OCI_MANIFEST, Descriptor, Platform


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (("linux", "aarch64"), ("linux", "arm64", "")),
        (("linux", "arm64", "v8"), ("linux", "arm64", "")),
        (("linux", "arm64", "8"), ("linux", "arm64", "")),
        (("linux", "arm"), ("linux", "arm", "v7")),
        (("linux", "arm", "6"), ("linux", "arm", "v6")),
        (("linux", "armhf"), ("linux", "arm", "v7")),
        (("linux", "armv7l"), ("linux", "arm", "v7")),
        (("linux", "armel"), ("linux", "arm", "v6")),
        (("linux", "armv6l"), ("linux", "arm", "v6")),
        (("linux", "x86_64"), ("linux", "amd64", "")),
        (("linux", "amd64", "v1"), ("linux", "amd64", "")),
        (("linux", "amd64", "v3"), ("linux", "amd64", "v3")),
        (("linux", "i686"), ("linux", "386", "")),
        (("Linux", "I386"), ("linux", "386", "")),
        (("linux", "s390x"), ("linux", "s390x", "")),
        (("linux", "riscv64"), ("linux", "riscv64", "")),
    ],
)
def test_normalisation_rules(given: tuple[str, ...], expected: tuple[str, str, str]) -> None:
    assert platforms.normalize(*given) == expected


def test_parse_platform_normalises_and_refuses_malformed_text() -> None:
    assert platforms.parse_platform("linux/arm/v6") == Platform("linux", "arm", "v6")
    assert platforms.parse_platform("linux/armv7l") == Platform("linux", "arm", "v7")
    assert platforms.parse_platform("linux/aarch64") == Platform("linux", "arm64")
    for bad in ("linux", "linux/", "/amd64", "a/b/c/d"):
        with pytest.raises(ImagekitError, match="invalid platform"):
            platforms.parse_platform(bad)


def test_host_is_the_normalised_machine() -> None:
    assert platforms.host() == Platform(*platforms.normalize("linux", python_platform.machine()))
    assert platforms.host().architecture not in ("x86_64", "aarch64", "armv7l")


def _entry(data: bytes, platform: Platform | None) -> Descriptor:
    return Descriptor(OCI_MANIFEST, Digest.of_bytes(data), len(data), platform=platform)


def test_select_prefers_the_exact_variant_and_skips_attestations() -> None:
    attestation = _entry(b"att", Platform("unknown", "unknown"))
    v6, v7, arm64 = _entry(b"v6", Platform("linux", "arm", "v6")), _entry(b"v7", Platform("linux", "arm", "7")), _entry(b"a", Platform("linux", "aarch64", "v8"))
    entries = (attestation, v6, v7, arm64)
    assert platforms.select(entries, Platform("linux", "armv7l")) == v7
    assert platforms.select(entries, Platform("linux", "arm", "v6")) == v6
    assert platforms.select(entries, Platform("linux", "arm64")) == arm64
    assert platforms.select((_entry(b"v3", Platform("linux", "amd64", "v3")),), Platform("linux", "x86_64")).digest == Digest.of_bytes(b"v3")
    with pytest.raises(PlatformNotFound, match="available: linux/arm/v6, linux/arm/v7, linux/arm64"):
        platforms.select(entries, Platform("linux", "s390x"))
    with pytest.raises(PlatformNotFound, match="available: none"):
        platforms.select((attestation, _entry(b"none", None)), Platform("unknown", "unknown"))
