"""The distribution API v2 endpoints of one repository: manifests, blobs, uploads, mounts, tags.

Every call goes through a Transport (which owns scheme, auth, retries of bodyless requests and error
translation); this module owns the protocol: content negotiation, digest checks on what the registry
says, the upload state machine (POST, PATCH with Content-Range, PUT ?digest=), Location resolution and
Link pagination. It never buffers a blob: uploads stream from the caller's file object, downloads hand
back the streaming response. See the OCI distribution-spec v1.1 (spec.md) and /work/shared/REGISTRY-PROTOCOL.md.

Must not import imagekit.layout or imagekit.store.
"""

from __future__ import annotations

import contextlib
import http.client
import urllib.parse
from collections.abc import Iterator
from typing import BinaryIO

import requests
import urllib3

from imagekit.digest import CHUNK, Digest
from imagekit.errors import BadDigest, DigestMismatch, InvalidManifest, RegistryError
from imagekit.oci import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    INDEX_TYPES,
    MANIFEST_TYPES,
    MAX_MANIFEST_BYTES,
    OCI_INDEX,
    OCI_MANIFEST,
    SCHEMA1_TYPES,
    Descriptor,
    load_json,
)
from imagekit.registry.retry import RetryPolicy
from imagekit.registry.transport import Transport
from imagekit.values import value

#: What imagekit can read, most specific first; the OCI index must be there or Docker Hub answers 404.
MANIFEST_ACCEPT = ", ".join((OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST))
OCTET_STREAM = "application/octet-stream"
#: Upload chunk for PATCH: large enough that per-request overhead vanishes, small enough to resume cheaply.
DEFAULT_CHUNK = 64 << 20
_MAX_TAG_PAGES = 10_000
#: Cancelling an upload happens on the way out of a failure (or Ctrl-C): retry a dropped connection once, quickly.
_CANCEL_RETRY = RetryPolicy(attempts=2, base=0.05, cap=0.05)
#: What a broken connection surfaces as while a body streams (requests wraps some, urllib3 raises others).
STREAM_ERRORS = (requests.RequestException, urllib3.exceptions.HTTPError, http.client.HTTPException, OSError)


class BrokenBody(RegistryError):
    """A response body that broke off (connection dropped, fewer bytes than announced): worth another try."""

    def __init__(self, message: str) -> None:
        super().__init__(message, temporary=True)


@value
class FetchedManifest:
    """A manifest or index exactly as received, with its verified digest and its media type."""

    data: bytes
    media_type: str
    digest: Digest

    @property
    def descriptor(self) -> Descriptor:
        return Descriptor(self.media_type, self.digest, len(self.data))

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES


class UploadBody:
    """At most `length` bytes of a stream, as 1 MiB chunks with a length. Does not close the stream.

    With a length, requests sends Content-Length and streams the body (no chunked encoding); being an
    iterable rather than a file, urllib3 sends each 1 MiB chunk with one sendall instead of 16 KiB reads.
    """

    def __init__(self, stream: BinaryIO, length: int) -> None:
        self._stream = stream
        self._length = length

    def __len__(self) -> int:
        return self._length

    def __iter__(self) -> Iterator[bytes]:
        left = self._length
        while left > 0:
            chunk = self._stream.read(min(CHUNK, left))
            if not chunk:
                raise RegistryError(f"upload source ended {left} bytes early")
            left -= len(chunk)
            yield chunk


def _media_type(response: requests.Response) -> str:
    return response.headers.get("Content-Type", "").split(";")[0].strip()


def _content_length(response: requests.Response) -> int:
    """Content-Length as an int; a missing or malformed one (a hostile registry) is an error, not a crash."""
    value = response.headers.get("Content-Length", "").strip()
    if not value.isdigit():
        raise RegistryError(f"registry answered {response.request.method} {urllib.parse.urlsplit(response.url).path} without a valid Content-Length")
    return int(value)


def _header_digest(response: requests.Response) -> Digest | None:
    value = response.headers.get("Docker-Content-Digest")
    if not value:
        return None
    try:
        return Digest.parse(value.strip())
    except BadDigest as err:
        raise RegistryError(f"registry sent an invalid Docker-Content-Digest header: {err}") from err


def _as_digest(reference: str) -> Digest | None:
    """The digest a manifest reference names, or None for a tag."""
    return Digest.parse(reference) if ":" in reference else None


class Repository:
    """One repository (`name`, the path below the registry host) reached through a Transport."""

    def __init__(self, transport: Transport, name: str) -> None:
        self.transport = transport
        self.name = name
        self.pull_scope = f"repository:{name}:pull"
        self.push_scope = f"repository:{name}:pull,push"

    def __repr__(self) -> str:
        return f"Repository({self.transport.registry}/{self.name})"

    def _path(self, *parts: str) -> str:
        return f"/v2/{self.name}/" + "/".join(parts)

    # --- manifests -----------------------------------------------------------------------------------
    def get_manifest(self, reference: str) -> FetchedManifest:
        """Fetches a manifest or index by tag or digest and verifies it; refuses schema 1.

        By digest, the bytes must hash to it; by tag, they must hash to Docker-Content-Digest when the
        registry sends one. The body is read with a cap, so a hostile registry cannot exhaust memory.
        """
        where = f"{self.name}:{reference}" if ":" not in reference else f"{self.name}@{reference}"
        response = self.transport.request(
            "GET",
            self._path("manifests", reference),
            scopes=[self.pull_scope],
            expected=(200, 404),
            headers={"Accept": MANIFEST_ACCEPT},
            stream=True,
        )
        with response:
            if response.status_code == 404:
                raise RegistryError(f"manifest unknown: {where} not found on {self.transport.registry}", status=404)
            length = response.headers.get("Content-Length", "")
            if length.isdigit() and int(length) > MAX_MANIFEST_BYTES:
                raise InvalidManifest(f"manifest {where} is {length} bytes, over the {MAX_MANIFEST_BYTES}-byte limit")
            try:
                data = response.raw.read(MAX_MANIFEST_BYTES + 1, decode_content=True)
            except STREAM_ERRORS as err:
                raise BrokenBody(f"manifest {where}: the connection broke while reading it ({type(err).__name__})") from err
            content_type = _media_type(response)
            header = _header_digest(response)
        if len(data) > MAX_MANIFEST_BYTES:
            raise InvalidManifest(f"manifest {where} is over the {MAX_MANIFEST_BYTES}-byte limit")
        media_type = self._check_media_type(data, content_type, where)
        pinned = _as_digest(reference)
        expected = pinned or header
        actual = Digest.of_bytes(data, expected.algorithm if expected else "sha256")
        if expected is not None and actual != expected:
            what = f"manifest {where}" + ("" if pinned else " (Docker-Content-Digest header)")
            raise DigestMismatch(what, str(expected), str(actual))
        return FetchedManifest(data, media_type, actual)

    @staticmethod
    def _check_media_type(data: bytes, content_type: str, where: str) -> str:
        """The manifest's media type: its own `mediaType`, which must agree with Content-Type when both are known."""
        if content_type in SCHEMA1_TYPES:
            raise InvalidManifest(f"{where} is a Docker schema 1 manifest, which is deprecated and not supported; push it again with a current client")
        obj = load_json(data, f"manifest {where}")
        if obj.get("schemaVersion") == 1:
            raise InvalidManifest(f"{where} is a Docker schema 1 manifest, which is deprecated and not supported; push it again with a current client")
        declared = obj.get("mediaType")
        known = MANIFEST_TYPES | INDEX_TYPES
        if isinstance(declared, str) and declared:
            if content_type in known and declared != content_type:
                raise InvalidManifest(f"manifest {where}: mediaType {declared!r} differs from Content-Type {content_type!r}")
            media_type = declared
        elif content_type in known:
            media_type = content_type
        else:
            media_type = OCI_INDEX if "manifests" in obj else OCI_MANIFEST
        if media_type not in known:
            raise InvalidManifest(f"manifest {where} has unsupported media type {media_type!r}")
        return media_type

    def head_manifest(self, reference: str) -> Descriptor | None:
        """What a tag or digest points at (media type, digest, size), or None if absent. Free on Docker Hub."""
        response = self.transport.request(
            "HEAD",
            self._path("manifests", reference),
            scopes=[self.pull_scope],
            expected=(200, 404),
            headers={"Accept": MANIFEST_ACCEPT},
        )
        if response.status_code == 404:
            return None
        digest = _header_digest(response) or _as_digest(reference)
        if digest is None:
            raise RegistryError(f"registry answered HEAD of {self.name}:{reference} without Docker-Content-Digest")
        return Descriptor(_media_type(response), digest, _content_length(response))

    def put_manifest(self, reference: str, data: bytes, media_type: str) -> Digest:
        """Stores manifest bytes exactly as given under a tag or their digest; returns their digest.

        Content-Type is the manifest's own media type, with no parameters, as the spec requires.
        """
        if len(data) > MAX_MANIFEST_BYTES:
            raise InvalidManifest(f"manifest is {len(data)} bytes, over the {MAX_MANIFEST_BYTES}-byte limit")
        digest = Digest.of_bytes(data)
        pinned = _as_digest(reference)
        if pinned is not None and pinned != Digest.of_bytes(data, pinned.algorithm):
            raise DigestMismatch("manifest to push", str(pinned), str(Digest.of_bytes(data, pinned.algorithm)))
        response = self.transport.request(
            "PUT",
            self._path("manifests", reference),
            scopes=[self.push_scope],
            expected=(201, 200, 202),
            headers={"Content-Type": media_type},
            data=data,
        )
        header = _header_digest(response)
        if header is not None and header.algorithm == digest.algorithm and header != digest:
            raise DigestMismatch(f"manifest pushed to {self.name}:{reference}", str(digest), str(header))
        return digest

    # --- blobs ---------------------------------------------------------------------------------------
    def blob_size(self, digest: Digest) -> int | None:
        """HEAD of a blob: its size if the repository has it, None if not."""
        response = self.transport.request("HEAD", self._path("blobs", str(digest)), scopes=[self.pull_scope], expected=(200, 404))
        if response.status_code == 404:
            return None
        return _content_length(response)

    def get_blob(self, digest: Digest, offset: int = 0) -> requests.Response:
        """Starts streaming a blob, from `offset` with a Range request when resuming; the caller closes it.

        Status 206 means the registry honoured the range; 200 means it sent the whole blob again.
        Redirects (to a CDN) are followed by the Transport, which drops Authorization across hosts.
        """
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        response = self.transport.request(
            "GET", self._path("blobs", str(digest)), scopes=[self.pull_scope], expected=(200, 206), headers=headers, stream=True
        )
        if response.status_code == 206 and not response.headers.get("Content-Range", "").startswith(f"bytes {offset}-"):
            response.close()
            raise RegistryError(f"registry answered a range request for blob {digest} with the wrong range")
        return response

    # --- uploads -------------------------------------------------------------------------------------
    def _location(self, response: requests.Response) -> str:
        """The upload URL from Location, resolved against the request URL (it may be relative), query kept."""
        location = response.headers.get("Location")
        if not location:
            raise RegistryError(f"registry answered {response.request.method} of an upload in {self.name} without a Location header")
        return urllib.parse.urljoin(response.url, location)

    def mount_blob(self, digest: Digest, source: str) -> str | None:
        """Asks the registry to link a blob from repository `source`; None if mounted, else an open upload URL.

        A 202 means the registry declined (or ignores `from`) and started an upload session instead.
        """
        response = self.transport.request(
            "POST",
            self._path("blobs", "uploads/"),
            scopes=[self.push_scope, f"repository:{source}:pull"],
            expected=(201, 202),
            params={"mount": str(digest), "from": source},
            headers={"Content-Length": "0"},
        )
        return None if response.status_code == 201 else self._location(response)

    def start_upload(self) -> str:
        """Opens an upload session; returns its URL."""
        response = self.transport.request(
            "POST", self._path("blobs", "uploads/"), scopes=[self.push_scope], expected=(202,), headers={"Content-Length": "0"}
        )
        return self._location(response)

    def cancel_upload(self, location: str) -> None:
        """Abandons an upload session with DELETE, best effort: one quick retry, then its failure is
        ignored, since the registry expires sessions anyway and the caller is on its way out with an error."""
        with contextlib.suppress(RegistryError):
            self.transport.request("DELETE", location, scopes=[self.push_scope], expected=(204, 200, 202, 404), retry=_CANCEL_RETRY)

    def upload_blob(
        self,
        stream: BinaryIO,
        digest: Digest,
        size: int,
        *,
        location: str | None = None,
        chunk_size: int = DEFAULT_CHUNK,
    ) -> None:
        """Streams `size` bytes from `stream` as blob `digest`: one PUT when it fits in a chunk, else PATCHes.

        Chunks carry Content-Range `start-end` (inclusive); each answer's Location replaces the last.
        The registry checks the digest when the upload is closed with PUT ?digest=. Whatever stops the
        upload before the registry accepted it (a chunk or the PUT failing, the source failing, Ctrl-C)
        cancels the session with DELETE on its way out.
        """
        location = location or self.start_upload()
        try:
            if size > chunk_size:
                offset = 0
                while offset < size:
                    length = min(chunk_size, size - offset)
                    response = self.transport.request(
                        "PATCH",
                        location,
                        scopes=[self.push_scope],
                        expected=(202,),
                        headers={
                            "Content-Type": OCTET_STREAM,
                            "Content-Range": f"{offset}-{offset + length - 1}",
                            "Content-Length": str(length),
                        },
                        data=UploadBody(stream, length),
                    )
                    location = self._location(response)
                    offset += length
                body: UploadBody | bytes = b""
            else:
                body = UploadBody(stream, size)
            response = self.transport.request(
                "PUT",
                location,
                scopes=[self.push_scope],
                expected=(201, 204),
                params={"digest": str(digest)},
                headers={"Content-Type": OCTET_STREAM, "Content-Length": str(len(body))},
                data=body,
            )
        except BaseException:
            self.cancel_upload(location)
            raise
        header = _header_digest(response)
        if header is not None and header != digest:
            raise DigestMismatch(f"blob uploaded to {self.name}", str(digest), str(header))

    # --- tags ----------------------------------------------------------------------------------------
    def tags(self, page_size: int | None = None) -> list[str]:
        """Every tag of the repository, following `Link: <...>; rel="next"` pages (`n`/`last`)."""
        return [tag for page in self._tag_pages(page_size) for tag in page]

    def _tag_pages(self, page_size: int | None) -> Iterator[list[str]]:
        url = self._path("tags", "list")
        params = {"n": str(page_size)} if page_size else None
        seen: set[str] = set()
        for _ in range(_MAX_TAG_PAGES):
            response = self.transport.request("GET", url, scopes=[self.pull_scope], params=params)
            body = load_json(response.content, f"tag list of {self.name}")
            tags = body.get("tags") or []
            if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
                raise InvalidManifest(f"tag list of {self.name}: 'tags' is not a list of strings")
            yield tags
            following = response.links.get("next", {}).get("url")
            if not following:
                return
            url = urllib.parse.urljoin(response.url, following)
            if url in seen:
                raise RegistryError(f"tag list of {self.name}: the registry's Link pagination loops")
            seen.add(url)
            params = None
        raise RegistryError(f"tag list of {self.name}: more than {_MAX_TAG_PAGES} pages")
