"""unpack and apply_layers: media types, atomicity, caps (API, env var, --max-size), the CLI."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from imagekit.digest import Digest
from imagekit.errors import DigestMismatch, LayerError
from imagekit.image import Image
from imagekit.layers.apply import Limits, parse_size
from imagekit.layers.unpack import apply_layers, check_usable, partial_marker, unpack
from imagekit.layout import Layout
from imagekit.oci import (
    DOCKER_LAYER_FOREIGN_GZIP,
    DOCKER_LAYER_GZIP,
    OCI_LAYER,
    OCI_LAYER_GZIP,
    OCI_LAYER_NONDISTRIBUTABLE_GZIP,
    OCI_LAYER_ZSTD,
)
from tests.layers.treecmp import tree_manifest
from tests.layers.unpack.tars import compress, directory, file, image, layers_image, store_image, symlink, tar
from tests.store.conftest import IMAGEKIT, ok, one_line_error, run_imagekit

BASE = tar([directory("bin"), file("bin/tool", b"#!/bin/sh\n" * 100, mode=0o755), symlink("bin/sh", "tool"), directory("etc"), file("etc/conf", b"a=1\n")])
CHANGE = tar([file("etc/.wh.conf"), file("etc/new", b"b=2\n"), file("bin/tool", b"v2", mode=0o700)])
MiB = 1 << 20


@pytest.mark.parametrize(
    ("media_type", "codec"),
    [
        (OCI_LAYER, "none"),
        (OCI_LAYER_GZIP, "gzip"),
        (OCI_LAYER_ZSTD, "zstd"),
        (DOCKER_LAYER_GZIP, "gzip"),
        (DOCKER_LAYER_FOREIGN_GZIP, "gzip"),
        (OCI_LAYER_NONDISTRIBUTABLE_GZIP, "gzip"),
    ],
)
def test_every_layer_media_type_unpacks_to_the_same_tree(tmp_path: Path, media_type: str, codec: str) -> None:
    reference = tmp_path / "reference"
    unpack(layers_image(BASE, CHANGE), reference)
    target = tmp_path / "target"
    unpack(image([(compress(BASE, codec), media_type), (compress(CHANGE, codec), media_type)]), target)
    assert tree_manifest(target, root=True, dir_mtimes=False) == tree_manifest(reference, root=True, dir_mtimes=False)
    assert sorted(os.listdir(target / "etc")) == ["new"]


def test_layers_of_different_codecs_in_one_image(tmp_path: Path) -> None:
    target = tmp_path / "t"
    unpack(image([(compress(BASE, "zstd"), OCI_LAYER_ZSTD), (CHANGE, OCI_LAYER)]), target)
    assert (target / "bin/tool").read_bytes() == b"v2"


def test_unknown_media_type_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(LayerError, match="unsupported layer media type 'application/vnd.example.layer.v1.tar\\+lz4'"):
        unpack(image([(BASE, "application/vnd.example.layer.v1.tar+lz4")]), tmp_path / "t")
    assert not (tmp_path / "t").exists()


def test_gzip_members_and_zstd_frames_are_read_through(tmp_path: Path) -> None:
    """Concatenated gzip members (pigz -i, some registries) and zstd frames are one stream."""
    half = len(BASE) // 2
    target = tmp_path / "t"
    unpack(image([(compress(BASE[:half], "gzip") + compress(BASE[half:], "gzip"), OCI_LAYER_GZIP), (compress(CHANGE[:700], "zstd") + compress(CHANGE[700:], "zstd"), OCI_LAYER_ZSTD)]), target)
    assert (target / "etc/new").read_bytes() == b"b=2\n"


# --- atomicity ---------------------------------------------------------------------------------------------
def _broken_third_layer() -> Image:
    return image([(compress(BASE, "gzip"), OCI_LAYER_GZIP), (CHANGE, OCI_LAYER), (compress(tar([file("x")]), "gzip")[:-12], OCI_LAYER_GZIP)])


def test_an_error_in_the_last_layer_leaves_no_destination(tmp_path: Path) -> None:
    with pytest.raises(LayerError, match="^layer 3/3 "):
        unpack(_broken_third_layer(), tmp_path / "dest")
    assert os.listdir(tmp_path) == []  # no DEST, no temp directory


def test_an_error_leaves_an_empty_destination_empty(tmp_path: Path) -> None:
    (tmp_path / "dest").mkdir()
    with pytest.raises(LayerError):
        unpack(_broken_third_layer(), tmp_path / "dest")
    assert os.listdir(tmp_path) == ["dest"] and os.listdir(tmp_path / "dest") == []


def test_unpack_into_an_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "dest").mkdir()
    unpack(layers_image(BASE), tmp_path / "dest")
    assert (tmp_path / "dest/bin/tool").is_file()


@pytest.mark.parametrize("what", ["file", "nonempty", "symlink"])
def test_a_destination_in_use_is_refused_untouched(tmp_path: Path, what: str) -> None:
    dest = tmp_path / "dest"
    if what == "file":
        dest.write_text("x")
    elif what == "nonempty":
        dest.mkdir()
        (dest / "keep").write_text("x")
    else:
        (tmp_path / "empty").mkdir()
        dest.symlink_to("empty")
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(LayerError, match="exists and is not an empty directory"):
        unpack(layers_image(BASE), dest)
    assert sorted(os.listdir(tmp_path)) == before


def test_a_blob_that_does_not_match_its_digest_fails_after_reading_and_leaves_nothing(tmp_path: Path) -> None:
    img = layers_image(BASE)
    layer = img.layers[0]
    img.source.blobs[layer.digest] = tar([file("evil", b"swapped")])  # type: ignore[attr-defined]
    with pytest.raises(DigestMismatch):
        unpack(img, tmp_path / "dest")
    assert os.listdir(tmp_path) == []


def test_apply_layers_onto_an_existing_root_and_its_marker(tmp_path: Path) -> None:
    root = tmp_path / "root"
    unpack(layers_image(BASE), root)
    apply_layers(layers_image(CHANGE), root)
    assert (root / "etc/new").is_file() and not partial_marker(root).exists()
    with pytest.raises(LayerError, match=r"^layer 3/3 .*root is left unusable, marked by root\.imagekit-partial\)$"):
        apply_layers(_broken_third_layer(), root)
    assert partial_marker(root).is_file()
    with pytest.raises(LayerError, match="is unusable: applying layers onto it did not finish"):
        check_usable(root)
    with pytest.raises(LayerError, match="is unusable"):
        apply_layers(layers_image(CHANGE), root)


def test_apply_layers_onto_a_missing_root_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(LayerError, match="cannot apply layers onto .*/missing: No such file or directory"):
        apply_layers(layers_image(BASE), tmp_path / "missing")


# --- caps --------------------------------------------------------------------------------------------------
def test_parse_size() -> None:
    assert parse_size("10G", "x") == 10 << 30
    assert parse_size("512M", "x") == 512 << 20
    assert parse_size("512mib", "x") == 512 << 20
    assert parse_size("1.5k", "x") == 1536
    assert parse_size(" 4096 ", "x") == 4096
    with pytest.raises(LayerError, match="invalid size '10X' for --max-size"):
        parse_size("10X", "--max-size")


def test_limits_default_generously_and_read_the_environment() -> None:
    assert Limits.from_env({}) == Limits(64 << 30, 10_000_000)
    assert Limits.from_env({"IMAGEKIT_MAX_LAYER_BYTES": "1M"}).max_bytes == MiB


def test_the_cap_spans_all_layers_of_an_image(tmp_path: Path) -> None:
    one = tar([file("a", bytes(600 * 1024))])
    two = tar([file("b", bytes(600 * 1024))])
    unpack(layers_image(one), tmp_path / "ok", limits=Limits(max_bytes=MiB))
    with pytest.raises(LayerError, match=r"^layer 2/2 \(\w+\): entry 'b': the image would unpack to more than 1 MiB \(the size cap"):
        unpack(layers_image(one, two), tmp_path / "too-big", limits=Limits(max_bytes=MiB))


def test_the_cap_adds_up_every_finished_layer_not_just_the_last(tmp_path: Path) -> None:
    layers = [tar([file(name, bytes(300 * 1024))]) for name in "abcd"]
    unpack(layers_image(*layers[:3]), tmp_path / "ok", limits=Limits(max_bytes=MiB))
    with pytest.raises(LayerError, match=r"^layer 4/4 \(\w+\): entry 'd': the image would unpack to more than 1 MiB"):
        unpack(layers_image(*layers), tmp_path / "too-big", limits=Limits(max_bytes=MiB))


def test_the_cap_comes_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGEKIT_MAX_LAYER_BYTES", "1M")
    with pytest.raises(LayerError, match="more than 1 MiB"):
        unpack(layers_image(tar([file("a", bytes(2 * MiB))])), tmp_path / "t")
    monkeypatch.setenv("IMAGEKIT_MAX_LAYER_BYTES", "lots")
    with pytest.raises(LayerError, match="invalid size 'lots' for IMAGEKIT_MAX_LAYER_BYTES"):
        unpack(layers_image(BASE), tmp_path / "t")


# --- diff_ids --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("codec", ["none", "gzip", "zstd"])
def test_a_layer_whose_content_is_not_its_diff_id_is_refused(tmp_path: Path, codec: str) -> None:
    """The blob digest is right (the manifest describes the blob), but the config lies about its content."""
    media_type = {"none": OCI_LAYER, "gzip": OCI_LAYER_GZIP, "zstd": OCI_LAYER_ZSTD}[codec]
    wrong = str(Digest.of_bytes(CHANGE))  # a real diff_id, of another layer
    img = image([(compress(BASE, codec), media_type), (compress(CHANGE[:-512], codec), media_type)], [str(Digest.of_bytes(BASE)), wrong])
    with pytest.raises(DigestMismatch, match=rf"^layer 2/2 \(\w+\): uncompressed content \(diff_id\): expected {wrong}, got sha256:"):
        unpack(img, tmp_path / "dest")
    assert os.listdir(tmp_path) == []


def test_trailing_bytes_after_the_tar_count_towards_the_diff_id(tmp_path: Path) -> None:
    padded = BASE + bytes(10 * 512)
    unpack(image([(padded, OCI_LAYER)], [str(Digest.of_bytes(padded))]), tmp_path / "ok")
    with pytest.raises(DigestMismatch, match="diff_id"):
        unpack(image([(padded, OCI_LAYER)], [str(Digest.of_bytes(BASE))]), tmp_path / "cut")
    assert not (tmp_path / "cut").exists()


def test_trailing_bytes_after_the_tar_are_capped(tmp_path: Path) -> None:
    bomb = compress(BASE + bytes(3 * MiB), "zstd")
    with pytest.raises(LayerError, match=r"of data after the end of the tar archive \(the size cap\)"):
        unpack(image([(bomb, OCI_LAYER_ZSTD)]), tmp_path / "t", limits=Limits(max_bytes=2 * MiB))


@pytest.mark.parametrize(("diff_ids", "error"), [([], "lists 0 diff_ids for 1 layers"), (["sha256:abc"], "invalid diff_id")])
def test_a_config_without_one_diff_id_per_layer_is_refused(tmp_path: Path, diff_ids: list[str], error: str) -> None:
    with pytest.raises(LayerError, match=error):
        unpack(image([(BASE, OCI_LAYER)], diff_ids), tmp_path / "t")
    unpack(layers_image(BASE), tmp_path / "root")
    with pytest.raises(LayerError, match=error):
        apply_layers(image([(CHANGE, OCI_LAYER)], diff_ids), tmp_path / "root")
    check_usable(tmp_path / "root")  # refused before anything was applied
    assert sorted(os.listdir(tmp_path)) == ["root"]


def test_cli_refuses_a_wrong_diff_id(tmp_path: Path) -> None:
    store = tmp_path / "store"
    ref = store_image(store, image([(compress(BASE, "gzip"), OCI_LAYER_GZIP)], [str(Digest.of_bytes(CHANGE))]))
    line = one_line_error(run_imagekit(store, "unpack", ref, str(tmp_path / "dest")))
    assert line.startswith("imagekit: layer 1/1 (") and "uncompressed content (diff_id): expected" in line, line
    assert sorted(os.listdir(tmp_path)) == ["store"]


# --- the CLI -----------------------------------------------------------------------------------------------
def test_cli_unpack_matches_the_api(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store_image(store, layers_image(BASE, CHANGE, codec="gzip"), "docker.io/library/app:1")
    result = run_imagekit(store, "unpack", "app:1", str(tmp_path / "cli"))
    assert ok(result) == "" and result.stderr == ""
    unpack(layers_image(BASE, CHANGE), tmp_path / "api")
    assert tree_manifest(tmp_path / "cli", root=True, dir_mtimes=False) == tree_manifest(tmp_path / "api", root=True, dir_mtimes=False)


def test_cli_size_cap_by_option_and_environment(tmp_path: Path) -> None:
    store = tmp_path / "store"
    ref = store_image(store, layers_image(tar([file("big", bytes(3 * MiB))]), codec="zstd"))
    line = one_line_error(run_imagekit(store, "unpack", "--max-size", "2M", ref, str(tmp_path / "a")))
    assert line == f"imagekit: layer 1/1 ({_short(store, ref)}): entry 'big': the image would unpack to more than 2 MiB (the size cap; raise it with IMAGEKIT_MAX_LAYER_BYTES or --max-size)"
    env = {**os.environ, "IMAGEKIT_MAX_LAYER_BYTES": "2M"}
    assert "the size cap" in one_line_error(_run_env(store, env, "unpack", ref, str(tmp_path / "b")))
    ok(_run_env(store, env, "unpack", "--max-size", "4M", ref, str(tmp_path / "c")))  # the option wins
    assert "invalid size '2 bananas' for --max-size" in one_line_error(run_imagekit(store, "unpack", "--max-size", "2 bananas", ref, str(tmp_path / "d")))
    assert sorted(os.listdir(tmp_path)) == ["c", "store"]


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    store = tmp_path / "store"
    ref = store_image(store, layers_image(BASE))
    assert "no image 'missing:1'" in one_line_error(run_imagekit(store, "unpack", "missing:1", str(tmp_path / "x")))
    (tmp_path / "full").mkdir()
    (tmp_path / "full/f").write_text("x")
    assert "exists and is not an empty directory" in one_line_error(run_imagekit(store, "unpack", ref, str(tmp_path / "full")))


def _short(store: Path, ref: str) -> str:
    return Layout(store).image(ref).layers[0].digest.short


def _run_env(store: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([IMAGEKIT, "--root", str(store), *args], capture_output=True, text=True, env=env, timeout=60)
