"""The store root: the OCI image layout plus imagekit's own state, and finding images in it.

ROOT *is* an OCI image layout (`oci-layout`, `index.json`, `blobs/`), so `skopeo`, `umoci` and
`oci-image-tool` read it directly. imagekit's other state lives in directories beside `blobs/`
(`layers/` extracted layers, `snapshots/` active snapshots, `cache/` build cache, `containers/`, `volumes/`), created on first use;
the OCI tools ignore them. Only index.json roots keep blobs alive: state that names digests elsewhere
must cope with garbage collection removing them (treat a missing blob as a cache miss).

Images are found as docker finds them: by reference (normalised, so `busybox` means
`docker.io/library/busybox:latest`), by `name@digest`, or by a prefix of the image ID, which is the
digest of the image's config (`docker images` shows its first 12 hex digits).

Imports: stdlib, imagekit.errors, digest, oci, image, reference, layout, platforms, log.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path

from imagekit.digest import Digest
from imagekit.errors import BadReference, ImageConflict, ImageNotFound, InvalidManifest, PlatformNotFound, StoreError
from imagekit.image import Image
from imagekit.layout import GarbageReport, Layout
from imagekit.log import logger
from imagekit.oci import INDEX_TYPES, MANIFEST_TYPES, REF_NAME, Descriptor, Index
from imagekit.platforms import host, select
from imagekit.reference import Reference, parse_reference
from imagekit.values import value

STATE_DIRS = ("layers", "snapshots", "cache", "containers", "volumes")
IMAGE_TYPES = MANIFEST_TYPES | INDEX_TYPES
_ID_PREFIX = re.compile(r"(?:sha256:)?([a-f0-9]{1,64})")

@value
class StoredImage:
    """One image in the store: the entry of index.json that names it, its manifest descriptor
    (for an index, the host platform's manifest), the Image, and every ref name it carries."""

    entry: Descriptor
    descriptor: Descriptor
    image: Image
    names: tuple[str, ...]

    @property
    def id(self) -> Digest:
        """The image ID, as docker defines it: the digest of the config blob."""
        return self.image.manifest.config.digest

    @property
    def size(self) -> int:
        """Bytes this image's blobs take in the store (manifest, config and compressed layers)."""
        return self.descriptor.size + sum(d.size for d in self.image.blobs())

    @property
    def created(self) -> str:
        created = self.image.config.get("created")
        return created if isinstance(created, str) else ""

    def references(self) -> list[Reference]:
        """The ref names that are valid references, normalised (`x` written by another tool is
        `docker.io/library/x:latest`); names that are no references are skipped."""
        found = []
        for name in self.names:
            try:
                found.append(parse_reference(name))
            except BadReference:
                continue
        return found


class Store:
    """The store at `root`: its Layout (blobs and refs), state directories, lookup, listing and gc."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.layout = Layout(self.root)

    def state_dir(self, name: str) -> Path:
        """ROOT/<name> for imagekit's own state (`layers`, `snapshots`, `cache`, `containers`, `volumes`), created on demand."""
        if name not in STATE_DIRS:
            raise ValueError(f"unknown state directory {name!r}")
        path = self.root / name
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise StoreError(f"cannot create {path}: {err.strerror}") from err
        return path

    # --- finding images ------------------------------------------------------------------------------------
    def images(self) -> list[StoredImage]:
        """Every image index.json roots, once per entry, in index order (the listing of `imagekit images`):
        named ones once per name, and dangling ones (an entry without a name, as `import` without a
        reference leaves, or an image whose last name moved to another) once as `<none>`.

        Entries that are not images (artifacts other tools put in the layout) are left out, and so is
        an unnamed entry of an image that also has a name."""
        return [
            self._load(entry, names)
            for entry, names in self._entries()
            if entry.media_type in IMAGE_TYPES and (REF_NAME in entry.annotations or not names)
        ]

    def dangling(self) -> list[StoredImage]:
        """Images without any name, as `docker images -f dangling=true` lists them."""
        return [stored for stored in self.images() if not stored.names]

    def find(self, text: str) -> StoredImage:
        """The image `text` names: a reference, `name@digest`, an image ID or a unique prefix of one.

        A reference matches a ref name written in full (imagekit's own, `docker.io/library/x:1`) or
        in a short form other tools write (`x:1`, `x`, a bare tag): both sides are normalised, and
        when names of different images match, the full form wins and a warning says which was used.
        Failing that, a ref name exactly equal to `text` (one that is no valid reference) is found too.
        Raises BadReference for text that is neither a valid reference nor a hex ID prefix, and
        ImageNotFound (naming the store) when nothing matches or an ID prefix is ambiguous.
        """
        return self._lookup(text)[0]

    def _lookup(self, text: str) -> tuple[StoredImage, list[str] | None]:
        """The image `text` names and the ref names that matched (None when found by ID or digest)."""
        entries = list(self._entries())
        try:
            ref: Reference | None = parse_reference(text)
        except BadReference:
            if not _ID_PREFIX.fullmatch(text) and all(entry.annotations.get(REF_NAME) != text for entry, _ in entries):
                raise
            ref = None
        if ref is not None:
            found = self._find_reference(ref, entries)
            if found is not None:
                return found
        for entry, names in entries:
            if entry.annotations.get(REF_NAME) == text:
                return self._load(entry, names), [text]
        match = _ID_PREFIX.fullmatch(text)
        if match is not None:
            return self._find_id(match.group(1), text), None
        assert ref is not None
        raise ImageNotFound(f"no image {ref.familiar!r} in the store at {self.root}")

    def _find_reference(self, ref: Reference, entries: list[tuple[Descriptor, tuple[str, ...]]]) -> tuple[StoredImage, list[str] | None] | None:
        matching = [(entry, names) for entry, names in entries if _normalised(entry.annotations.get(REF_NAME)) == str(ref)]
        if matching:
            digests = {entry.digest for entry, _ in matching}
            chosen = next(((e, n) for e, n in matching if e.annotations[REF_NAME] == str(ref)), matching[0])
            if len(digests) > 1:
                others = ", ".join(repr(e.annotations[REF_NAME]) for e, _ in matching if e.digest != chosen[0].digest)
                logger(__name__).warning("%s matches %d names of different images in the store: using %r (not %s)",
                             ref.familiar, len(matching), chosen[0].annotations[REF_NAME], others)
            names = [e.annotations[REF_NAME] for e, _ in matching if e.digest == chosen[0].digest]
            return self._load(*chosen), names
        if ref.digest is None:
            return None
        # name@digest: any entry of that repository whose manifest (or a manifest in whose index) has the digest
        for entry, names in entries:
            if not any(_repository(name) == ref.name for name in names):
                continue
            if str(entry.digest) == ref.digest:
                return self._load(entry, names), None
            if entry.media_type in INDEX_TYPES:
                for child in self._index_children(entry):
                    if str(child.digest) == ref.digest:
                        return self._stored(entry, child, names), None
        return None

    def _find_id(self, prefix: str, text: str) -> StoredImage:
        candidates: dict[Digest, StoredImage] = {}
        for entry, names in self._entries():
            if entry.media_type not in IMAGE_TYPES:
                continue
            stored = self._load(entry, names)
            if stored.id.hex.startswith(prefix) or stored.descriptor.digest.hex == prefix:
                candidates.setdefault(stored.id, stored)
        if len(candidates) > 1:
            raise ImageNotFound(f"image ID prefix {text!r} is ambiguous in the store at {self.root}: matches {len(candidates)} images")
        if not candidates:
            raise ImageNotFound(f"no image {text!r} in the store at {self.root}")
        return next(iter(candidates.values()))

    def _entries(self) -> Iterator[tuple[Descriptor, tuple[str, ...]]]:
        """index.json entries with all the ref names that share each entry's digest."""
        entries = self.layout.index().manifests
        names: dict[Digest, list[str]] = {}
        for entry in entries:
            if REF_NAME in entry.annotations:
                names.setdefault(entry.digest, []).append(entry.annotations[REF_NAME])
        for entry in entries:
            yield entry, tuple(names.get(entry.digest, ()))

    def _index_children(self, entry: Descriptor) -> tuple[Descriptor, ...]:
        data = self.layout.read_blob(entry.digest)
        return Index.from_bytes(data, entry.media_type, what=f"image index {entry.digest}").manifests

    def _load(self, entry: Descriptor, names: tuple[str, ...]) -> StoredImage:
        if entry.media_type not in INDEX_TYPES:
            return self._stored(entry, entry, names)
        children = [c for c in self._index_children(entry) if c.media_type not in INDEX_TYPES]
        if not children:
            raise StoreError(f"image index {entry.digest} in the store at {self.root} lists no image manifests")
        try:
            chosen = select(children, host())
        except PlatformNotFound:
            chosen = children[0]
        return self._stored(entry, chosen, names)

    def _stored(self, entry: Descriptor, descriptor: Descriptor, names: tuple[str, ...]) -> StoredImage:
        return StoredImage(entry, descriptor, self.layout.image_at(descriptor), names)

    # --- changing refs -------------------------------------------------------------------------------------
    def tag(self, source: str, target: str) -> Reference:
        """Gives the image `source` names the additional name `target` (normalised); returns it."""
        stored = self.find(source)
        ref = parse_reference(target)
        if ref.digest is not None:
            raise BadReference(target, "a tag cannot carry a digest (the digest is the content's, not a name)")
        self.layout.set_ref(str(ref), stored.entry)
        return ref

    def untag(self, text: str, *, force: bool = False) -> tuple[StoredImage, list[str]]:
        """Removes the name `text` (every stored form of it); for `name@digest` the image's names in
        that repository; for an image ID every name of the image, which (as docker) needs `force` when
        they span several repositories, and for a dangling image (no name) the image itself. Returns
        the image and the names removed; blobs stay until `prune`."""
        stored, matched = self._lookup(text)
        if matched is not None:
            names = matched
        elif "@" in text:
            repository = _repository(text)
            names = [name for name in stored.names if _repository(name) == repository]
        else:
            names = list(stored.names)
            repositories = {_familiar_repository(name) for name in names}  # as `images` shows them
            if len(repositories) > 1 and not force:
                raise ImageConflict(
                    f"image {text!r} is named in {len(repositories)} repositories ({', '.join(sorted(repositories))}): "
                    "remove the names one by one, or force"
                )
            if not names:
                self.layout.remove_unnamed(stored.entry.digest)
        for name in names:
            self.layout.remove_ref(name)
        return stored, names

    def diff_ids(self, entries: Sequence[Descriptor] | None = None) -> set[str]:
        """The diff_ids of every image index.json roots (or `entries` root, some of its entries), each
        manifest of an index that is here: what extracted layers (imagekit.snapshots) are still worth keeping.

        An image whose manifest or config is missing or corrupt keeps nothing: it cannot be run or
        built on, so its layers would never be used (and `prune` says what is wrong with it).
        """
        found: set[str] = set()
        pending = list(self.layout.index().manifests if entries is None else entries)
        while pending:
            descriptor = pending.pop()
            try:
                if descriptor.media_type in INDEX_TYPES:
                    pending.extend(self._index_children(descriptor))
                elif descriptor.media_type in MANIFEST_TYPES:
                    found.update(self.layout.image_at(descriptor).diff_ids)
            except (StoreError, InvalidManifest):
                continue
        return found

    def prune_dangling(self) -> list[Digest]:
        """Removes every dangling image (one without a name), as `docker image prune` does, and
        returns their IDs; their blobs stay until `prune`."""
        removed = []
        for stored in self.dangling():
            if self.layout.remove_unnamed(stored.entry.digest):
                removed.append(stored.id)
        return removed

    def unused(self, used: set[str]) -> list[Descriptor]:
        """The index.json entries of images whose ID is not in `used` (the IDs containers were made from),
        named or not: what `docker image prune -a` removes. Entries that are not images stay."""
        return [entry for entry, names in self._entries()
                if entry.media_type in IMAGE_TYPES and str(self._load(entry, names).id) not in used]

    def prune_unused(self, used: set[str]) -> list[Digest]:
        """Removes the entries unused() names and returns the IDs of their images; blobs stay until `prune`."""
        removed: dict[Digest, None] = {}
        for entry in self.unused(used):
            name = entry.annotations.get(REF_NAME)
            removed[self._load(entry, ()).id] = None
            if name is not None:
                self.layout.remove_ref(name)
            else:
                self.layout.remove_unnamed(entry.digest)
        return list(removed)

    def prune(self) -> GarbageReport:
        """Removes every blob no index.json entry reaches (named or dangling) and the debris of killed
        writers (see Layout.collect_garbage)."""
        return self.layout.collect_garbage()


def _normalised(name: str | None) -> str | None:
    """A ref name as imagekit writes it (`x:1` -> `docker.io/library/x:1`), or None if it is no reference."""
    if not name:
        return None
    try:
        return str(parse_reference(name))
    except BadReference:
        return None


def _familiar_repository(name: str) -> str:
    try:
        return parse_reference(name).familiar_name
    except BadReference:
        return name


def _repository(name: str) -> str:
    try:
        return parse_reference(name, default_tag=False).name
    except BadReference:
        return ""
