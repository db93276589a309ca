"""imagekit.oci: JSON round trips, strict rejection of malformed JSON, and the OCI schemas' verdict on
what imagekit serialises."""

from __future__ import annotations

import json
from types import MappingProxyType

import pytest

from imagekit.digest import Digest
from imagekit.errors import InvalidManifest
from imagekit.oci import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    MAX_MANIFEST_BYTES,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER_GZIP,
    OCI_MANIFEST,
    REF_NAME,
    Descriptor,
    Index,
    Manifest,
    Platform,
    canonical_json,
    load_json,
)
from tests import oci_schema

D1 = Digest.of_bytes(b"config")
D2 = Digest.of_bytes(b"layer")
D3 = Digest.of_bytes(b"manifest")


def _descriptor(**kw: object) -> Descriptor:
    fields = {"media_type": OCI_LAYER_GZIP, "digest": D2, "size": 5} | kw
    return Descriptor(**fields)  # type: ignore[arg-type]


PLATFORMS = [
    Platform("linux", "amd64"),
    Platform("linux", "arm64", "v8"),
    Platform("windows", "amd64", os_version="10.0.17763.1", os_features=("win32k",)),
]

DESCRIPTORS = [
    _descriptor(),
    _descriptor(annotations=MappingProxyType({"a": "b", REF_NAME: "docker.io/library/x:1"})),
    _descriptor(platform=PLATFORMS[1]),
    _descriptor(urls=("https://example.com/blob",)),
    _descriptor(artifact_type="application/vnd.example+json"),
    _descriptor(extra=MappingProxyType({"data": "e30="})),
]


@pytest.mark.parametrize("platform", PLATFORMS, ids=str)
def test_platform_round_trip(platform: Platform) -> None:
    assert Platform.from_json(json.loads(json.dumps(platform.to_json()))) == platform


@pytest.mark.parametrize("descriptor", DESCRIPTORS, ids=range(len(DESCRIPTORS)))
def test_descriptor_round_trip_and_schema(descriptor: Descriptor) -> None:
    obj = json.loads(json.dumps(descriptor.to_json()))
    back = Descriptor.from_json(obj)
    assert back.to_json() == descriptor.to_json()
    assert (back.media_type, back.digest, back.size, back.platform) == (
        descriptor.media_type, descriptor.digest, descriptor.size, descriptor.platform,
    )
    assert oci_schema.errors(oci_schema.DESCRIPTOR, obj) == []


def _manifest(media_type: str = OCI_MANIFEST, **kw: object) -> Manifest:
    fields = {
        "media_type": media_type,
        "config": Descriptor(OCI_CONFIG, D1, 6),
        "layers": (_descriptor(), _descriptor(digest=D3, size=8)),
    } | kw
    return Manifest(**fields)  # type: ignore[arg-type]


MANIFESTS = [
    _manifest(),
    _manifest(annotations=MappingProxyType({"org.opencontainers.image.created": "2024-01-01T00:00:00Z"})),
    _manifest(subject=Descriptor(OCI_MANIFEST, D3, 8), artifact_type="application/vnd.example"),
]


@pytest.mark.parametrize("manifest", MANIFESTS, ids=range(len(MANIFESTS)))
def test_manifest_round_trip_and_schema(manifest: Manifest) -> None:
    data = manifest.to_bytes()
    assert Manifest.from_bytes(data) == manifest
    assert Manifest.from_bytes(data).to_bytes() == data
    assert oci_schema.errors(oci_schema.MANIFEST, json.loads(data)) == []


def test_layerless_manifest_parses_but_is_not_a_valid_image() -> None:
    """The image-spec schema wants at least one layer; artifacts may have none, so parsing allows it
    and imagekit's own image writers (import, build) always write one."""
    manifest = _manifest(layers=())
    assert Manifest.from_bytes(manifest.to_bytes()) == manifest
    assert oci_schema.errors(oci_schema.MANIFEST, manifest.to_json()) == ["layers: [] should be non-empty"]


def test_docker_manifest_round_trip() -> None:
    manifest = _manifest(DOCKER_MANIFEST)
    assert Manifest.from_bytes(manifest.to_bytes()) == manifest


INDEXES = [
    Index(manifests=()),
    Index(manifests=(Descriptor(OCI_MANIFEST, D3, 8, platform=PLATFORMS[0]), Descriptor(OCI_MANIFEST, D1, 6, platform=PLATFORMS[1]))),
    Index(manifests=(Descriptor(OCI_MANIFEST, D3, 8, annotations=MappingProxyType({REF_NAME: "a:b"})),), annotations=MappingProxyType({"k": "v"})),
]


@pytest.mark.parametrize("index", INDEXES, ids=range(len(INDEXES)))
def test_index_round_trip_and_schema(index: Index) -> None:
    data = index.to_bytes()
    assert Index.from_bytes(data) == index
    assert oci_schema.errors(oci_schema.INDEX, json.loads(data)) == []


def test_docker_manifest_list_round_trip() -> None:
    index = Index(manifests=(Descriptor(DOCKER_MANIFEST, D3, 8, platform=PLATFORMS[0]),), media_type=DOCKER_MANIFEST_LIST)
    assert Index.from_bytes(index.to_bytes()) == index


def test_unknown_fields_survive_a_round_trip() -> None:
    obj = {"mediaType": OCI_LAYER_GZIP, "digest": str(D2), "size": 5, "x-vendor": {"n": [1, 2]}}
    assert Descriptor.from_json(obj).to_json() == obj


def test_canonical_json_is_sorted_and_compact() -> None:
    assert canonical_json({"b": 1, "a": [1, {"d": "é", "c": None}]}) == '{"a":[1,{"c":null,"d":"é"}],"b":1}'.encode()


def _m(**changes: object) -> bytes:
    obj = json.loads(_manifest().to_bytes())
    for key, value in changes.items():
        if value is ...:
            del obj[key]
        else:
            obj[key] = value
    return json.dumps(obj).encode()


BAD_MANIFESTS = [
    (b"", "not valid JSON"),
    (b"{", "not valid JSON"),
    (b"\xff\xfe", "not valid JSON"),
    (b"[]", "not a JSON object"),
    (b'"manifest"', "not a JSON object"),
    (b" " * (MAX_MANIFEST_BYTES + 1), "over the"),
    (_m(schemaVersion=1), "schema 1"),
    (_m(schemaVersion="2"), "schemaVersion"),
    (_m(schemaVersion=...), "schemaVersion"),
    (_m(mediaType=OCI_INDEX), "expected an image manifest"),
    (_m(config=...), "manifest config is not a JSON object"),
    (_m(config=[]), "manifest config is not a JSON object"),
    (_m(layers=...), "missing 'layers'"),
    (_m(layers={}), "'layers' has the wrong type"),
    (_m(layers=["x"]), "manifest layer 0 is not a JSON object"),
    (_m(layers=[{"mediaType": OCI_LAYER_GZIP, "digest": "sha256:abc", "size": 1}]), "manifest layer 0"),
    (_m(layers=[{"mediaType": OCI_LAYER_GZIP, "digest": str(D2), "size": -1}]), "negative size"),
    (_m(layers=[{"mediaType": OCI_LAYER_GZIP, "digest": str(D2), "size": True}]), "'size' has the wrong type"),
    (_m(layers=[{"mediaType": OCI_LAYER_GZIP, "digest": str(D2), "size": 1.5}]), "'size' has the wrong type"),
    (_m(layers=[{"mediaType": OCI_LAYER_GZIP, "digest": str(D2)}]), "missing 'size'"),
    (_m(layers=[{"digest": str(D2), "size": 1}]), "missing 'mediaType'"),
    (_m(layers=[{"mediaType": OCI_LAYER_GZIP, "digest": "md5:" + "0" * 32, "size": 1}]), "unsupported digest algorithm"),
    (_m(annotations={"a": 1}), "'annotations' must map strings to strings"),
    (_m(annotations=[]), "'annotations' has the wrong type"),
]


@pytest.mark.parametrize(("data", "fragment"), BAD_MANIFESTS, ids=range(len(BAD_MANIFESTS)))
def test_bad_manifests_are_rejected_with_one_line(data: bytes, fragment: str) -> None:
    with pytest.raises(InvalidManifest) as info:
        Manifest.from_bytes(data)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


BAD_INDEXES = [
    (b'{"schemaVersion":2}', "missing 'manifests'"),
    (b'{"schemaVersion":2,"manifests":{}}', "'manifests' has the wrong type"),
    (b'{"schemaVersion":3,"manifests":[]}', "schemaVersion"),
    (json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "manifests": []}).encode(), "expected an image index"),
    (b'{"schemaVersion":2,"manifests":[{"mediaType":"x","size":1}]}', "index entry 0: missing 'digest'"),
    (b'{"schemaVersion":2,"manifests":[{"mediaType":"x","digest":"sha256:zz","size":1,"platform":{}}]}', "index entry 0"),
    (json.dumps({"schemaVersion": 2, "manifests": [{"mediaType": "x", "digest": str(D1), "size": 1, "platform": {"os": "linux"}}]}).encode(), "missing 'architecture'"),
    (json.dumps({"schemaVersion": 2, "manifests": [{"mediaType": "x", "digest": str(D1), "size": 1, "platform": []}]}).encode(), "platform is not a JSON object"),
]


@pytest.mark.parametrize(("data", "fragment"), BAD_INDEXES, ids=range(len(BAD_INDEXES)))
def test_bad_indexes_are_rejected(data: bytes, fragment: str) -> None:
    with pytest.raises(InvalidManifest) as info:
        Index.from_bytes(data)
    assert fragment in str(info.value)


def test_load_json_names_what_it_parsed() -> None:
    with pytest.raises(InvalidManifest, match="^image config is not valid JSON"):
        load_json(b"nope", "image config")


def test_schema_validator_catches_a_broken_manifest() -> None:
    """The schema harness itself must be able to fail, or the checks above prove nothing."""
    obj = json.loads(_manifest().to_bytes())
    del obj["config"]["size"]
    obj["layers"][0]["digest"] = "not a digest"
    problems = oci_schema.errors(oci_schema.MANIFEST, obj)
    assert any("'size' is a required property" in p for p in problems)
    assert any("not a digest" in p for p in problems)


# --- fuzz: whatever JSON arrives, parsing either succeeds or raises InvalidManifest -------------------------
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_SCALARS = st.none() | st.booleans() | st.integers(-2, 2**40) | st.floats(allow_nan=False) | st.sampled_from(
    ["", "linux", str(D1), "sha256:zz", OCI_LAYER_GZIP, OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST]
)
_JSON = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=12)
_DESCRIPTOR_LIKE = st.fixed_dictionaries(
    {"mediaType": _JSON, "digest": _JSON, "size": _JSON},
    optional={"annotations": _JSON, "platform": _JSON | st.fixed_dictionaries({"os": _JSON, "architecture": _JSON}, optional={"os.features": _JSON, "variant": _JSON}), "urls": _JSON},
)
_MANIFEST_LIKE = st.fixed_dictionaries(
    {"schemaVersion": st.sampled_from([2, 2, 1, "2"]), "config": _DESCRIPTOR_LIKE | _JSON, "layers": st.lists(_DESCRIPTOR_LIKE | _JSON, max_size=3) | _JSON},
    optional={"mediaType": _JSON, "annotations": _JSON, "subject": _DESCRIPTOR_LIKE},
)
_INDEX_LIKE = st.fixed_dictionaries(
    {"schemaVersion": st.sampled_from([2, 2, 3]), "manifests": st.lists(_DESCRIPTOR_LIKE | _JSON, max_size=3) | _JSON},
    optional={"mediaType": _JSON, "annotations": _JSON},
)


def _parses_or_rejects(parse: object, value: object) -> None:
    try:
        parsed = parse(json.dumps(value).encode())  # type: ignore[operator]
    except InvalidManifest as err:
        assert "\n" not in str(err)
        return
    # what parsed must serialise to JSON that parses to the same value
    assert type(parsed).from_bytes(parsed.to_bytes()) == parsed


@settings(max_examples=300, deadline=None)
@given(_MANIFEST_LIKE | _JSON)
def test_manifest_parsing_never_fails_otherwise(value: object) -> None:
    _parses_or_rejects(Manifest.from_bytes, value)


@settings(max_examples=300, deadline=None)
@given(_INDEX_LIKE | _JSON)
def test_index_parsing_never_fails_otherwise(value: object) -> None:
    _parses_or_rejects(Index.from_bytes, value)
