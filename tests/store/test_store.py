"""imagekit.store and Layout gc in-process: finding images the ways docker does, listing, tagging,
and what garbage collection keeps (nested indexes, subjects) and removes (unreachable blobs, debris)."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from imagekit import platforms
from imagekit.digest import CHUNK, Digest
from imagekit.errors import BadReference, DigestMismatch, ImageConflict, ImageNotFound, StoreError
from imagekit.importer import import_tarball
from imagekit.layout import Layout
from imagekit.oci import OCI_CONFIG, OCI_INDEX, OCI_LAYER, OCI_MANIFEST, Descriptor, Index, Manifest, Platform, canonical_json
from imagekit.reference import parse_reference
from imagekit.store import STATE_DIRS, Store

AMD64 = Platform("linux", "amd64")


def _tar(name: str, content: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as archive:
        info = tarfile.TarInfo(name)
        info.size = len(content)
        archive.addfile(info, io.BytesIO(content))
    return buf.getvalue()


def _import(store: Store, ref: str | None, content: bytes = b"x") -> Digest:
    image = import_tarball(store.layout, io.BytesIO(_tar("f", content)), parse_reference(ref) if ref else None, platform=AMD64)
    return image.digest


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "store")


def test_find_by_reference_normalised(store: Store) -> None:
    digest = _import(store, "demo/app:1")
    for text in ("demo/app:1", "docker.io/demo/app:1", "index.docker.io/demo/app:1"):
        assert store.find(text).descriptor.digest == digest
    with pytest.raises(ImageNotFound, match="no image 'demo/app:latest'"):
        store.find("demo/app")  # means demo/app:latest


def test_find_by_name_at_digest(store: Store) -> None:
    digest = _import(store, "demo/app:1")
    assert store.find(f"demo/app@{digest}").descriptor.digest == digest
    assert store.find(f"demo/app:other@{digest}").descriptor.digest == digest
    with pytest.raises(ImageNotFound):
        store.find(f"demo/other@{digest}")  # the digest belongs to another repository


def test_find_by_id_and_unique_prefix(store: Store) -> None:
    _import(store, "a:1", b"one")
    image_id = store.find("a:1").id
    for text in (str(image_id), image_id.hex, image_id.hex[:12], f"sha256:{image_id.hex[:5]}"):
        assert store.find(text).id == image_id
    with pytest.raises(ImageNotFound, match="no image"):
        store.find("0" * 12 if not image_id.hex.startswith("0" * 12) else "f" * 12)


def test_ambiguous_id_prefix(store: Store) -> None:
    # 17 images: two IDs must share their first hex digit
    ids = [store.find(f"i:{n}").id for n in range(17) if _import(store, f"i:{n}", str(n).encode())]
    first = next(h for h in "0123456789abcdef" if sum(i.hex.startswith(h) for i in ids) > 1)
    with pytest.raises(ImageNotFound, match=f"image ID prefix '{first}' is ambiguous"):
        store.find(first)


def test_find_bad_text_is_a_bad_reference(store: Store) -> None:
    with pytest.raises(BadReference):
        store.find("Not/A:Ref!")


def test_listing_tag_and_untag(store: Store) -> None:
    digest = _import(store, "demo/app:1")
    store.tag("demo/app:1", "localhost:5000/x/y:v2")
    images = store.images()
    assert [i.entry.annotations["org.opencontainers.image.ref.name"] for i in images] == [
        "docker.io/demo/app:1", "localhost:5000/x/y:v2",
    ]
    assert all(i.descriptor.digest == digest and i.names == ("docker.io/demo/app:1", "localhost:5000/x/y:v2") for i in images)
    assert images[0].size == images[0].descriptor.size + sum(d.size for d in images[0].image.blobs())
    stored, removed = store.untag("demo/app:1")
    assert removed == ["docker.io/demo/app:1"]
    assert [i.names for i in store.images()] == [("localhost:5000/x/y:v2",)]


def test_untag_by_id_removes_every_name_forced_across_repositories(store: Store) -> None:
    _import(store, "a:1")
    store.tag("a:1", "a:2")
    store.tag("a:1", "b:2")
    image_id = store.find("a:1").id
    with pytest.raises(ImageConflict, match=r"named in 2 repositories \(a, b\)"):
        store.untag(image_id.hex[:12])
    assert len(store.images()) == 3
    _, removed = store.untag(image_id.hex[:12], force=True)
    assert sorted(removed) == ["docker.io/library/a:1", "docker.io/library/a:2", "docker.io/library/b:2"]
    assert store.images() == []


def test_untag_by_id_within_one_repository_needs_no_force(store: Store) -> None:
    _import(store, "a:1")
    store.tag("a:1", "a:2")
    _, removed = store.untag(store.find("a:1").id.hex)
    assert sorted(removed) == ["docker.io/library/a:1", "docker.io/library/a:2"]


def test_tag_refuses_a_digest(store: Store) -> None:
    digest = _import(store, "a:1")
    with pytest.raises(BadReference, match="a tag cannot carry a digest"):
        store.tag("a:1", f"b@{digest}")


def test_state_dirs_are_created_lazily(store: Store) -> None:
    _import(store, "a:1")
    assert not any((store.root / name).exists() for name in STATE_DIRS)
    assert store.state_dir("layers") == store.root / "layers" and (store.root / "layers").is_dir()
    with pytest.raises(ValueError):
        store.state_dir("../etc")


def _write_manifest(layout: Layout, content: bytes) -> Descriptor:
    layer = _tar("f", content)
    layer_digest = layout.write_bytes(layer)
    config = canonical_json({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [str(layer_digest)]}})
    manifest = Manifest(OCI_MANIFEST, Descriptor(OCI_CONFIG, layout.write_bytes(config), len(config)), (Descriptor(OCI_LAYER, layer_digest, len(layer)),)).to_bytes()
    return Descriptor(OCI_MANIFEST, layout.write_bytes(manifest), len(manifest))


def test_index_refs_pick_the_host_platform_and_gc_walks_nested_indexes(store: Store) -> None:
    layout = store.layout
    host, other = _write_manifest(layout, b"host"), _write_manifest(layout, b"other")
    inner = Index((
        Descriptor(host.media_type, host.digest, host.size, platform=platforms.host()),
    )).to_bytes()
    outer = Index((
        Descriptor(other.media_type, other.digest, other.size, platform=Platform("linux", "s390x-not-here")),
        Descriptor(OCI_INDEX, layout.write_bytes(inner), len(inner)),
        Descriptor(host.media_type, host.digest, host.size, platform=platforms.host()),
    )).to_bytes()
    entry = Descriptor(OCI_INDEX, layout.write_bytes(outer), len(outer))
    layout.set_ref("docker.io/library/multi:1", entry)
    garbage = _write_manifest(layout, b"garbage")
    assert store.find("multi:1").descriptor.digest == host.digest
    assert store.find(f"multi@{other.digest}").descriptor.digest == other.digest
    reachable = layout.reachable()
    for descriptor in (host, other):
        assert all(d.digest in reachable for d in (descriptor, *layout.image_at(descriptor).blobs()))
    report = store.prune()
    removed = {d for d, _ in report.blobs}
    assert garbage.digest in removed and len(removed) == 3  # its manifest, config and layer
    assert report.bytes_freed == sum(size for _, size in report.blobs) > 0
    assert all(layout.has_blob(d) for d in reachable)


def test_reachable_from_some_entries_is_only_what_they_keep(store: Store) -> None:
    """`reachable(entries)` is what would stay if the other entries went (`system df`'s count of what an
    image keeps): the blobs below those entries, not all of index.json's."""
    layout = store.layout
    first, second = _write_manifest(layout, b"first"), _write_manifest(layout, b"second")
    layout.set_ref("docker.io/library/first:1", first)
    layout.set_ref("docker.io/library/second:1", second)
    below_first, below_second = ({d.digest, *(blob.digest for blob in layout.image_at(d).blobs())} for d in (first, second))
    assert layout.reachable([first]) == below_first
    assert layout.reachable([second]) == below_second
    assert layout.reachable() == below_first | below_second


def test_diff_ids_are_those_of_every_manifest_index_json_reaches(store: Store) -> None:
    """What extracted layers prune keeps: every platform of an index, nested indexes, plain manifests;
    a manifest whose config is gone keeps nothing (it cannot be run), and says so nowhere else."""
    layout = store.layout
    host, other, plain, broken = (_write_manifest(layout, data) for data in (b"host", b"other", b"plain", b"broken"))
    inner = Index((Descriptor(other.media_type, other.digest, other.size, platform=Platform("linux", "s390x")),)).to_bytes()
    outer = Index((Descriptor(host.media_type, host.digest, host.size, platform=platforms.host()), Descriptor(OCI_INDEX, layout.write_bytes(inner), len(inner)))).to_bytes()
    layout.set_ref("docker.io/library/multi:1", Descriptor(OCI_INDEX, layout.write_bytes(outer), len(outer)))
    layout.set_ref("docker.io/library/plain:1", plain)
    layout.set_ref("docker.io/library/broken:1", broken)
    layout.blob_path(layout.image_at(broken).manifest.config.digest).unlink()
    _write_manifest(layout, b"unreferenced")
    expected = {str(Digest.of_bytes(_tar("f", data))) for data in (b"host", b"other", b"plain")}
    assert store.diff_ids() == expected


def test_gc_keeps_a_subject_and_removes_debris(store: Store) -> None:
    layout = store.layout
    subject = _write_manifest(layout, b"subject")
    referrer_manifest = Manifest(OCI_MANIFEST, Descriptor(OCI_CONFIG, layout.write_bytes(b"{}"), 2), (), subject=subject).to_bytes()
    layout.set_ref("docker.io/library/sig:1", Descriptor(OCI_MANIFEST, layout.write_bytes(referrer_manifest), len(referrer_manifest)))
    (layout.tmp_dir / "blob.dead").write_bytes(b"half a blob" * 100_000)  # a killed pull's download
    (layout.tmp_dir / "index.json.dead").write_bytes(b"{")
    (layout.root / "blobs" / "sha256" / "not-a-digest").write_bytes(b"junk")
    report = store.prune()
    assert report.temp_files == 2 and list(layout.tmp_dir.iterdir()) == []
    assert report.blobs == () and report.bytes_freed == 1_100_000 + 1 + 4  # debris counts as reclaimed
    assert not (layout.root / "blobs" / "sha256" / "not-a-digest").exists()
    assert layout.has_blob(subject.digest)
    assert all(layout.has_blob(d.digest) for d in layout.image_at(subject).blobs())


def test_gc_removes_every_unreachable_blob_between_kept_ones_and_debris_directories(store: Store) -> None:
    """Kept and unreachable blobs interleave in name order: gc goes on past each kept one, and past a
    stray file beside blobs/sha256. A directory a killed writer left in tmp/ goes too, while a symlink
    there is removed as a link, never followed (and counted as one)."""
    layout = store.layout
    _import(store, "a:1")
    kept = {p.name for p in (layout.root / "blobs" / "sha256").iterdir()}
    garbage = {layout.write_bytes(b"garbage %d" % i).encoded for i in range(12)}
    (layout.root / "blobs" / "README").write_text("a stray file beside the algorithm directories stays\n")
    (layout.tmp_dir / "unpack.dead" / "sub").mkdir(parents=True)
    (layout.tmp_dir / "unpack.dead" / "sub" / "f").write_bytes(b"x")
    outside = layout.root.parent / "outside"
    (outside / "keep").mkdir(parents=True)
    (layout.tmp_dir / "link.dead").symlink_to(outside)
    for name in ("junk.1", "junk.2"):
        (layout.root / "blobs" / "sha256" / name).write_bytes(b"junk")  # not digests: debris
    report = store.prune()
    assert {d.encoded for d, _ in report.blobs} == garbage
    # debris counts as reclaimed: both stray files, the file in the directory (not the directory), the link itself
    assert report.debris_bytes == 4 + 4 + 1 + len(str(outside))
    assert {p.name for p in (layout.root / "blobs" / "sha256").iterdir()} == kept
    assert report.temp_files == 2 and list(layout.tmp_dir.iterdir()) == []
    assert (outside / "keep").is_dir()
    assert (layout.root / "blobs" / "README").is_file()


def test_prune_refuses_when_a_manifest_is_missing(store: Store) -> None:
    digest = _import(store, "a:1")
    garbage = store.layout.write_bytes(b"unreferenced")
    store.layout.blob_path(digest).unlink()
    with pytest.raises(StoreError, match=f"blob {digest} is missing"):
        store.prune()
    assert store.layout.has_blob(garbage)


def test_prune_of_an_absent_store_creates_nothing(tmp_path: Path) -> None:
    store = Store(tmp_path / "none")
    assert store.prune().blobs == ()
    assert store.images() == []
    assert not store.root.exists()


def test_blob_writer_discards_on_error(store: Store) -> None:
    with pytest.raises(RuntimeError):
        with store.layout.blob_writer() as writer:
            writer.write(b"partial")
            raise RuntimeError("producer failed")
    assert list(store.layout.tmp_dir.iterdir()) == []
    assert not store.layout.has_blob(Digest.of_bytes(b"partial"))


@pytest.mark.parametrize(
    ("content", "size"),
    [(b"evil!", None), (b"evil!", 5), (b"good", 5), (b"good!!", 5), (b"good!", 4), (b"good!", 6)],
    ids=["other-bytes", "other-bytes-same-size", "short", "long", "size-too-small", "size-too-large"],
)
def test_write_blob_refuses_bytes_that_do_not_match_and_stores_nothing(store: Store, content: bytes, size: int | None) -> None:
    """Not under the expected digest, and not under the bytes' own digest either: nothing appears."""
    expected = Digest.of_bytes(b"good!")
    with pytest.raises(DigestMismatch):
        store.layout.write_blob(io.BytesIO(content), expected, size)
    assert list((store.layout.root / "blobs" / "sha256").iterdir()) == []
    assert list(store.layout.tmp_dir.iterdir()) == []
    assert store.layout.write_blob(io.BytesIO(b"good!"), expected, 5) == (expected, 5)
    assert [p.name for p in (store.layout.root / "blobs" / "sha256").iterdir()] == [expected.encoded]


def test_listing_skips_entries_that_are_not_images(store: Store) -> None:
    _import(store, "a:1")
    artifact = store.layout.write_bytes(b'{"an": "artifact"}')
    store.layout.set_ref("docker.io/library/artifact:1", Descriptor("application/vnd.example.artifact+json", artifact, 18))
    assert [i.names for i in store.images()] == [("docker.io/library/a:1",)]
    assert store.layout.has_blob(artifact) and artifact in store.layout.reachable()


def test_untag_name_at_digest_removes_only_that_repository(store: Store) -> None:
    digest = _import(store, "demo/app:1")
    store.tag("demo/app:1", "demo/app:2")
    store.tag("demo/app:1", "other/app:1")
    _, removed = store.untag(f"demo/app@{digest}")
    assert sorted(removed) == ["docker.io/demo/app:1", "docker.io/demo/app:2"]
    assert [i.names for i in store.images()] == [("docker.io/other/app:1",)]


def test_untag_by_an_id_prefix_that_is_also_a_valid_name(store: Store) -> None:
    _import(store, "a:1")
    store.tag("a:1", "b:1")
    prefix = store.find("a:1").id.hex[:12]
    _, removed = store.untag(prefix, force=True)  # parses as docker.io/library/<prefix>:latest, found by ID
    assert sorted(removed) == ["docker.io/library/a:1", "docker.io/library/b:1"]


def test_callers_errors_inside_writing_and_blob_writer_are_not_blamed_on_the_store(store: Store) -> None:
    """A failing source (network, stdin) inside these blocks is the caller's error, not "cannot write"."""
    with pytest.raises(ConnectionResetError):
        with store.layout.writing():
            raise ConnectionResetError("peer went away")
    with pytest.raises(ConnectionResetError):
        with store.layout.blob_writer() as writer:
            writer.write(b"some")
            raise ConnectionResetError("peer went away")
    assert list(store.layout.tmp_dir.iterdir()) == []


def test_write_image_copies_each_blob_it_lacks_verified_then_names_it(tmp_path: Path) -> None:
    from tests.layers.unpack.tars import file, layers_image, tar

    image = layers_image(tar([file("a", b"x" * 100)]), tar([file("b", b"y")]))
    layout = Layout(tmp_path / "store")
    assert layout.write_image(image) == image.descriptor
    assert layout.refs() == []  # no name asked for: none given
    for descriptor in image.blobs():
        with image.open_verified(descriptor) as source:
            assert layout.read_blob(descriptor.digest, limit=descriptor.size) == source.read()
    assert layout.write_image(image, "docker.io/library/t:1") == image.descriptor
    assert [(name, d.digest) for name, d in layout.refs()] == [("docker.io/library/t:1", image.descriptor.digest)]
    assert layout.image("docker.io/library/t:1").manifest == image.manifest


def test_retagging_keeps_the_old_image_as_an_unnamed_entry_and_tagging_replaces_an_unnamed_one(store: Store) -> None:
    """set_ref's rule for index.json: an image a tag moves away from stays rooted without a name (docker's
    dangling image; gc would otherwise delete it) unless another entry still has it, a named entry replaces
    the unnamed one of its digest, and the descriptor's other annotations are kept."""
    layout = store.layout
    first, second = _write_manifest(layout, b"first"), _write_manifest(layout, b"second")
    ref_name = "org.opencontainers.image.ref.name"

    def entries() -> list[tuple[Digest, dict[str, str]]]:
        return [(d.digest, dict(d.annotations)) for d in layout.index().manifests]

    layout.set_ref("a:1", Descriptor(OCI_MANIFEST, first.digest, first.size, annotations={"note": "kept"}))
    layout.add_unnamed(second)
    assert entries() == [(first.digest, {"note": "kept", ref_name: "a:1"}), (second.digest, {})]
    layout.set_ref("a:1", second)  # first loses its only name; second's unnamed entry gives way
    assert entries() == [(second.digest, {ref_name: "a:1"}), (first.digest, {"note": "kept"})]
    layout.set_ref("b:1", first)
    layout.set_ref("c:1", first)
    layout.set_ref("b:1", second)  # first is still named c:1: no unnamed entry for it
    assert entries() == [(second.digest, {ref_name: "a:1"}), (first.digest, {ref_name: "c:1"}), (second.digest, {ref_name: "b:1"})]


def test_a_new_store_is_an_oci_layout_and_a_missing_tmp_dir_comes_back(tmp_path: Path) -> None:
    """What other OCI tools need to read the store (index.json, oci-layout with its version) is there from
    the first write; a layout without tmp/ (made by another tool, or emptied by hand) gets it back, its
index.json untouched."""
    layout = Layout(tmp_path / "store")
    layout.write_bytes(b"first")
    assert json.loads((layout.root / "index.json").read_bytes()) == {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
    assert json.loads((layout.root / "oci-layout").read_bytes()) == {"imageLayoutVersion": "1.0.0"}
    named = Descriptor(OCI_MANIFEST, layout.write_bytes(b"{}"), 2)
    layout.set_ref("a:1", named)
    layout.tmp_dir.rmdir()
    digest = Layout(layout.root).write_bytes(b"second")  # recreating the skeleton keeps the index it finds
    assert layout.read_blob(digest) == b"second" and layout.tmp_dir.is_dir()
    assert [d.digest for d in layout.index().manifests] == [named.digest]


def test_write_blob_without_an_expected_digest_stores_it_under_its_sha256(store: Store) -> None:
    """An import's or a build's own output has no digest to check yet: it is hashed with sha256."""
    digest, size = store.layout.write_blob(io.BytesIO(b"built here"))
    assert (digest, size) == (Digest.of_bytes(b"built here"), 10) and digest.algorithm == "sha256"
    assert store.layout.read_blob(digest) == b"built here"


def test_write_blob_and_read_blob_hash_with_the_digests_own_algorithm(store: Store) -> None:
    """A sha512 descriptor is verified with sha512 on the way in and when read back, and stored under blobs/sha512."""
    data = b"sha512 content"
    expected = Digest.of_bytes(data, "sha512")
    assert store.layout.write_blob(io.BytesIO(data), expected, len(data)) == (expected, len(data))
    assert store.layout.blob_path(expected) == store.layout.root / "blobs" / "sha512" / expected.encoded
    assert store.layout.read_blob(expected) == data


def test_write_blob_stops_reading_a_stream_longer_than_promised_within_a_chunk(store: Store) -> None:
    """The size cap holds while the stream is read, not after: a source that sends more than the descriptor's size
    is read at most one chunk past it (an endless one would otherwise fill the memory or the disk)."""
    source = io.BytesIO(b"x" * (4 * CHUNK))
    with pytest.raises(DigestMismatch, match="more than 10 bytes"):
        store.layout.write_blob(source, Digest.of_bytes(b"x" * 10), 10)
    assert source.tell() <= CHUNK
    assert list(store.layout.tmp_dir.iterdir()) == []


def test_write_blob_mismatches_name_the_blob_the_promise_and_what_came(store: Store) -> None:
    """The one line a user gets for each refusal: the blob (its expected digest, or the digest of what came when
    none was expected), what was promised and what arrived."""
    expected, evil = Digest.of_bytes(b"good!"), Digest.of_bytes(b"evil!")
    refusals = [
        ((b"evil!", expected, 5), f"blob {expected}: expected {expected}, got {evil}"),
        ((b"good", expected, 5), f"blob {expected} size: expected 5, got 4"),
        ((b"good!!", expected, 5), f"blob {expected} size: expected 5, got more than 5 bytes"),
        ((b"good", None, 5), f"blob {Digest.of_bytes(b'good')} size: expected 5, got 4"),
        ((b"good!!", None, 5), "blob size: expected 5, got more than 5 bytes"),
    ]
    for (content, digest, size), line in refusals:
        with pytest.raises(DigestMismatch) as caught:
            store.layout.write_blob(io.BytesIO(content), digest, size)
        assert str(caught.value) == line


def test_an_image_read_from_the_store_opens_its_layers_there(tmp_path: Path) -> None:
    """Layout.image gives an Image whose blobs come from the layout (what a push or an unpack of a stored image
    reads), with the descriptor it was stored under."""
    from tests.layers.unpack.tars import file, layers_image, tar

    image = layers_image(tar([file("a", b"x" * 100)]))
    layout = Layout(tmp_path / "store")
    layout.write_image(image, "docker.io/library/t:1")
    stored = layout.image("docker.io/library/t:1")
    assert stored.descriptor == image.descriptor
    for descriptor in stored.layers:
        with stored.open_verified(descriptor) as source, layout.open_blob(descriptor.digest) as blob:
            assert source.read() == blob.read()


def test_index_json_is_replaced_through_a_temp_file_in_tmp(tmp_path: Path) -> None:
    """The store's own temp files live in tmp/ (which gc clears of a killed writer's debris), never beside
    index.json, where a killed writer's half-written file would stay for good."""
    from tests.test_fsutil import _created_in

    layout = Layout(tmp_path / "store")
    named = Descriptor(OCI_MANIFEST, layout.write_bytes(b"{}"), 2)
    with _created_in(layout.root) as in_root, _created_in(layout.tmp_dir) as in_tmp:
        layout.set_ref("a:1", named)
    assert in_root == [] and [name.startswith(".index.json.") for name in in_tmp] == [True]
