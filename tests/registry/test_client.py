"""The distribution API endpoints against a real docker-registry (and hostile answers through the fault proxy)."""

from __future__ import annotations

import gzip
import http.server
import io
import json
import os
import threading
import uuid
from collections.abc import Callable

import pytest

from imagekit.digest import CHUNK, Digest
from imagekit.errors import DigestMismatch, InvalidManifest, RegistryError
from imagekit.oci import (
    DOCKER_MANIFEST_LIST,
    DOCKER_SCHEMA1_SIGNED,
    MAX_MANIFEST_BYTES,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER_GZIP,
    OCI_MANIFEST,
    Descriptor,
    Index,
    Manifest,
    canonical_json,
)
from imagekit.registry.client import MANIFEST_ACCEPT, Repository
from imagekit.registry.transport import Transport
from tests.registry.auth_servers import AuthRegistry
from tests.registry.fault_proxy import Fault, FaultProxy
from tests.registry.registry_server import RegistryServer
from tests.registry.serving import serving


def repo_on(host: str, name: str | None = None) -> Repository:
    return Repository(Transport(host), name or f"test/{uuid.uuid4().hex[:12]}")


def upload(repo: Repository, data: bytes, **kwargs: object) -> Digest:
    digest = Digest.of_bytes(data)
    repo.upload_blob(io.BytesIO(data), digest, len(data), **kwargs)  # type: ignore[arg-type]
    return digest


def read_blob(repo: Repository, digest: Digest, offset: int = 0) -> bytes:
    with repo.get_blob(digest, offset) as response:
        return response.raw.read()


def push_manifest(repo: Repository, tag: str, layer: bytes = b"layer") -> tuple[bytes, Digest]:
    """Uploads a config and one layer, then a manifest under `tag`; returns (manifest bytes, digest)."""
    config = canonical_json({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}})
    config_digest = upload(repo, config)
    layer_digest = upload(repo, layer)
    manifest = Manifest(
        OCI_MANIFEST, Descriptor(OCI_CONFIG, config_digest, len(config)), (Descriptor(OCI_LAYER_GZIP, layer_digest, len(layer)),)
    ).to_bytes()
    return manifest, repo.put_manifest(tag, manifest, OCI_MANIFEST)


def test_accept_lists_every_supported_type_and_the_oci_index() -> None:
    assert MANIFEST_ACCEPT.split(", ")[0] == OCI_INDEX
    assert "manifest.v1+prettyjws" not in MANIFEST_ACCEPT


def test_manifest_put_get_head_by_tag_and_digest(open_registry: RegistryServer) -> None:
    repo = repo_on(open_registry.host)
    manifest, digest = push_manifest(repo, "v1")
    assert digest == Digest.of_bytes(manifest)
    by_tag = repo.get_manifest("v1")
    assert (by_tag.data, by_tag.media_type, by_tag.digest) == (manifest, OCI_MANIFEST, digest)
    by_digest = repo.get_manifest(str(digest))
    assert by_digest.data == manifest
    head = repo.head_manifest("v1")
    assert head is not None and (head.digest, head.size, head.media_type) == (digest, len(manifest), OCI_MANIFEST)
    assert repo.head_manifest("absent") is None


def test_manifest_put_by_digest_and_an_index(open_registry: RegistryServer) -> None:
    repo = repo_on(open_registry.host)
    manifest, digest = push_manifest(repo, "child")
    again = repo.put_manifest(str(digest), manifest, OCI_MANIFEST)
    assert again == digest
    index = Index((Descriptor(OCI_MANIFEST, digest, len(manifest)),)).to_bytes()
    index_digest = repo.put_manifest("multi", index, OCI_INDEX)
    fetched = repo.get_manifest("multi")
    assert fetched.is_index and fetched.digest == index_digest and fetched.media_type == OCI_INDEX


def test_put_by_digest_refuses_bytes_that_do_not_match(open_registry: RegistryServer) -> None:
    repo = repo_on(open_registry.host)
    manifest, _ = push_manifest(repo, "v1")
    with pytest.raises(DigestMismatch):
        repo.put_manifest(str(Digest.of_bytes(b"other")), manifest, OCI_MANIFEST)


def test_missing_manifest_is_a_clear_error(open_registry: RegistryServer) -> None:
    with pytest.raises(RegistryError, match="not found") as info:
        repo_on(open_registry.host).get_manifest("nope")
    assert info.value.status == 404


def test_manifest_push_of_missing_blob_fails_with_registry_code(open_registry: RegistryServer) -> None:
    repo = repo_on(open_registry.host)
    missing = Descriptor(OCI_CONFIG, Digest.of_bytes(b"never uploaded"), 14)
    with pytest.raises(RegistryError) as info:
        repo.put_manifest("v1", Manifest(OCI_MANIFEST, missing, ()).to_bytes(), OCI_MANIFEST)
    assert "MANIFEST_BLOB_UNKNOWN" in info.value.codes


@pytest.mark.parametrize("chunk_size", [1 << 30, 100_000], ids=["monolithic", "chunked"])
@pytest.mark.parametrize("registry_fixture", ["open_registry", "relative_registry"], ids=["absolute", "relative"])
def test_upload_then_head_and_get(request: pytest.FixtureRequest, registry_fixture: str, chunk_size: int) -> None:
    registry: RegistryServer = request.getfixturevalue(registry_fixture)
    repo = repo_on(registry.host)
    data = os.urandom(350_000)
    digest = upload(repo, data, chunk_size=chunk_size)
    assert repo.blob_size(digest) == len(data)
    assert read_blob(repo, digest) == data


def test_chunked_upload_sends_content_range(open_registry: RegistryServer, fault_proxy: FaultProxy) -> None:
    repo = repo_on(fault_proxy.host)
    data = os.urandom(250_000)
    digest = upload(repo, data, chunk_size=100_000)
    patches = [h for m, _, h in fault_proxy.requests if m == "PATCH"]
    assert [p["Content-Range"] for p in patches] == ["0-99999", "100000-199999", "200000-249999"]
    puts = [path for m, path, _ in fault_proxy.requests if m == "PUT"]
    assert len(puts) == 1 and f"digest={str(digest).replace(':', '%3A')}" in puts[0] and "_state=" in puts[0]
    sent = [{name.lower(): value for name, value in h.items()} for m, _, h in fault_proxy.requests if m in ("PATCH", "PUT")]
    assert [h.get("content-type") for h in sent] == ["application/octet-stream"] * 4  # the spec's type for chunks and the closing PUT
    assert read_blob(repo_on(open_registry.host, repo.name), digest) == data


def test_what_nothing_asks_for_is_not_sent(fault_proxy: FaultProxy) -> None:
    """A blob of exactly a chunk goes in one PUT (of octet-stream), a read from its start asks no Range (an empty
    blob may be answered 416 for `bytes=0-`), and tags() without a page size sends no `n`."""
    repo = repo_on(fault_proxy.host)
    data = os.urandom(100_000)
    digest = upload(repo, data, chunk_size=len(data))
    assert read_blob(repo, digest) == data
    push_manifest(repo, "v1")
    assert repo.tags() == ["v1"]
    blobs = [(m, {name.lower(): value for name, value in h.items()}) for m, path, h in fault_proxy.requests if "/blobs/" in path]
    assert [(m, "range" in h) for m, h in blobs[:3]] == [("POST", False), ("PUT", False), ("GET", False)]
    assert blobs[1][1].get("content-type") == "application/octet-stream"
    assert [path for _, path, _ in fault_proxy.requests if "tags/list" in path] == [f"/v2/{repo.name}/tags/list"]


def test_head_by_digest_without_a_digest_header_names_the_reference_and_the_bare_media_type(fault_proxy: FaultProxy) -> None:
    """Docker-Content-Digest is optional when the reference is a digest; Content-Type's parameters are not the type."""
    digest = Digest.of_bytes(b"{}")
    fault_proxy.inject(Fault("replace", "/manifests/", method="HEAD", status=200, headers={"Content-Type": f"{OCI_MANIFEST}; charset=utf-8"}, body=b"{}"))
    assert repo_on(fault_proxy.host).head_manifest(str(digest)) == Descriptor(OCI_MANIFEST, digest, 2)


def test_sha512_references_and_the_other_success_statuses_of_a_push(fault_proxy: FaultProxy) -> None:
    """A manifest by a sha512 digest is hashed with sha512, fetched and pushed; a registry may accept a manifest
    with 200 or 202 and close an upload with 204, as the spec allows beside distribution's 201."""
    repo = repo_on(fault_proxy.host)
    body = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": {}, "layers": []}).encode()
    digest = Digest.of_bytes(body, "sha512")
    fault_proxy.inject(Fault("replace", r"/manifests/sha512:", status=200, headers={"Content-Type": OCI_MANIFEST}, body=body))
    assert repo.get_manifest(str(digest)).digest == digest
    for status in (201, 200, 202):
        fault_proxy.inject(Fault("replace", r"/manifests/", method="PUT", status=status, body=b" "))
        assert repo.put_manifest(str(digest), body, OCI_MANIFEST) == Digest.of_bytes(body)
    fault_proxy.inject(Fault("replace", r"/blobs/uploads/", method="PUT", status=204, body=b" "))
    upload(repo, b"blob")


def test_a_body_whose_last_read_is_one_byte_is_sent_whole(open_registry: RegistryServer) -> None:
    """UploadBody reads at most CHUNK at a time: a blob of CHUNK + 1 bytes ends with a read of one byte. (The short
    read timeout ends a body sent short, which the registry would wait for, in seconds instead of a minute.)"""
    repo = Repository(Transport(open_registry.host, timeout=(10, 5)), f"test/{uuid.uuid4().hex[:12]}")
    data = os.urandom(CHUNK + 1)
    digest = upload(repo, data)
    assert repo.blob_size(digest) == len(data)


def test_every_call_asks_its_token_for_its_scopes_up_front(token_registry: AuthRegistry) -> None:
    """Each call on a transport of its own (no token cached) asks its first token for the scopes it needs: without
    them it would go out with a token for nothing, get 401 and ask again with the challenge's scopes. (The DELETE
    of an upload then asks again all the same: distribution's challenge for it names `delete` too.)"""
    assert token_registry.token_server is not None
    asked = token_registry.token_server.requests
    name, source = (f"{token_registry.namespace}/{uuid.uuid4().hex[:12]}" for _ in range(2))
    pull, push = f"repository:{name}:pull", f"repository:{name}:pull,push"
    manifest, _ = push_manifest(Repository(token_registry.transport(), name), "v1")
    blob = upload(Repository(token_registry.transport(), source), b"mounted")
    sessions = [Repository(token_registry.transport(), name).start_upload() for _ in range(3)]  # for calls that need no POST
    calls: list[tuple[Callable[[Repository], object], list[str]]] = [
        (lambda repo: repo.get_manifest("v1"), [pull]),
        (lambda repo: repo.head_manifest("v1"), [pull]),
        (lambda repo: repo.blob_size(Digest.of_bytes(b"layer")), [pull]),  # push_manifest's layer
        (lambda repo: repo.get_blob(Digest.of_bytes(b"layer")).close(), [pull]),
        (lambda repo: repo.tags(), [pull]),
        (lambda repo: repo.put_manifest("v2", manifest, OCI_MANIFEST), [push]),
        (lambda repo: repo.start_upload(), [push]),
        (lambda repo: repo.cancel_upload(sessions[0]), [push]),
        (lambda repo: repo.mount_blob(blob, source), [push, f"repository:{source}:pull"]),
        (lambda repo: repo.upload_blob(io.BytesIO(b"x" * 10), Digest.of_bytes(b"x" * 10), 10, location=sessions[1], chunk_size=4), [push]),  # PATCHes
        (lambda repo: repo.upload_blob(io.BytesIO(b"y"), Digest.of_bytes(b"y"), 1, location=sessions[2]), [push]),  # one PUT
    ]
    for call, scopes in calls:
        before = len(asked)
        call(Repository(token_registry.transport(), name))
        assert sorted(asked[before].scopes) == sorted(scopes)


def test_upload_with_wrong_digest_is_refused_by_the_registry(open_registry: RegistryServer) -> None:
    repo = repo_on(open_registry.host)
    with pytest.raises(RegistryError) as info:
        repo.upload_blob(io.BytesIO(b"abc"), Digest.of_bytes(b"abd"), 3)
    assert "DIGEST_INVALID" in info.value.codes
    assert repo.blob_size(Digest.of_bytes(b"abc")) is None


def test_empty_blob_uploads(open_registry: RegistryServer) -> None:
    repo = repo_on(open_registry.host)
    digest = upload(repo, b"")
    assert repo.blob_size(digest) == 0


def test_range_request_resumes_inside_a_blob(open_registry: RegistryServer) -> None:
    repo = repo_on(open_registry.host)
    data = os.urandom(200_000)
    digest = upload(repo, data)
    with repo.get_blob(digest, 123_456) as response:
        assert response.status_code == 206
        assert response.raw.read() == data[123_456:]


def test_mount_across_repositories(open_registry: RegistryServer) -> None:
    source = repo_on(open_registry.host)
    digest = upload(source, os.urandom(10_000))
    target = repo_on(open_registry.host)
    assert target.mount_blob(digest, source.name) is None
    assert target.blob_size(digest) == 10_000


def test_mount_from_a_repository_without_the_blob_opens_an_upload(open_registry: RegistryServer) -> None:
    target = repo_on(open_registry.host)
    data = os.urandom(5_000)
    location = target.mount_blob(Digest.of_bytes(data), "test/does-not-exist")
    assert location is not None and location.startswith("http://")
    digest = upload(target, data, location=location)
    assert target.blob_size(digest) == len(data)


def test_tags_lists_every_tag(open_registry: RegistryServer) -> None:
    repo = repo_on(open_registry.host)
    manifest, _ = push_manifest(repo, "a")
    for tag in ("b", "c"):
        repo.put_manifest(tag, manifest, OCI_MANIFEST)
    assert sorted(repo.tags()) == ["a", "b", "c"]


def test_tags_follow_link_pagination(fault_proxy: FaultProxy) -> None:
    """distribution 2.8 ignores `n`, so the pages come from the proxy, in the spec's shape (relative and absolute Link)."""
    repo = repo_on(fault_proxy.host)
    base = f"/v2/{repo.name}/tags/list"

    def page(tags: list[str], following: str | None) -> Fault:
        headers = {"Link": f'<{following}>; rel="next"'} if following else {}
        return Fault("replace", "", status=200, headers=headers, body=json.dumps({"name": repo.name, "tags": tags}).encode())

    first = page(["a", "b"], f"{base}?n=2&last=b")
    first.path = r"tags/list\?n=2$"
    second = page(["c", "d"], f"http://{fault_proxy.host}{base}?n=2&last=d")
    second.path = r"last=b"
    third = page(["e"], None)
    third.path = r"last=d"
    fault_proxy.inject(first, second, third)
    assert repo.tags(page_size=2) == ["a", "b", "c", "d", "e"]
    assert [path for _, path, _ in fault_proxy.requests if "tags/list" in path] == [f"{base}?n=2", f"{base}?n=2&last=b", f"{base}?n=2&last=d"]


def test_a_location_and_a_link_relative_to_the_request_path_are_resolved_against_it(fault_proxy: FaultProxy) -> None:
    """RFC 3986 references without a leading slash (`<uuid>?_state=...`, `list?last=a`) are relative to the path
    of the request that got them, not to the registry's root."""
    repo = repo_on(fault_proxy.host)
    relative = repo.start_upload().split("/blobs/uploads/", 1)[1]
    fault_proxy.inject(Fault("replace", r"/blobs/uploads/$", method="POST", status=202, headers={"Location": relative}, body=b" "))
    assert repo.blob_size(upload(repo, b"data")) == 4
    first = Fault("replace", r"tags/list$", status=200, headers={"Link": '<list?last=a>; rel="next"'}, body=b'{"tags": ["a"]}')
    second = Fault("replace", r"tags/list\?last=a$", status=200, body=b'{"tags": ["b"]}')
    fault_proxy.inject(first, second)
    assert repo.tags() == ["a", "b"]


def test_tags_pagination_loop_is_an_error(fault_proxy: FaultProxy) -> None:
    repo = repo_on(fault_proxy.host)
    loop = f"/v2/{repo.name}/tags/list?last=a"
    body = json.dumps({"name": repo.name, "tags": ["a"]}).encode()
    fault_proxy.inject(Fault("replace", "tags/list", times=5, status=200, headers={"Link": f'<{loop}>; rel="next"'}, body=body))
    with pytest.raises(RegistryError, match="loops"):
        repo.tags()


def test_schema1_is_refused_with_a_clear_message(fault_proxy: FaultProxy) -> None:
    body = json.dumps({"schemaVersion": 1, "name": "x", "tag": "v1", "fsLayers": []}).encode()
    fault_proxy.inject(Fault("replace", r"/manifests/", status=200, headers={"Content-Type": DOCKER_SCHEMA1_SIGNED}, body=body))
    with pytest.raises(InvalidManifest, match="schema 1"):
        repo_on(fault_proxy.host).get_manifest("v1")


def test_manifest_over_4_mib_is_refused(fault_proxy: FaultProxy) -> None:
    body = b'{"schemaVersion":2,"pad":"' + b"x" * (4 << 20) + b'"}'
    fault_proxy.inject(Fault("replace", r"/manifests/", status=200, headers={"Content-Type": OCI_MANIFEST}, body=body))
    with pytest.raises(InvalidManifest, match="limit"):
        repo_on(fault_proxy.host).get_manifest("v1")


class _EndlessManifest(http.server.BaseHTTPRequestHandler):
    """Answers every manifest GET with a chunked body that does not end before CEILING bytes (so a
    client that reads it all still finishes); `server.sent` counts what the client accepted."""

    protocol_version = "HTTP/1.1"
    CEILING = 256 << 20
    server: _CountingServer

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        if "/manifests/" not in self.path:
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")
            return
        self.send_response(200)
        self.send_header("Content-Type", OCI_MANIFEST)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        chunk = b'{"schemaVersion":2,"pad":"' + b"x" * (64 << 10)
        try:
            while self.server.sent < self.CEILING:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.server.sent += len(chunk)
                chunk = b"x" * (64 << 10)
            self.wfile.write(b'2\r\n"}\r\n0\r\n\r\n')  # the ceiling: a well-formed end, so only the count can tell
        except OSError:
            pass  # the client hung up: what we want
        finally:
            self.close_connection = True
            self.server.done.set()


class _CountingServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _EndlessManifest)
        self.sent = 0
        self.done = threading.Event()


def test_an_endless_manifest_is_cut_off_at_the_cap_while_it_streams() -> None:
    """No Content-Length, a body that never ends: the read stops at the cap instead of reading it all
    and judging the size afterwards (the JSON loader's own limit would only act after everything)."""
    with serving(_CountingServer()) as server:
        with pytest.raises(InvalidManifest, match="limit"):
            repo_on(f"127.0.0.1:{server.server_address[1]}").get_manifest("v1")
        assert server.done.wait(60)
        # What the client took is the cap plus what the kernel buffers held (at most tens of MiB), far below the ceiling.
        assert MAX_MANIFEST_BYTES < server.sent < 64 << 20


class _BareRegistry(http.server.BaseHTTPRequestHandler):
    """Answers that the fault proxy cannot give (it always adds Content-Type and Content-Length): a blob HEAD
    without Content-Length, a manifest HEAD without Content-Type, a manifest GET announcing more than the cap
    and sending nothing; `/moved/...` is answered 302 to `/there/...`; `server.seen` records method and path."""

    server: _RecordingServer
    DIGEST = str(Digest.of_bytes(b"{}"))

    def log_message(self, *args: object) -> None:
        pass

    def do_HEAD(self) -> None:
        self.server.seen.append(("HEAD", self.path))
        if self.path.startswith("/moved/"):
            self.send_response(302)
            self.send_header("Location", self.path.replace("/moved/", "/there/", 1))
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Docker-Content-Digest", self.DIGEST)
        if "/manifests/" in self.path or self.path.startswith("/there/"):
            self.send_header("Content-Length", "2")
        self.end_headers()

    def do_GET(self) -> None:
        self.server.seen.append(("GET", self.path))
        self.send_response(200)
        if "/manifests/" in self.path:
            self.send_header("Content-Type", OCI_MANIFEST)
            self.send_header("Content-Length", str(MAX_MANIFEST_BYTES + 1))
        else:
            self.send_header("Content-Length", "2")
        self.end_headers()
        if "/manifests/" not in self.path:
            self.wfile.write(b"{}")


class _RecordingServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _BareRegistry)
        self.seen: list[tuple[str, str]] = []


def test_answers_without_content_length_or_content_type_and_a_head_redirected() -> None:
    """A blob HEAD without Content-Length is a RegistryError, a manifest HEAD without Content-Type has no media
    type, a manifest announced over the cap is refused before its body is read (which never comes), and a HEAD
    redirected with 302 stays a HEAD (a GET would download the blob)."""
    with serving(_RecordingServer()) as server:
        host = f"127.0.0.1:{server.server_address[1]}"
        repo = repo_on(host)
        digest = Digest.of_bytes(b"{}")
        with pytest.raises(RegistryError, match="without a valid Content-Length"):
            repo.blob_size(digest)
        assert repo.head_manifest("v1") == Descriptor("", digest, 2)
        with pytest.raises(InvalidManifest, match=f"is {MAX_MANIFEST_BYTES + 1} bytes"):
            repo.get_manifest("v1")
        moved = Repository(Transport(host, prefix="/moved"), "r")
        assert moved.blob_size(digest) == 2
        assert moved.head_manifest(str(digest)) == Descriptor("", digest, 2)
        assert [entry for entry in server.seen if "/there/" in entry[1]] == [("HEAD", f"/there/v2/r/blobs/{digest}"), ("HEAD", f"/there/v2/r/manifests/{digest}")]


def test_media_type_must_agree_with_content_type(open_registry: RegistryServer, fault_proxy: FaultProxy) -> None:
    repo = repo_on(fault_proxy.host)
    manifest, _ = push_manifest(repo, "v1")
    fault_proxy.inject(Fault("replace", r"/manifests/", status=200, headers={"Content-Type": OCI_INDEX}, body=manifest))
    with pytest.raises(InvalidManifest, match="differs from Content-Type"):
        repo.get_manifest("v1")


def test_wrong_docker_content_digest_by_tag_is_a_mismatch(fault_proxy: FaultProxy) -> None:
    repo = repo_on(fault_proxy.host)
    push_manifest(repo, "v1")
    fault_proxy.inject(Fault("digest", r"/manifests/v1"))
    with pytest.raises(DigestMismatch, match="Docker-Content-Digest"):
        repo.get_manifest("v1")


def test_manifest_fetched_by_digest_must_hash_to_it(fault_proxy: FaultProxy) -> None:
    repo = repo_on(fault_proxy.host)
    manifest, digest = push_manifest(repo, "v1")
    other, _ = push_manifest(repo, "v2", layer=b"other layer")
    fault_proxy.inject(Fault("replace", r"/manifests/sha256:", status=200, headers={"Content-Type": OCI_MANIFEST}, body=other))
    with pytest.raises(DigestMismatch):
        repo.get_manifest(str(digest))


@pytest.mark.parametrize("length", ["", "lots"])
def test_head_with_a_malformed_content_length_is_an_error(fault_proxy: FaultProxy, length: str) -> None:
    headers = {"Docker-Content-Digest": str(Digest.of_bytes(b"x")), "Content-Length": length}
    fault_proxy.inject(Fault("replace", "/blobs/", method="HEAD", status=200, headers=headers))
    with pytest.raises(RegistryError, match="Content-Length"):
        repo_on(fault_proxy.host).blob_size(Digest.of_bytes(b"x"))


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        ({"schemaVersion": 2, "layers": []}, "application/json", OCI_MANIFEST),  # no mediaType, a generic Content-Type: guessed from the shape
        ({"schemaVersion": 2, "manifests": []}, "application/json", OCI_INDEX),
        ({"schemaVersion": 2, "mediaType": "", "layers": []}, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST_LIST),  # an empty mediaType is no mediaType
        ({"schemaVersion": 2}, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST_LIST),
        ({"schemaVersion": 1, "fsLayers": []}, "application/json", "InvalidManifest: r:v1 is a Docker schema 1 manifest"),
        ({"schemaVersion": 2, "mediaType": "application/x-other"}, "application/json", "InvalidManifest: manifest r:v1 has unsupported media type 'application/x-other'"),
    ],
)
def test_the_media_type_comes_from_the_manifest_then_content_type_then_its_shape(body: dict[str, object], content_type: str, expected: str) -> None:
    data = json.dumps(body).encode()
    if expected.startswith("InvalidManifest: "):
        with pytest.raises(InvalidManifest, match="^" + expected.removeprefix("InvalidManifest: ").replace("(", r"\(")):
            Repository._check_media_type(data, content_type, "r:v1")
    else:
        assert Repository._check_media_type(data, content_type, "r:v1") == expected


def test_a_manifest_to_push_may_be_exactly_the_cap() -> None:
    repo = Repository(Transport("127.0.0.1:9"), "r")  # never reached: both refusals come before the request
    with pytest.raises(DigestMismatch, match="^manifest to push"):
        repo.put_manifest(str(Digest.of_bytes(b"other")), b"x" * MAX_MANIFEST_BYTES, OCI_MANIFEST)
    with pytest.raises(InvalidManifest, match=f"^manifest is {MAX_MANIFEST_BYTES + 1} bytes, over the {MAX_MANIFEST_BYTES}-byte limit"):
        repo.put_manifest("v1", b"x" * (MAX_MANIFEST_BYTES + 1), OCI_MANIFEST)


def test_a_registry_that_names_another_digest_for_a_pushed_manifest_is_a_mismatch(open_registry: RegistryServer, fault_proxy: FaultProxy) -> None:
    repo = repo_on(fault_proxy.host)
    push_manifest(repo, "v1")
    manifest, digest = push_manifest(repo, "v2")
    fault_proxy.inject(Fault("digest", r"/manifests/v3", method="PUT"))
    with pytest.raises(DigestMismatch, match=f"^manifest pushed to {repo.name}:v3"):
        repo.put_manifest("v3", manifest, OCI_MANIFEST)
    assert repo.put_manifest("v4", manifest, OCI_MANIFEST) == digest  # the header agrees: fine


def test_a_manifest_of_exactly_the_cap_is_read(fault_proxy: FaultProxy) -> None:
    body = b'{"schemaVersion":2,"mediaType":"' + OCI_MANIFEST.encode() + b'","pad":"'
    body += b"x" * (MAX_MANIFEST_BYTES - len(body) - 2) + b'"}'
    fault_proxy.inject(Fault("replace", r"/manifests/", status=200, headers={"Content-Type": OCI_MANIFEST}, body=body))
    assert len(repo_on(fault_proxy.host).get_manifest("v1").data) == MAX_MANIFEST_BYTES


@pytest.mark.parametrize("content_range", [None, "bytes 0-9/10"])
def test_a_partial_answer_must_start_where_it_was_asked(fault_proxy: FaultProxy, content_range: str | None) -> None:
    headers = {"Content-Range": content_range} if content_range else {}
    fault_proxy.inject(Fault("replace", "/blobs/", status=206, headers=headers, body=b"0123456789"))
    with pytest.raises(RegistryError, match="with the wrong range$"):
        repo_on(fault_proxy.host).get_blob(Digest.of_bytes(b"x" * 10), offset=5)


@pytest.mark.parametrize("tags", ['"abc"', '["a", 1]'])
def test_a_tag_list_that_is_not_a_list_of_strings_is_refused(fault_proxy: FaultProxy, tags: str) -> None:
    body = b'{"name": "x", "tags": %s}' % tags.encode()
    fault_proxy.inject(Fault("replace", "/tags/list", status=200, headers={"Content-Type": "application/json"}, body=body))
    with pytest.raises(InvalidManifest, match="'tags' is not a list of strings"):
        repo_on(fault_proxy.host).tags()


def test_a_registry_that_names_another_digest_for_an_uploaded_blob_is_a_mismatch(fault_proxy: FaultProxy) -> None:
    """The registry checks the digest of a finished upload; when it then names another one, what it stored is not
    what we sent, and the push must not go on as if it were."""
    repo = repo_on(fault_proxy.host)
    fault_proxy.inject(Fault("digest", r"/blobs/uploads/", method="PUT"))
    wrong = "sha256:" + "0" * 64
    with pytest.raises(DigestMismatch, match=f"^blob uploaded to {repo.name}: expected {Digest.of_bytes(b'blob')}, got {wrong}$"):
        upload(repo, b"blob")
    assert read_blob(repo, upload(repo, b"named right")) == b"named right"  # the header agrees: fine


def test_a_manifest_sent_gzip_compressed_is_read_and_hashed_decompressed(fault_proxy: FaultProxy) -> None:
    """Content-Encoding is the transfer's, not the manifest's: the digest is of the decompressed bytes."""
    repo = repo_on(fault_proxy.host)
    manifest, digest = push_manifest(repo, "v1")
    headers = {"Content-Type": OCI_MANIFEST, "Content-Encoding": "gzip", "Docker-Content-Digest": str(digest)}
    fault_proxy.inject(Fault("replace", r"/manifests/", status=200, times=2, headers=headers, body=gzip.compress(manifest)))
    assert repo.get_manifest("v1").data == manifest
    assert repo.get_manifest(str(digest)).digest == digest
