"""Moving images between a registry and anything else: pull -> Image, download into a sink, push an Image.

A pull resolves a reference (by tag, or pinned by digest) to one image manifest, choosing a platform
from an index, and returns an Image whose blobs stream from the registry. `download` copies the blobs a
sink (the store) lacks, in parallel, each resumed with Range after a dropped connection and retried with
backoff; the sink verifies digest and size before a blob becomes visible, so nothing corrupt is ever
stored. `push` checks, mounts or uploads each blob in parallel, then puts the manifest; an upload that
fails or is interrupted (another upload failed, Ctrl-C) cancels its session with DELETE.

Blob origins (which repository a blob was pulled from) are data passed in by the caller, since this
package must not import imagekit.layout or imagekit.store.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import BinaryIO, Protocol, TypeVar

import requests

from imagekit.digest import CHUNK, Digest, VerifyingReader
from imagekit.errors import DigestMismatch, InvalidManifest, RegistryError
from imagekit.image import Image
from imagekit.oci import INDEX_TYPES, MANIFEST_TYPES, MAX_MANIFEST_BYTES, Descriptor, Index, Manifest, Platform
from imagekit.progress import Progress
from imagekit.registry.client import DEFAULT_CHUNK, STREAM_ERRORS, BrokenBody, FetchedManifest, Repository
from imagekit.platforms import host, select
from imagekit.registry.retry import RetryPolicy
from imagekit.values import value

T = TypeVar("T")
DEFAULT_WORKERS = 4
#: Resumes allowed per blob in total, so a server that drops every chunk cannot keep us forever.
_MAX_RESUMES = 50


class Cancelled(RegistryError):
    """Another transfer of the same operation failed, so this one stopped."""


def _pause(policy: RetryPolicy, attempt: int, err: BaseException) -> None:
    """Sleeps before retry number `attempt` (1-based) per the transport's policy; re-raises `err` when spent."""
    if attempt >= policy.attempts:
        raise err
    policy.sleep(policy.wait(attempt, getattr(err, "retry_after", None)))


def _refetching(fetch: Callable[[], T], policy: RetryPolicy) -> T:
    """Runs `fetch` again when what arrived was corrupted or cut off in transit.

    Failed requests are already retried by the Transport; this covers the bodies themselves.
    """
    attempt = 0
    while True:
        try:
            return fetch()
        except (DigestMismatch, BrokenBody) as err:
            attempt += 1
            _pause(policy, attempt, err)


def _reason(err: BaseException) -> str:
    """A retry's cause for a progress line: a few words, never digests or URLs (a final error has the details)."""
    if isinstance(err, DigestMismatch):
        return "content did not match its digest"
    if isinstance(err, BrokenBody):
        return "connection closed early"
    status = getattr(err, "status", None)
    return f"HTTP {status}" if status else type(err).__name__


def _one_line(err: BaseException) -> str:
    text = str(err).splitlines()[0] if str(err) else ""
    return f"{type(err).__name__}: {text[:160]}" if text else type(err).__name__


class BlobReader:
    """A registry blob as a file object that survives dropped connections.

    A failed or short read reopens the blob with `Range: bytes=<offset>-` and continues where it broke
    (if the registry answers 200 instead of 206, the bytes already delivered are skipped). It does not
    verify: wrap it in a VerifyingReader, or hand it to a sink that checks digest and size.
    """

    def __init__(
        self,
        repo: Repository,
        descriptor: Descriptor,
        *,
        on_bytes: Callable[[int], None] | None = None,
        on_resume: Callable[[int, str], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> None:
        self._repo = repo
        self._descriptor = descriptor
        self._retry = repo.transport.retry
        self._on_bytes = on_bytes
        self._on_resume = on_resume
        self._cancel = cancel
        self._response: requests.Response | None = None
        self._offset = 0
        self._resumes = 0

    def _open(self) -> None:
        response = self._repo.get_blob(self._descriptor.digest, self._offset)
        if self._offset and response.status_code == 200:
            skip = self._offset
            while skip:
                data = response.raw.read(min(skip, CHUNK))
                if not data:
                    response.close()
                    raise BrokenBody(f"blob {self._descriptor.digest} ended while skipping to the resume offset")
                skip -= len(data)
        self._response = response

    def _drop(self) -> None:
        if self._response is not None:
            self._response.close()
            self._response = None

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            return b"".join(iter(lambda: self.read(CHUNK), b""))
        attempt = 0
        while True:
            if self._cancel is not None and self._cancel.is_set():
                self._drop()
                raise Cancelled(f"download of blob {self._descriptor.digest} cancelled")
            try:
                if self._response is None:
                    self._open()  # the Transport retries a failed request; here we retry broken bodies
                assert self._response is not None
                chunk = self._response.raw.read(size)
                if not chunk and self._offset < self._descriptor.size:
                    raise BrokenBody(f"blob {self._descriptor.digest} ended at {self._offset} of {self._descriptor.size} bytes")
            except (BrokenBody, *STREAM_ERRORS) as err:
                self._drop()
                attempt += 1
                self._resumes += 1
                if attempt >= self._retry.attempts or self._resumes > _MAX_RESUMES:
                    raise RegistryError(f"download of blob {self._descriptor.digest} failed: {_one_line(err)}") from err
                self._retry.sleep(self._retry.wait(attempt))
                if self._on_resume is not None:
                    self._on_resume(self._offset, _reason(err))
                continue
            self._offset += len(chunk)
            if self._on_bytes is not None:
                self._on_bytes(len(chunk))
            return chunk

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._drop()

    def __enter__(self) -> BlobReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RegistrySource:
    """A repository as the BlobSource of an Image; small blobs already fetched (the config) come from memory."""

    def __init__(self, repo: Repository) -> None:
        self.repo = repo
        self._cached: dict[Digest, bytes] = {}

    def open_blob(self, descriptor: Descriptor) -> BinaryIO:
        data = self._cached.get(descriptor.digest)
        if data is not None:
            return io.BytesIO(data)
        return BlobReader(self.repo, descriptor)  # type: ignore[return-value]

    def cached(self, digest: Digest) -> bytes | None:
        """A small blob already fetched whole (the config), or None."""
        return self._cached.get(digest)

    def read_small(self, descriptor: Descriptor, what: str) -> bytes:
        """Fetches a small blob (a config) whole, verified, capped at the manifest limit, and keeps it."""
        if descriptor.size > MAX_MANIFEST_BYTES:
            raise InvalidManifest(f"{what} is {descriptor.size} bytes, over the {MAX_MANIFEST_BYTES}-byte limit")

        def fetch() -> bytes:
            with VerifyingReader(BlobReader(self.repo, descriptor), descriptor.digest, descriptor.size, what) as r:  # type: ignore[arg-type]
                return r.read()

        data = _refetching(fetch, self.repo.transport.retry)
        self._cached[descriptor.digest] = data
        return data


@value
class Pulled:
    """The result of resolving a reference: the chosen image, and the digest the reference named."""

    image: Image
    digest: Digest
    index: FetchedManifest | None = None


def pull(repo: Repository, reference: str, platform: Platform | None = None) -> Pulled:
    """Resolves a tag or digest in `repo` to one image (platform chosen from an index; default: this host's).

    Only manifests and the config are fetched here; layers stream later from the Image's source. A
    digest reference pins content: the fetched bytes must hash to it, and an index's child is fetched by
    its digest too.
    """
    retry = repo.transport.retry
    top = _refetching(lambda: repo.get_manifest(reference), retry)
    fetched, index = top, None
    if top.is_index:
        index = top
        entries = Index.from_bytes(top.data, top.media_type, what=f"index {repo.name}:{reference}").manifests
        entry = select(entries, platform or host())
        if entry.media_type in INDEX_TYPES:
            raise InvalidManifest(f"index {repo.name}:{reference} nests another index for {entry.platform}; not supported")
        fetched = _refetching(lambda: repo.get_manifest(str(entry.digest)), retry)
        if fetched.is_index:
            raise InvalidManifest(f"index {repo.name}:{reference} entry {entry.digest} is itself an index; not supported")
    if fetched.media_type not in MANIFEST_TYPES:
        raise InvalidManifest(f"{repo.name}:{reference} is a {fetched.media_type}, not an image manifest")
    manifest = Manifest.from_bytes(fetched.data, fetched.media_type)
    source = RegistrySource(repo)
    config = source.read_small(manifest.config, f"config of {repo.name}:{reference}")
    return Pulled(Image(fetched.data, config, source, fetched.media_type), top.digest, index)


class BlobSink(Protocol):
    """Where downloads land (imagekit.layout.Layout fits): verifies before a blob becomes visible."""

    def has_blob(self, digest: Digest) -> bool: ...

    def write_blob(self, stream: BinaryIO, expected: Digest | None = None, size: int | None = None) -> tuple[Digest, int]:
        """Copies the stream; raises DigestMismatch (storing nothing) unless it hashes to `expected` at `size`."""
        ...


def _unique(descriptors: Sequence[Descriptor]) -> list[Descriptor]:
    seen: dict[Digest, Descriptor] = {}
    for d in descriptors:
        seen.setdefault(d.digest, d)
    return list(seen.values())


def _run_parallel(jobs: Sequence[Callable[[threading.Event], None]], workers: int) -> None:
    """Runs jobs on a bounded pool; the first failure cancels the rest (via the event) and is raised."""
    if not jobs:
        return
    cancel = threading.Event()
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(jobs))), thread_name_prefix="imagekit-xfer") as pool:
        futures = [pool.submit(job, cancel) for job in jobs]
        try:
            wait(futures, return_when=FIRST_EXCEPTION)
        except BaseException:  # Ctrl-C: stop the workers at their next chunk, then let it propagate
            cancel.set()
            raise
        if any(f.done() and f.exception() is not None for f in futures):
            cancel.set()
            for f in futures:
                f.cancel()
    errors = [f.exception() for f in futures if not f.cancelled() and f.exception() is not None]
    first = next((e for e in errors if not isinstance(e, Cancelled)), errors[0] if errors else None)
    if first is not None:
        raise first


def download(
    image: Image,
    sink: BlobSink,
    *,
    workers: int = DEFAULT_WORKERS,
    progress: Progress | None = None,
) -> list[Digest]:
    """Copies into `sink` every blob of `image` it lacks, `workers` at a time; returns the digests fetched.

    Each blob streams straight into the sink (one pass, hashed once there); a dropped connection resumes
    with Range, a corrupt transfer is fetched again from scratch, and a blob that still fails aborts the
    whole download with that error. The image's source must be a RegistrySource.
    """
    progress = shown = progress or Progress()
    source = image.source
    if not isinstance(source, RegistrySource):
        raise TypeError("download() needs an Image pulled from a registry")
    policy = source.repo.transport.retry
    missing = []
    for descriptor in _unique(image.blobs()):
        if sink.has_blob(descriptor.digest):
            _progress_for(image, descriptor, progress).skip(descriptor.digest.short, "Already exists")
        else:
            missing.append(descriptor)
    for descriptor in missing:
        _progress_for(image, descriptor, progress).skip(descriptor.digest.short, "Waiting")

    def job(descriptor: Descriptor) -> Callable[[threading.Event], None]:
        key = descriptor.digest.short
        progress = _progress_for(image, descriptor, shown)

        def fetch_once(cancel: threading.Event) -> None:
            cached = source.cached(descriptor.digest)
            if cached is not None:
                sink.write_blob(io.BytesIO(cached), descriptor.digest, descriptor.size)
                progress.advance(key, len(cached))
                return
            reader = BlobReader(
                source.repo,
                descriptor,
                on_bytes=lambda n: progress.advance(key, n),
                on_resume=lambda at, why: progress.restart(key, at, why),
                cancel=cancel,
            )
            with reader:
                sink.write_blob(reader, descriptor.digest, descriptor.size)  # type: ignore[arg-type]

        def run(cancel: threading.Event) -> None:
            progress.start(key, descriptor.size, "Downloading")
            attempt = 0
            while True:
                try:
                    fetch_once(cancel)
                    break
                except DigestMismatch as err:
                    attempt += 1
                    progress.restart(key, 0, _reason(err))
                    _pause(policy, attempt, err)
            progress.finish(key, "Pull complete")

        return run

    _run_parallel([job(d) for d in missing], workers)
    return [d.digest for d in missing]


def _progress_for(image: Image, descriptor: Descriptor, progress: Progress) -> Progress:
    """Where a blob's events go: layers are shown, the config (small, read with the manifest) is not,
    as docker shows only layers."""
    return Progress() if descriptor.digest == image.manifest.config.digest else progress


class _Counting:
    """A stream that reports every read to a progress callback, and stops reading once `cancel` is set.

    Stopping inside the read is what ends an upload in flight when another one failed or on Ctrl-C:
    the upload then cancels its session (DELETE) instead of sending the rest of the blob.
    """

    def __init__(self, stream: BinaryIO, on_bytes: Callable[[int], None], cancel: threading.Event, what: str) -> None:
        self._stream = stream
        self._on_bytes = on_bytes
        self._cancel = cancel
        self._what = what

    def read(self, size: int) -> bytes:
        if self._cancel.is_set():
            raise Cancelled(f"{self._what} cancelled")
        chunk = self._stream.read(size)
        self._on_bytes(len(chunk))
        return chunk


def push(
    image: Image,
    repo: Repository,
    reference: str | None = None,
    *,
    origins: Mapping[Digest, Sequence[str]] | None = None,
    workers: int = DEFAULT_WORKERS,
    progress: Progress | None = None,
    chunk_size: int = DEFAULT_CHUNK,
) -> Digest:
    """Pushes the image's blobs (skipping those present, mounting those `origins` places in another
    repository of this registry), then its manifest under `reference` (a tag; default its digest).

    Returns the manifest digest. Blobs go first so the registry never sees a manifest with missing blobs.
    """
    shown = progress or Progress()
    policy = repo.transport.retry
    known = origins or {}
    blobs = _unique(image.blobs())
    for descriptor in blobs:
        _progress_for(image, descriptor, shown).skip(descriptor.digest.short, "Waiting")

    def job(descriptor: Descriptor) -> Callable[[threading.Event], None]:
        key = descriptor.digest.short
        progress = _progress_for(image, descriptor, shown)

        def upload(location: str | None, cancel: threading.Event) -> None:
            with image.source.open_blob(descriptor) as stream:
                counted = _Counting(stream, lambda n: progress.advance(key, n), cancel, f"upload of blob {descriptor.digest}")
                repo.upload_blob(counted, descriptor.digest, descriptor.size, location=location, chunk_size=chunk_size)  # type: ignore[arg-type]

        def run(cancel: threading.Event) -> None:
            if repo.blob_size(descriptor.digest) is not None:
                progress.skip(key, "Layer already exists")
                return
            location = None
            for source in known.get(descriptor.digest, ()):
                if source != repo.name:
                    location = repo.mount_blob(descriptor.digest, source)
                    if location is None:
                        progress.skip(key, f"Mounted from {source}")
                        return
                    break
            progress.start(key, descriptor.size, "Pushing")
            attempt = 0
            while True:
                if cancel.is_set():
                    if location is not None:  # the session a declined mount opened
                        repo.cancel_upload(location)
                    raise Cancelled(f"upload of blob {descriptor.digest} cancelled")
                try:
                    upload(location, cancel)
                    break
                except RegistryError as err:
                    if not err.temporary:
                        raise
                    attempt += 1
                    _pause(policy, attempt, err)  # a streamed body is sent once by the Transport: resend it all
                    location = None
                    progress.restart(key, 0, _reason(err))
            progress.finish(key, "Pushed")

        return run

    _run_parallel([job(d) for d in blobs], workers)
    media_type = image.manifest.media_type
    return repo.put_manifest(reference or str(image.digest), image.manifest_bytes, media_type)

