"""The OCI image layout on disk: blobs by digest, refs in index.json. The one place images live.

The layout is shared by concurrent imagekit processes and must survive SIGKILL at any instant:
- a blob is written to `tmp/` on the same filesystem, verified, fsynced and renamed into
  `blobs/<alg>/<hex>`, so a blob file, once visible, is complete and correct;
- index.json is rewritten to a temp file and renamed under an exclusive lock (`index.lock`), so
  readers see the old or the new index, and two writers never lose each other's refs;
- writers hold a shared lock on `gc.lock` from their first blob to their index update (`writing()`),
  and so does every temp file while it exists; garbage collection (`collect_garbage`) takes it
  exclusively, so gc never deletes a blob a writer is about to reference, and any file it finds in
  `tmp/` is debris of a killed writer. Only index.json is a gc root.
imagekit's other state (extracted layers, caches, containers) lives in other directories beside
`blobs/`; OCI tools ignore them. Refs are `org.opencontainers.image.ref.name` annotations holding
whatever name the caller gives (the CLI gives fully normalised references).

Imports: stdlib, imagekit.errors, digest, oci, image, fsutil.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import MappingProxyType

from imagekit.digest import CHUNK, Digest, Hasher
from imagekit.errors import BlobNotFound, DigestMismatch, ImageNotFound, ImagekitError, StoreError
from imagekit.fsutil import atomic_write, fsync_dir, locked, new_temp_file
from imagekit.image import Image
from imagekit.oci import (
    INDEX_TYPES,
    MANIFEST_TYPES,
    MAX_MANIFEST_BYTES,
    REF_NAME,
    Descriptor,
    Index,
    Manifest,
    canonical_json,
)
from imagekit.values import replace, value

TYPE_CHECKING = False  # typing's import is a run's start-up cost; its names are for the type checker
if TYPE_CHECKING:
    from typing import BinaryIO

LAYOUT_FILE = "oci-layout"
GC_LOCK = "gc.lock"
INDEX_LOCK = "index.lock"
LAYOUT_VERSION = {"imageLayoutVersion": "1.0.0"}


@contextlib.contextmanager
def _store_errors(root: Path, action: str) -> Iterator[None]:
    """Turns the OS errors a store write can meet into one StoreError line naming the store."""
    try:
        yield
    except ImagekitError:
        raise
    except OSError as err:
        if err.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            raise StoreError(f"store at {root} is not writable ({err.strerror}) while trying to {action}") from err
        if err.errno == errno.ENOSPC:
            raise StoreError(f"no space left on the device of the store at {root} while trying to {action}") from err
        raise StoreError(f"cannot {action} in the store at {root}: {err.strerror or err}") from err


class Layout:
    """An OCI image layout rooted at `root`; created on first write, validated on every read."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    # --- paths and set-up ------------------------------------------------------------------------------
    @property
    def tmp_dir(self) -> Path:
        return self.root / "tmp"

    def blob_path(self, digest: Digest) -> Path:
        return self.root / "blobs" / digest.algorithm / digest.encoded

    def exists(self) -> bool:
        return (self.root / LAYOUT_FILE).is_file()

    def _ensure(self) -> None:
        """Creates the layout skeleton if missing; idempotent and safe against concurrent callers."""
        if self.exists() and self.tmp_dir.is_dir():
            return
        with _store_errors(self.root, "create the store"):
            for sub in ("blobs/sha256", "tmp"):
                (self.root / sub).mkdir(parents=True, exist_ok=True)
            # Under the index lock: otherwise a second process creating the store at the same moment
            # could replace an index.json the first has already added a ref to.
            with locked(self.root / INDEX_LOCK):
                if not (self.root / "index.json").exists():
                    self._replace_file("index.json", Index(manifests=()).to_bytes())
            if not self.exists():
                self._replace_file(LAYOUT_FILE, canonical_json(LAYOUT_VERSION))

    @contextlib.contextmanager
    def _temp_file(self, prefix: str) -> Iterator[tuple[BinaryIO, str]]:
        """A temp file in `tmp/`, removed unless the caller renamed it away; gc waits while it exists.

        Holding the shared gc lock for the temp file's life is what lets gc treat every file it finds
        in `tmp/` while it holds the lock exclusively as debris of a killed writer.
        """
        with locked(self.root / GC_LOCK, exclusive=False):
            fd, tmp = new_temp_file(self.tmp_dir, prefix)
            try:
                with os.fdopen(fd, "wb") as out:
                    yield out, tmp
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)

    def _replace_file(self, name: str, data: bytes) -> None:
        """Replaces ROOT/name atomically, its temp file in `tmp/` under the shared gc lock (see _temp_file)."""
        with locked(self.root / GC_LOCK, exclusive=False):
            atomic_write(self.root / name, data, temp_dir=self.tmp_dir)

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Holds off garbage collection while a writer adds blobs and then refers to them."""
        self._ensure()
        with contextlib.ExitStack() as stack:
            with _store_errors(self.root, "lock the store"):
                stack.enter_context(locked(self.root / GC_LOCK, exclusive=False))
            yield  # the caller's own errors pass through untranslated

    # --- blobs -----------------------------------------------------------------------------------------
    def has_blob(self, digest: Digest) -> bool:
        return self.blob_path(digest).is_file()

    def open_blob(self, digest: Digest) -> BinaryIO:
        """Opens a stored blob for reading; the caller closes it."""
        try:
            return open(self.blob_path(digest), "rb")
        except FileNotFoundError as err:
            raise BlobNotFound(f"blob {digest} is missing from the store at {self.root}") from err

    def read_blob(self, digest: Digest, limit: int = MAX_MANIFEST_BYTES) -> bytes:
        """Reads a small blob (manifest, config, index) whole, checking its digest: the disk is not trusted."""
        with self.open_blob(digest) as blob:
            data = blob.read(limit + 1)
        if len(data) > limit:
            raise StoreError(f"blob {digest} in the store is larger than {limit} bytes")
        actual = Digest.of_bytes(data, digest.algorithm)
        if actual != digest:
            raise StoreError(f"blob {digest} in the store at {self.root} is corrupt (its content hashes to {actual})")
        return data

    @contextlib.contextmanager
    def blob_writer(self, algorithm: str = "sha256") -> Iterator[BlobWriter]:
        """Yields a writer whose bytes become a blob when the block ends without error; idempotent.

        The content is hashed as it is written, fsynced, and renamed to its digest's path; on error
        the temp file is removed and nothing becomes visible. `writer.digest`/`writer.size` are set
        after the block. The caller may check the digest inside the block (`writer.hasher`) and
        raise to discard. Call inside `writing()` if a ref will follow.
        """
        self._ensure()
        with contextlib.ExitStack() as stack:
            with _store_errors(self.root, "write a blob"):
                out, tmp = stack.enter_context(self._temp_file("blob."))
            writer = BlobWriter(out, Hasher(algorithm), self.root)
            yield writer  # errors of the caller's source pass through untranslated; the temp file goes
            with _store_errors(self.root, "write a blob"):
                out.flush()
                os.fsync(out.fileno())
                writer.digest, writer.size = writer.hasher.digest(), writer.hasher.size
                target = self.blob_path(writer.digest)
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(tmp, target)
                fsync_dir(target.parent)

    def write_blob(self, stream: BinaryIO, expected: Digest | None = None, size: int | None = None) -> tuple[Digest, int]:
        """Copies a stream into the store and returns (digest, size); idempotent.

        With `expected`, the content is verified before it becomes visible: a mismatch raises
        DigestMismatch and leaves nothing behind. Call inside `writing()` if a ref will follow.
        """
        with self.blob_writer(expected.algorithm if expected else "sha256") as writer:
            while chunk := stream.read(CHUNK):
                writer.write(chunk)
                if size is not None and writer.hasher.size > size:
                    raise DigestMismatch(f"blob {expected} size" if expected else "blob size", str(size), f"more than {size} bytes")
            digest = writer.hasher.digest()
            if size is not None and writer.hasher.size != size:
                raise DigestMismatch(f"blob {expected or digest} size", str(size), str(writer.hasher.size))
            if expected is not None and digest != expected:
                raise DigestMismatch(f"blob {expected}", str(expected), str(digest))
        return writer.digest, writer.size

    def write_bytes(self, data: bytes) -> Digest:
        """Stores a small blob (manifest, config) given as bytes; idempotent."""
        digest = Digest.of_bytes(data)
        if not self.has_blob(digest):
            self.write_blob(io.BytesIO(data), digest, len(data))
        return digest

    # --- index.json and refs -----------------------------------------------------------------------------
    def index(self) -> Index:
        """The layout's top-level index; a missing store reads as empty, a corrupt one is an error."""
        path = self.root / "index.json"
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return Index(manifests=())
        except OSError as err:
            raise StoreError(f"cannot read {path}: {err.strerror}") from err
        try:
            return Index.from_bytes(data, what=f"index.json of the store at {self.root}")
        except ImagekitError as err:
            raise StoreError(f"corrupt {path}: {err}") from err

    @contextlib.contextmanager
    def _updating_index(self) -> Iterator[list[Descriptor]]:
        """Yields the index entries as a mutable list; writes them back atomically on success."""
        self._ensure()
        with _store_errors(self.root, "update index.json"), locked(self.root / INDEX_LOCK):
            current = self.index()
            entries = list(current.manifests)
            yield entries
            self._replace_file("index.json", replace(current, manifests=tuple(entries)).to_bytes())

    def refs(self) -> list[tuple[str, Descriptor]]:
        """(ref name, manifest descriptor) for every named entry in index.json, in index order."""
        return [(d.annotations[REF_NAME], d) for d in self.index().manifests if REF_NAME in d.annotations]

    def resolve(self, ref: str) -> Descriptor:
        """The descriptor a ref name points at; ImageNotFound if none."""
        for name, descriptor in self.refs():
            if name == ref:
                return descriptor
        raise ImageNotFound(f"no image {ref!r} in the store at {self.root}")

    def set_ref(self, ref: str, descriptor: Descriptor) -> None:
        """Points `ref` at `descriptor` (whose blob must already be stored), replacing any old target.

        An old target left without any entry stays as an unnamed entry (docker's dangling image,
        kept until pruned), and an unnamed entry of `descriptor` gives way to the named one."""
        if not self.has_blob(descriptor.digest):
            raise BlobNotFound(f"cannot tag {ref!r}: blob {descriptor.digest} is not in the store")
        annotations = {k: v for k, v in descriptor.annotations.items() if k != REF_NAME} | {REF_NAME: ref}
        entry = replace(descriptor, annotations=MappingProxyType(annotations))
        with self._updating_index() as entries:
            replaced = [d for d in entries if d.annotations.get(REF_NAME) == ref]
            entries[:] = [d for d in entries if d.annotations.get(REF_NAME) != ref and not _unnamed_entry_of(d, descriptor.digest)]
            entries.append(entry)
            for old in replaced:
                if not any(d.digest == old.digest for d in entries):
                    entries.append(_without_name(old))

    def add_unnamed(self, descriptor: Descriptor) -> None:
        """Roots `descriptor` in index.json without a name (a dangling image) unless an entry has its digest."""
        if not self.has_blob(descriptor.digest):
            raise BlobNotFound(f"cannot keep {descriptor.digest}: the blob is not in the store")
        with self._updating_index() as entries:
            if not any(d.digest == descriptor.digest for d in entries):
                entries.append(_without_name(descriptor))

    def remove_unnamed(self, digest: Digest) -> bool:
        """Removes the unnamed entries of `digest`; False if there were none. The blobs stay until gc."""
        with self._updating_index() as entries:
            kept = [d for d in entries if not _unnamed_entry_of(d, digest)]
            removed = len(kept) != len(entries)
            entries[:] = kept
        return removed

    def remove_ref(self, ref: str) -> Descriptor:
        """Removes one ref name and returns what it pointed at; the blobs stay until gc."""
        with self._updating_index() as entries:
            for i, d in enumerate(entries):
                if d.annotations.get(REF_NAME) == ref:
                    del entries[i]
                    return d
        raise ImageNotFound(f"no image {ref!r} in the store at {self.root}")

    # --- images ------------------------------------------------------------------------------------------
    def image_at(self, descriptor: Descriptor) -> Image:
        """The Image whose manifest `descriptor` names; an index here is an error (pick a platform first)."""
        if descriptor.media_type in INDEX_TYPES:
            raise StoreError(f"{descriptor.digest} is an image index, not an image manifest")
        manifest_bytes = self.read_blob(descriptor.digest)
        manifest = Manifest.from_bytes(manifest_bytes, descriptor.media_type)
        config_bytes = self.read_blob(manifest.config.digest)
        return Image(manifest_bytes, config_bytes, _LayoutSource(self), manifest.media_type)

    def unstored_image(self, manifest_bytes: bytes, config_bytes: bytes, media_type: str) -> Image:
        """An Image whose layer blobs are in this layout but whose manifest and config are not (yet):
        what a builder has between steps."""
        return Image(manifest_bytes, config_bytes, _LayoutSource(self), media_type)

    def image(self, ref: str) -> Image:
        return self.image_at(self.resolve(ref))

    def write_image(self, image: Image, ref: str | None = None) -> Descriptor:
        """Copies every blob the image lacks here (verifying each), then its manifest, then names it.

        Blobs first, manifest next, ref last: at any instant of a crash, whatever is named is whole.
        """
        with self.writing():
            for descriptor in image.blobs():
                if not self.has_blob(descriptor.digest):
                    with image.open_verified(descriptor) as reader:
                        self.write_blob(reader, descriptor.digest, descriptor.size)
            self.write_bytes(image.manifest_bytes)
            descriptor = image.descriptor
            if ref is not None:
                self.set_ref(ref, descriptor)
        return descriptor


    # --- garbage collection ------------------------------------------------------------------------------
    def reachable(self, entries: Sequence[Descriptor] | None = None) -> set[Digest]:
        """Every blob reachable from index.json (or from `entries`, some of its entries: what would stay
        if the others went): the entries, and below them nested indexes, manifests, configs, layers and
        subjects. A missing or corrupt manifest on the way is an error, because what it would have kept
        alive cannot be known."""
        seen: set[Digest] = set()
        pending = list(self.index().manifests if entries is None else entries)
        while pending:
            descriptor = pending.pop()
            if descriptor.digest in seen:
                continue
            seen.add(descriptor.digest)
            if descriptor.media_type in INDEX_TYPES:
                pending.extend(Index.from_bytes(self.read_blob(descriptor.digest), descriptor.media_type, what=f"index {descriptor.digest}").manifests)
            elif descriptor.media_type in MANIFEST_TYPES:
                manifest = Manifest.from_bytes(self.read_blob(descriptor.digest), descriptor.media_type)
                pending.extend((manifest.config, *manifest.layers))
                if manifest.subject is not None:
                    pending.append(manifest.subject)
        return seen

    def collect_garbage(self) -> GarbageReport:
        """Deletes blobs unreachable from index.json and every file left in `tmp/`; returns what went.

        Runs under the exclusive gc lock, so it waits for writers inside `writing()` (or with a temp
        file open) to finish, and they wait for it: a blob a writer is about to reference is never
        deleted, and every temp file gc sees belongs to a writer that died. Interrupting gc at any
        point leaves a valid store (blobs go one by one, each unreachable).
        """
        if not self.exists():
            return GarbageReport()
        removed: list[tuple[Digest, int]] = []
        temp_files = debris_bytes = 0
        with _store_errors(self.root, "collect garbage"), locked(self.root / GC_LOCK):
            keep = self.reachable()
            for algorithm_dir in sorted((self.root / "blobs").iterdir()):
                if not algorithm_dir.is_dir():
                    continue
                for path in sorted(algorithm_dir.iterdir()):
                    digest = _digest_of_blob_path(algorithm_dir.name, path.name)
                    if (digest is not None and digest in keep) or path.is_dir():
                        continue
                    size = path.lstat().st_size
                    path.unlink()
                    if digest is not None:
                        removed.append((digest, size))
                    else:
                        debris_bytes += size
            if self.tmp_dir.is_dir():
                for path in self.tmp_dir.iterdir():
                    debris_bytes += _size_of(path)
                    if path.is_dir() and not path.is_symlink():
                        import shutil  # here: only gc needs it, and loading it is a tenth of `imagekit run`

                        shutil.rmtree(path)
                    else:
                        path.unlink()
                    temp_files += 1
        return GarbageReport(tuple(removed), temp_files, debris_bytes)


def _without_name(descriptor: Descriptor) -> Descriptor:
    annotations = {k: v for k, v in descriptor.annotations.items() if k != REF_NAME}
    return replace(descriptor, annotations=MappingProxyType(annotations))


def _unnamed_entry_of(entry: Descriptor, digest: Digest) -> bool:
    return entry.digest == digest and REF_NAME not in entry.annotations


def _size_of(path: Path) -> int:
    """Bytes a file, or a directory tree (not following symlinks), takes."""
    if not path.is_dir() or path.is_symlink():
        return path.lstat().st_size
    return sum(p.lstat().st_size for p in path.rglob("*") if not p.is_dir() or p.is_symlink())


def _digest_of_blob_path(algorithm: str, name: str) -> Digest | None:
    """The digest a blob file's path names, or None for a file that is not a blob (debris)."""
    try:
        return Digest(algorithm, name)
    except ImagekitError:
        return None


@value
class GarbageReport:
    """What a garbage collection removed: blobs (digest, bytes), temp files of dead writers (count), and the
    bytes of those and of other debris (files in `blobs/` not named by a digest): all count as reclaimed."""

    blobs: tuple[tuple[Digest, int], ...] = ()
    temp_files: int = 0
    debris_bytes: int = 0

    @property
    def bytes_freed(self) -> int:
        return sum(size for _, size in self.blobs) + self.debris_bytes


class BlobWriter:
    """The write end of a blob being added (see Layout.blob_writer): bytes in, hashed on the way."""

    def __init__(self, out: BinaryIO, hasher: Hasher, root: Path) -> None:
        self._out = out
        self._root = root
        self.hasher = hasher
        self.digest: Digest | None = None
        self.size = 0

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self.hasher.update(data)
        with _store_errors(self._root, "write a blob"):
            return self._out.write(data)

    def writable(self) -> bool:
        return True

    def flush(self) -> None:
        with _store_errors(self._root, "write a blob"):
            self._out.flush()


class _LayoutSource:
    """The layout as a BlobSource, so an Image read from it can be copied anywhere."""

    def __init__(self, layout: Layout) -> None:
        self._layout = layout

    def open_blob(self, descriptor: Descriptor) -> BinaryIO:
        return self._layout.open_blob(descriptor.digest)
