"""write_layer: the tar it streams keeps every kind of metadata, the digests are right, output is
deterministic, and a failing source is one LayerError line with nothing made visible in the store."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from imagekit.errors import LayerError
from imagekit.layers.changes import tree
from imagekit.layers.tarformat import Member
from imagekit.layers.write import write_layer
from imagekit.layout import Layout
from imagekit.oci import OCI_LAYER, OCI_LAYER_GZIP, OCI_LAYER_ZSTD
from tests.layers.write.conftest import CAPABILITY, DEEP_DIR, LONG_NAME, MTIME, make_rich_tree, members_of, set_mtimes, tar_bytes

CODECS = ("gzip", "zstd", "none")


def write(root: Path, codec: str = "gzip", **kwargs: object) -> tuple[bytes, object]:
    sink = io.BytesIO()
    layer = write_layer(tree(root), sink, codec, **kwargs)  # type: ignore[arg-type]
    return sink.getvalue(), layer


@pytest.mark.parametrize("codec", CODECS)
def test_digest_size_and_diff_id_describe_the_blob(rich_tree: Path, codec: str) -> None:
    blob, layer = write(rich_tree, codec)
    assert layer.size == len(blob)
    assert layer.digest.hex == hashlib.sha256(blob).hexdigest()
    assert layer.diff_id.hex == hashlib.sha256(tar_bytes(blob, layer.media_type)).hexdigest()
    assert layer.media_type == {"gzip": OCI_LAYER_GZIP, "zstd": OCI_LAYER_ZSTD, "none": OCI_LAYER}[codec]
    assert layer.descriptor.digest == layer.digest and layer.descriptor.size == layer.size


def test_every_kind_of_metadata_is_in_the_tar(rich_tree: Path) -> None:
    blob, layer = write(rich_tree)
    members = {m.name: m for m in members_of(blob, layer)}
    tool = members["bin/tool"]
    assert tool.mode == 0o4755 and tool.uid == 0 and tool.uname == "" and tool.gname == ""
    assert tool.pax_headers["SCHILY.xattr.security.capability"].encode("utf-8", "surrogateescape") == CAPABILITY
    assert tool.pax_headers["SCHILY.xattr.user.comment"] == "a tool"
    assert tool.pax_headers["SCHILY.xattr.trusted.note"].encode("utf-8", "surrogateescape") == b"\x00binary\xff"
    assert members["bin/tool.link"].islnk() and members["bin/tool.link"].linkname == "bin/tool"
    assert members["bin/sh"].issym() and members["bin/sh"].linkname == "tool"
    assert members["etc"].mode == 0o750
    assert (members["etc/secret"].uid, members["etc/secret"].gid, members["etc/secret"].mode) == (1234, 5678, 0o640)
    assert members["etc/passwd-link"].linkname == "/etc/passwd"
    assert members["etc/dangling"].linkname == "../nowhere/at/all"
    assert members["tmp"].mode == 0o1777 and members["srv"].mode == 0o2775 and members["srv"].gid == 50
    assert members["empty"].isdir()
    assert (members["big-uid"].uid, members["big-uid"].gid) == (3_000_000, 3_000_001)
    assert members[LONG_NAME].isfile() and members["link-to-long"].linkname == LONG_NAME
    assert members["x-hard-to-long"].linkname == LONG_NAME
    assert members[f"{DEEP_DIR}/file"].isfile() and len(f"{DEEP_DIR}/file") > 255
    assert members["dev/fifo"].isfifo() and members["dev/fifo"].mode == 0o600
    assert members["dev/null"].ischr() and (members["dev/null"].devmajor, members["dev/null"].devminor) == (1, 3)
    assert members["dev/loop0"].isblk() and (members["dev/loop0"].devmajor, members["dev/loop0"].devminor) == (7, 0)
    assert members["sparse"].size == 8 << 20
    assert "café" in members and os.fsdecode(b"latin-\xe9") in members
    assert {m.mtime for m in members.values()} == {MTIME}
    for member in members.values():
        assert not {"atime", "ctime", "uname", "gname"} & set(member.pax_headers)


def test_file_content_round_trips(rich_tree: Path) -> None:
    blob, layer = write(rich_tree, "zstd")
    with tarfile.open(fileobj=io.BytesIO(tar_bytes(blob, layer.media_type))) as archive:
        for name in ("bin/tool", "sparse", f"{DEEP_DIR}/file", os.fsdecode(b"latin-\xe9")):
            assert archive.extractfile(name).read() == (rich_tree / name).read_bytes()  # type: ignore[union-attr]


def test_order_is_sorted_depth_first_without_the_root(rich_tree: Path) -> None:
    blob, layer = write(rich_tree)
    names = [m.name.encode("utf-8", "surrogateescape") for m in members_of(blob, layer)]
    assert names == sorted(names, key=lambda n: n.split(b"/"))
    assert "." not in names and "" not in names


def test_hardlink_points_at_the_first_path_in_order_whichever_was_made_first(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for root, first, second in ((a, "x/one", "y/two"), (b, "y/two", "x/one")):
        (root / "x").mkdir(parents=True)
        (root / "y").mkdir()
        (root / first).write_text("shared\n")
        (root / second).hardlink_to(root / first)
        set_mtimes(root, MTIME)
    blob_a, layer_a = write(a)
    blob_b, layer_b = write(b)
    assert blob_a == blob_b
    link = {m.name: m for m in members_of(blob_a, layer_a)}["y/two"]
    assert link.islnk() and link.linkname == "x/one"


def make_same_tree(root: Path, reverse: bool) -> None:
    """The same content, created in opposite orders (so inode and directory order differ)."""
    names = [f"dir{i}/file{j}" for i in range(5) for j in range(20)]
    for name in reversed(names) if reverse else names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(name.encode() * 100)
    (root / "link").symlink_to("dir0/file0")


@pytest.mark.parametrize("codec", CODECS)
def test_same_tree_made_elsewhere_in_another_order_gives_the_same_bytes(tmp_path: Path, codec: str) -> None:
    one, two = tmp_path / "one", tmp_path / "elsewhere" / "deeper" / "two"
    make_same_tree(one, reverse=False)
    make_same_tree(two, reverse=True)
    set_mtimes(one, MTIME)
    set_mtimes(two, MTIME)
    for path in (two / "dir3" / "file7", two / "dir1"):  # atimes differ, and are never written
        os.utime(path, ns=(5 * 10**9, MTIME * 10**9))
    assert write(one, codec) == write(two, codec)


@pytest.mark.parametrize("codec", CODECS)
def test_source_date_epoch_clamps_mtimes_of_trees_made_at_different_times(
    tmp_path: Path, codec: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    make_same_tree(one, reverse=False)
    make_same_tree(two, reverse=True)
    set_mtimes(one, MTIME + 100)
    set_mtimes(two, MTIME + 200)
    (two / "dir2" / "file3").touch()  # now
    assert write(one, codec)[0] != write(two, codec)[0]
    monkeypatch.setenv("SOURCE_DATE_EPOCH", str(MTIME))
    blob, layer = write(one, codec)
    assert (blob, layer) == write(two, codec)
    assert {m.mtime for m in members_of(blob, layer)} == {MTIME}  # type: ignore[arg-type]


def test_source_date_epoch_leaves_older_mtimes_and_the_argument_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_same_tree(tmp_path / "t", reverse=False)
    set_mtimes(tmp_path / "t", 1000)
    os.utime(tmp_path / "t" / "link", ns=(0, 5000 * 10**9), follow_symlinks=False)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "2000")
    blob, layer = write(tmp_path / "t", "none")
    assert {m.mtime for m in members_of(blob, layer)} == {1000, 2000}  # type: ignore[arg-type]
    blob, layer = write(tmp_path / "t", "none", source_date_epoch=1500)
    assert {m.mtime for m in members_of(blob, layer)} == {1000, 1500}  # type: ignore[arg-type]


def test_a_malformed_source_date_epoch_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "t").mkdir()
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    with pytest.raises(LayerError, match="SOURCE_DATE_EPOCH='yesterday' is not a number"):
        write(tmp_path / "t")


def test_unknown_compression_is_refused(tmp_path: Path) -> None:
    with pytest.raises(LayerError, match="unknown compression 'lz4'"):
        write(tmp_path, "lz4")


# --- the store as sink, and failures --------------------------------------------------------------------
def test_the_store_blob_writer_is_a_sink_and_hashes_once(rich_tree: Path, tmp_path: Path) -> None:
    layout = Layout(tmp_path / "store")
    with layout.blob_writer() as writer:
        layer = write_layer(tree(rich_tree), writer, "zstd")  # type: ignore[arg-type]
    assert writer.digest == layer.digest and writer.size == layer.size
    assert hashlib.sha256(layout.blob_path(layer.digest).read_bytes()).hexdigest() == layer.digest.hex


class _UsedSink(io.BytesIO):
    """A sink whose hasher has already seen other bytes: write_layer must not trust it."""

    def __init__(self) -> None:
        super().__init__()
        from imagekit.digest import Hasher

        self.hasher = Hasher()
        self.hasher.update(b"earlier")


def test_a_sink_hasher_that_saw_other_bytes_is_not_trusted(rich_tree: Path) -> None:
    sink = _UsedSink()
    layer = write_layer(tree(rich_tree), sink)  # type: ignore[arg-type]
    assert layer.digest.hex == hashlib.sha256(sink.getvalue()).hexdigest()


def sabotaged(members: Iterator[Member], when: str, action: object) -> Iterator[Member]:
    """Passes members through, running `action(member)` just before the one named `when`."""
    for member in members:
        if member.name == when.encode():
            action(member)  # type: ignore[operator]
        yield member


def failing_write(root: Path, tmp_path: Path, when: str, action: object) -> str:
    """Writes into a store through a sabotaged walk; returns the LayerError line; checks nothing was stored."""
    layout = Layout(tmp_path / "store")
    with pytest.raises(LayerError) as raised:
        with layout.blob_writer() as writer:
            write_layer(sabotaged(tree(root), when, action), writer, "gzip")  # type: ignore[arg-type]
    assert list((layout.root / "blobs" / "sha256").iterdir()) == []
    assert list(layout.tmp_dir.iterdir()) == []
    message = str(raised.value)
    assert "\n" not in message
    return message


def test_a_path_that_vanishes_mid_walk(rich_tree: Path, tmp_path: Path) -> None:
    message = failing_write(rich_tree, tmp_path, "bin/sh", lambda _: os.unlink(rich_tree / "sparse"))
    assert message == f"{rich_tree}/sparse vanished while the layer was being written"


def test_a_directory_that_vanishes_mid_walk(rich_tree: Path, tmp_path: Path) -> None:
    message = failing_write(rich_tree, tmp_path, "bin/sh", lambda _: shutil.rmtree(rich_tree / "srv"))
    assert message.endswith("/srv vanished while the layer was being written")


def test_a_file_that_vanishes_before_its_content_is_read(rich_tree: Path, tmp_path: Path) -> None:
    message = failing_write(rich_tree, tmp_path, "etc/secret", lambda m: os.unlink(m.source))
    assert message == f"{rich_tree}/etc/secret vanished while the layer was being written"


def test_a_file_that_changes_size_after_its_header(rich_tree: Path, tmp_path: Path) -> None:
    message = failing_write(rich_tree, tmp_path, "etc/secret", lambda m: os.truncate(m.source, 1))
    assert message == f"{rich_tree}/etc/secret changed while the layer was being written"


def test_a_file_replaced_by_a_fifo_is_not_opened_for_ever(rich_tree: Path, tmp_path: Path) -> None:
    def to_fifo(member: Member) -> None:
        os.unlink(member.source)  # type: ignore[arg-type]
        os.mkfifo(member.source)  # type: ignore[arg-type]

    assert failing_write(rich_tree, tmp_path, "etc/secret", to_fifo).endswith("changed while the layer was being written")


def test_a_name_reserved_for_whiteouts_is_refused(tmp_path: Path) -> None:
    (tmp_path / "t" / "d").mkdir(parents=True)
    (tmp_path / "t" / "d" / ".wh.x").write_text("")
    with pytest.raises(LayerError, match=r"d/\.wh\.x: names starting with '\.wh\.' are reserved for whiteouts"):
        write(tmp_path / "t")


def test_a_missing_source_tree_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(LayerError, match="/nothing vanished"):
        tree(tmp_path / "nothing")
    (tmp_path / "file").write_text("")
    with pytest.raises(LayerError, match="/file is not a directory"):
        tree(tmp_path / "file")


def test_a_sink_error_passes_through_untranslated(rich_tree: Path) -> None:
    class Full:
        def write(self, data: bytes) -> int:
            raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        write_layer(tree(rich_tree), Full())  # type: ignore[arg-type]


def test_an_unreadable_file_is_one_line_for_an_unprivileged_writer(tmp_path: Path) -> None:
    import subprocess
    import sys
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="imagekit-unreadable."))
    try:
        base.chmod(0o755)
        (base / "t").mkdir()
        (base / "t" / "readable").write_text("ok\n")
        (base / "t" / "secret").write_text("no\n")
        (base / "t" / "secret").chmod(0o000)
        code = (
            "import sys, io; from imagekit.errors import ImagekitError; from imagekit.layers.changes import tree; "
            "from imagekit.layers.write import write_layer\n"
            "try: write_layer(tree(sys.argv[1]), io.BytesIO())\n"
            "except ImagekitError as err: sys.exit(str(err))"
        )
        result = subprocess.run(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c", code, str(base / "t")],
            capture_output=True,
            text=True,
            cwd=Path(__file__).resolve().parents[3],
        )
        assert result.returncode == 1
        assert result.stderr == f"cannot read {base}/t/secret for a layer: Permission denied\n"
    finally:
        shutil.rmtree(base)


def test_rich_tree_helper_builds_what_it_says(tmp_path: Path) -> None:
    root = make_rich_tree(tmp_path / "r")
    assert os.getxattr(root / "bin" / "tool", "security.capability") == CAPABILITY
    assert len(os.fsencode(root / DEEP_DIR / "file")) - len(os.fsencode(root)) > 255
