"""imagekit.reference against distribution/reference: the cases of its normalize_test.go and
reference_test.go, plus the edges of each grammar rule (lengths, separators, hosts, digests).

Valid cases give the fully normalised string (what `docker pull` resolves); invalid ones give a
fragment the message must contain, so every rejection names the part that is wrong.
"""

from __future__ import annotations

import pytest

from imagekit.errors import BadReference, ImagekitError
from imagekit.reference import DOCKER_HUB_API, parse_reference

SHA = "sha256:" + "f" * 64
SHA512 = "sha512:" + "f" * 128
HEX64 = "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a"

# input -> (domain, path, tag, digest)
VALID: list[tuple[str, tuple[str, str, str | None, str | None]]] = [
    # Docker Hub defaults
    ("ubuntu", ("docker.io", "library/ubuntu", "latest", None)),
    ("ubuntu:22.04", ("docker.io", "library/ubuntu", "22.04", None)),
    ("user/app", ("docker.io", "user/app", "latest", None)),
    ("docker/docker", ("docker.io", "docker/docker", "latest", None)),
    ("library/debian", ("docker.io", "library/debian", "latest", None)),
    ("docker.io/debian", ("docker.io", "library/debian", "latest", None)),
    ("docker.io/library/debian", ("docker.io", "library/debian", "latest", None)),
    ("docker.io/docker/docker", ("docker.io", "docker/docker", "latest", None)),
    ("docker.io/library/foo/bar", ("docker.io", "library/foo/bar", "latest", None)),
    ("store/foo/bar", ("docker.io", "store/foo/bar", "latest", None)),
    # the legacy index host is Docker Hub
    ("index.docker.io/debian", ("docker.io", "library/debian", "latest", None)),
    ("index.docker.io/library/debian", ("docker.io", "library/debian", "latest", None)),
    ("index.docker.io/docker/docker", ("docker.io", "docker/docker", "latest", None)),
    # which first component is a registry host
    ("localhost/foo", ("localhost", "foo", "latest", None)),
    ("localhost:5000/a/b:v1", ("localhost:5000", "a/b", "v1", None)),
    ("localhost", ("docker.io", "library/localhost", "latest", None)),
    ("localhost:5000", ("docker.io", "library/localhost", "5000", None)),
    ("test_com/foo", ("docker.io", "test_com/foo", "latest", None)),
    ("test.com/foo", ("test.com", "foo", "latest", None)),
    ("test:8080/foo", ("test:8080", "foo", "latest", None)),
    ("test-com:8080/foo", ("test-com:8080", "foo", "latest", None)),
    ("xn--n3h.com:18080/foo", ("xn--n3h.com:18080", "foo", "latest", None)),
    ("test.com:tag", ("docker.io", "library/test.com", "tag", None)),
    ("test.com:5000", ("docker.io", "library/test.com", "5000", None)),
    ("foo_bar.com:8080", ("docker.io", "library/foo_bar.com", "8080", None)),
    ("foo/foo_bar.com:8080", ("docker.io", "foo/foo_bar.com", "8080", None)),
    ("Foo/bar", ("Foo", "bar", "latest", None)),
    ("FOO/bar", ("FOO", "bar", "latest", None)),
    ("Docker/docker", ("Docker", "docker", "latest", None)),
    ("sub-dom1.foo.com/bar/baz/quux:some-long-tag", ("sub-dom1.foo.com", "bar/baz/quux", "some-long-tag", None)),
    ("b.gcr.io/test.example.com/my-app:test.example.com", ("b.gcr.io", "test.example.com/my-app", "test.example.com", None)),
    # IPv4 and IPv6 hosts, ports
    ("192.168.1.1", ("docker.io", "library/192.168.1.1", "latest", None)),
    ("192.168.1.1:5000", ("docker.io", "library/192.168.1.1", "5000", None)),
    ("192.168.1.1/repo", ("192.168.1.1", "repo", "latest", None)),
    ("192.168.1.1:5000/repo:5050", ("192.168.1.1:5000", "repo", "5050", None)),
    ("127.0.0.1:5000/library/debian", ("127.0.0.1:5000", "library/debian", "latest", None)),
    ("[2001:db8::1]/repo", ("[2001:db8::1]", "repo", "latest", None)),
    ("[2001:db8:1:2:3:4:5:6]/repo:tag", ("[2001:db8:1:2:3:4:5:6]", "repo", "tag", None)),
    ("[2001:db8::1]:5000/repo:tag", ("[2001:db8::1]:5000", "repo", "tag", None)),
    ("[::1]:5000/repo", ("[::1]:5000", "repo", "latest", None)),
    ("[fc00::1]:5000/docker/docker", ("[fc00::1]:5000", "docker/docker", "latest", None)),
    # path separators
    ("docker-rules/docker", ("docker.io", "docker-rules/docker", "latest", None)),
    ("docker---rules/docker", ("docker.io", "docker---rules/docker", "latest", None)),
    ("dock__er/docker", ("docker.io", "dock__er/docker", "latest", None)),
    ("a_b-c__d/e.f", ("docker.io", "a_b-c__d/e.f", "latest", None)),
    ("d/docker", ("docker.io", "d/docker", "latest", None)),
    ("jess/t", ("docker.io", "jess/t", "latest", None)),
    # tags
    ("lowercase:Uppercase", ("docker.io", "library/lowercase", "Uppercase", None)),
    ("a:_tag", ("docker.io", "library/a", "_tag", None)),
    ("a:" + "t" * 128, ("docker.io", "library/a", "t" * 128, None)),
    ("a:1.0-rc_2", ("docker.io", "library/a", "1.0-rc_2", None)),
    # 64 characters that are not all hex, and hex under a host, are names
    ("thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev", ("docker.io", "library/thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev", "latest", None)),
    ("docker.io/" + HEX64, ("docker.io", "library/" + HEX64, "latest", None)),
    (HEX64 + ":tag", ("docker.io", "library/" + HEX64, "tag", None)),
    # digests
    ("host.io/repo@" + SHA, ("host.io", "repo", None, SHA)),
    ("busybox@" + SHA, ("docker.io", "library/busybox", None, SHA)),
    ("busybox:latest@" + SHA, ("docker.io", "library/busybox", "latest", SHA)),
    ("test:5000/repo:tag@" + SHA, ("test:5000", "repo", "tag", SHA)),
    ("xn--7o8h.com/myimage:xn--7o8h.com@" + SHA512, ("xn--7o8h.com", "myimage", "xn--7o8h.com", SHA512)),
    ("a@sha384:" + "0" * 96, ("docker.io", "library/a", None, "sha384:" + "0" * 96)),
    # length limit is on the normalised path: 255 fits, whatever the host adds
    ("a/" * 127 + "a:tag-puts-this-over-max", ("docker.io", "a/" * 127 + "a", "tag-puts-this-over-max", None)),
    ("example.com/" + "b" * 255, ("example.com", "b" * 255, "latest", None)),
    ("c" * 247, ("docker.io", "library/" + "c" * 247, "latest", None)),
]

# input -> fragment of the error message (naming the offending part)
INVALID: list[tuple[str, str]] = [
    ("", "empty"),
    (":justtag", "repository name is empty"),
    ("@" + SHA, "repository name is empty"),
    ("Uppercase:tag", "'Uppercase'"),
    ("docker/Docker", "'Docker'"),
    ("docker.io/docker/Docker", "'Docker'"),
    ("test:5000/Uppercase/lowercase:tag", "'Uppercase'"),
    ("-docker", "'-docker'"),
    ("-docker/docker", "'-docker'"),
    ("docker-/docker", "'docker-'"),
    ("-docker-/docker", "'-docker-'"),
    ("-docker.io/docker/docker", "registry host '-docker.io'"),
    ("____/____", "'____'"),
    ("_docker/_docker", "'_docker'"),
    ("dock..er/docker", "'dock..er'"),
    ("dock_.er/docker", "'dock_.er'"),
    ("dock-.er/docker", "'dock-.er'"),
    ("dock___er/docker", "'dock___er'"),
    ("docker///docker", "empty component"),
    ("docker.io/docker///docker", "empty component"),
    ("docker/", "empty component"),
    ("example.com/", "repository path is empty"),
    ("aa/asdf$$^/aa", "'asdf$$^'"),
    ("https://github.com/docker/docker", "registry host 'https:'"),
    (HEX64, "64-character hexadecimal"),
    ("a/" * 128 + "a:tag", "over 255"),
    ("c" * 248, "over 255"),
    ("_".join(["this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255"] * 4) + "/docker", "over 255"),
    # hosts
    ("[fc00::1]", "'[fc00::1]'"),
    ("[fc00::1]:5000", "'[fc00::1]"),
    ("[2001:db8::1]:tag", "'[2001:db8::1]"),
    ("fc00::1:5000/debian", "registry host 'fc00::1:5000'"),
    ("[fe80::1%eth0]:5000/debian", "registry host '[fe80::1%eth0]:5000'"),
    ("[fe80::1%@invalidzone]:5000/repo", "invalid"),
    ("[2001:db8:3:4::192.0.2.33]:5000/debian", "registry host '[2001:db8:3:4::192.0.2.33]:5000'"),
    ("host:port/repo", "registry host 'host:port'"),
    ("exa_mple.com/repo", "registry host 'exa_mple.com'"),  # docker: accepted with an empty domain
    ("a.b_c-d/e", "registry host 'a.b_c-d'"),  # likewise
    ("-host.com:5000/repo", "registry host '-host.com:5000'"),
    # tags
    ("a:" + "t" * 129, "invalid tag"),
    ("a:-tag", "invalid tag '-tag'"),
    ("a:.tag", "invalid tag '.tag'"),
    ("a:", "invalid tag ''"),
    ("a:t@g", "invalid digest"),
    ("a:täg", "invalid tag 'täg'"),
    ("a:b:c", "'a:b'"),
    # digests
    ("repo@sha256:" + "f" * 34, "expected 64 lowercase hex characters"),
    ("repo@sha256:" + "f" * 65, "expected 64 lowercase hex characters"),
    ("repo@sha256:" + "F" * 64, "'" + "F" * 64 + "'"),
    ("repo@sha512:" + "f" * 64, "expected 128 lowercase hex characters"),
    ("validname@invaliddigest:" + "f" * 64, "unsupported digest algorithm 'invaliddigest'"),
    ("repo@md5:" + "f" * 32, "unsupported digest algorithm 'md5'"),
    ("repo@SHA256:" + "f" * 64, "'SHA256'"),
    ("repo@sha256:abc", "invalid digest 'sha256:abc'"),
    ("repo@sha256", "invalid digest 'sha256'"),
    ("repo@", "invalid digest ''"),
    ("repo@sha256:" + "g" * 64, "invalid digest"),
    # whitespace and junk
    (" ubuntu", "whitespace"),
    ("ubuntu ", "whitespace"),
    ("ub untu", "whitespace"),
    ("ubuntu\n", "whitespace"),
    ("ubuntü", "'ubuntü'"),
]


def _ids(cases: list[tuple[str, object]]) -> list[str]:
    return [text[:60] or "<empty>" for text, _ in cases]


@pytest.mark.parametrize(("text", "expected"), VALID, ids=_ids(VALID))
def test_valid_references_normalise_like_docker(text: str, expected: tuple[str, str, str | None, str | None]) -> None:
    ref = parse_reference(text)
    assert (ref.domain, ref.path, ref.tag, ref.digest) == expected
    # the normalised string is a fixed point: parsing it again gives the same reference
    assert parse_reference(str(ref)) == ref


@pytest.mark.parametrize(("text", "fragment"), INVALID, ids=_ids(INVALID))
def test_invalid_references_are_rejected_naming_the_part(text: str, fragment: str) -> None:
    with pytest.raises(BadReference) as info:
        parse_reference(text)
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message.replace("\\n", "")
    assert isinstance(info.value, ImagekitError)


def test_table_is_large_enough() -> None:
    assert len(VALID) + len(INVALID) >= 60
    assert len({t for t, _ in VALID} | {t for t, _ in INVALID}) == len(VALID) + len(INVALID)


@pytest.mark.parametrize(
    ("text", "familiar"),
    [
        ("docker.io/library/ubuntu:22.04", "ubuntu:22.04"),
        ("index.docker.io/user/app", "user/app:latest"),
        ("docker.io/library/foo/bar:x", "library/foo/bar:x"),
        ("localhost:5000/a:b", "localhost:5000/a:b"),
        ("busybox:1@" + SHA, "busybox:1@" + SHA),
        ("example.com/library/x", "example.com/library/x:latest"),
    ],
)
def test_familiar_form_is_what_docker_prints(text: str, familiar: str) -> None:
    assert parse_reference(text).familiar == familiar


def test_name_only_without_default_tag() -> None:
    ref = parse_reference("ubuntu", default_tag=False)
    assert ref.tag is None and ref.digest is None
    assert str(ref) == "docker.io/library/ubuntu"


def test_api_host_of_docker_hub_is_registry_1() -> None:
    assert parse_reference("ubuntu").api_host == DOCKER_HUB_API == "registry-1.docker.io"
    assert parse_reference("localhost:5000/a").api_host == "localhost:5000"


def test_with_tag_replaces_tag_and_digest_and_validates() -> None:
    ref = parse_reference("busybox@" + SHA)
    assert str(ref.with_tag("v2")) == "docker.io/library/busybox:v2"
    with pytest.raises(BadReference, match="'-bad'"):
        ref.with_tag("-bad")


# --- differential: a transliteration of distribution/reference's regexps and ParseNormalizedNamed -------
# The table above pins known cases; this oracle, built the way the Go package builds its grammar (one
# big anchored regexp, then domain split), catches any input where the hand-written parser disagrees.
import re  # noqa: E402

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_ALNUM = r"[a-z0-9]+"
_PATH_COMPONENT = rf"{_ALNUM}(?:(?:[._]|__|[-]+){_ALNUM})*"
_REMOTE = rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_DC = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_AND_PORT = rf"(?:{_DC}(?:\.{_DC})*|\[(?:[a-fA-F0-9:]+)\])(?::[0-9]+)?"
_REFERENCE = re.compile(
    rf"((?:{_DOMAIN_AND_PORT}/)?{_REMOTE})(?::([\w][\w.-]{{0,127}}))?(?:@([A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9a-fA-F]{{32,}}))?",
    re.ASCII,
)
_ANCHORED_NAME = re.compile(rf"(?:({_DOMAIN_AND_PORT})/)?({_REMOTE})", re.ASCII)
_GO_DIGEST_SIZES = {"sha256": 64, "sha384": 96, "sha512": 128}


def _oracle(s: str) -> tuple[str, str, str | None, str | None] | None:
    """ParseNormalizedNamed(s) as (domain, path, tag, digest), or None where it returns an error."""
    if re.fullmatch(r"[a-f0-9]{64}", s):
        return None
    first, slash, rest = s.partition("/")
    if not slash:
        domain, remainder = "docker.io", "library/" + s
    elif first == "localhost" or any(c in first for c in ".:") or first.lower() != first:
        domain, remainder = ("docker.io" if first == "index.docker.io" else first), rest
    else:
        domain, remainder = "docker.io", s
    if domain == "docker.io" and "/" not in remainder:
        remainder = "library/" + remainder
    remote = remainder.split(":", 1)[0]
    if remote.lower() != remote:
        return None
    match = _REFERENCE.fullmatch(f"{domain}/{remainder}")
    if match is None:
        return None
    name = _ANCHORED_NAME.fullmatch(match.group(1))
    assert name is not None
    if name.group(1) is None:
        # Docker's one quirk we refuse: a first component with a "." that is no valid host but is a valid
        # path component (`exa_mple.com/repo`) parses with an *empty* domain, which no registry answers.
        # imagekit rejects it as an invalid registry host (see the INVALID table).
        return None
    if len(name.group(2)) > 255:
        return None
    digest = match.group(3)
    if digest is not None:
        algorithm, _, encoded = digest.partition(":")
        if _GO_DIGEST_SIZES.get(algorithm) != len(encoded) or not re.fullmatch(r"[a-f0-9]+", encoded):
            return None
    return name.group(1), name.group(2), match.group(2), digest


def _ours(s: str) -> tuple[str, str, str | None, str | None] | None:
    try:
        ref = parse_reference(s, default_tag=False)
    except BadReference:
        return None
    return ref.domain, ref.path, ref.tag, ref.digest


_PIECES = st.sampled_from(
    ["a", "b0", "Z", "-", "--", "_", "__", ".", ":", "/", "@", "localhost", "docker.io", "index.docker.io",
     "ex.com", ":5000", "[::1]", "[fe80::1%e]", "latest", "v1.0", "sha256:", "f" * 32, "f" * 64, "F" * 64, "é"]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(_PIECES, max_size=8).map("".join) | st.text(alphabet="ab0Z.-_:/@[]f", max_size=20))
def test_parser_agrees_with_the_distribution_grammar(text: str) -> None:
    assert _ours(text) == _oracle(text)


@pytest.mark.parametrize("text", [t for t, _ in VALID] + [t for t, _ in INVALID])
def test_table_agrees_with_the_distribution_grammar(text: str) -> None:
    assert _ours(text) == _oracle(text)
