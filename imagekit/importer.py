"""`imagekit import`: a rootfs tarball becomes a one-layer image, as `docker import` makes one.

The tarball (plain, gzip, zstd, xz or bzip2, told apart by magic bytes; a file or stdin) is kept
byte for byte as the layer: it streams once through a tar reader (so anything that is not a tar
archive is refused), the diff_id hasher, a gzip compressor and the store's blob writer, so a layer of
any size never sits in memory. The image config (an imagekit.config.ImageConfig) gets docker's
`--change` instructions (CMD, ENTRYPOINT, ENV, WORKDIR, USER, LABEL, EXPOSE, VOLUME, STOPSIGNAL).

Imports: stdlib, imagekit.errors, digest, oci, config, image, reference, layers, layout.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import shlex
import tarfile
from collections.abc import Callable, Iterable
from typing import BinaryIO

from imagekit.config import History, ImageConfig
from imagekit.digest import CHUNK, Hasher
from imagekit.errors import InvalidChange, InvalidConfigEdit, LayerError
from imagekit.image import Image
from imagekit.layers import compression
from imagekit.layout import Layout
from imagekit.oci import OCI_CONFIG, OCI_LAYER_GZIP, OCI_MANIFEST, Descriptor, Manifest, Platform
from imagekit.reference import Reference
from imagekit.values import replace



def import_tarball(
    layout: Layout,
    stream: BinaryIO,
    ref: Reference | None,
    *,
    source: str = "-",
    changes: Iterable[str] = (),
    message: str = "",
    platform: Platform,
) -> Image:
    """Writes `stream` (a rootfs tar, maybe compressed) to the store as a one-layer image named `ref`.

    Blobs first, then config and manifest, then the ref, all inside `layout.writing()`, so a crash
    at any point leaves no name pointing at anything partial. Raises LayerError for input that is
    not a (compressed) tar archive, InvalidChange for a bad `changes` line (before writing anything).
    """
    created = _created()
    config = apply_changes(ImageConfig(architecture=platform.architecture, os=platform.os, variant=platform.variant, created=created), changes)
    with layout.writing():
        layer, diff_id = _write_layer(layout, stream, source)
        config = config.with_layer(diff_id, History(created=created, comment=message or f"Imported from {source}"))
        config_bytes = config.to_bytes()
        config_digest = layout.write_bytes(config_bytes)
        manifest = Manifest(OCI_MANIFEST, Descriptor(OCI_CONFIG, config_digest, len(config_bytes)), (layer,))
        manifest_bytes = manifest.to_bytes()
        descriptor = Descriptor(OCI_MANIFEST, layout.write_bytes(manifest_bytes), len(manifest_bytes))
        if ref is not None:
            layout.set_ref(str(ref), descriptor)
        else:
            layout.add_unnamed(descriptor)  # a dangling image, as docker keeps it, until pruned
    return layout.image_at(descriptor)


def _created() -> str:
    """Now, or SOURCE_DATE_EPOCH for reproducible imports, in RFC 3339 UTC."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "")
    when = dt.datetime.fromtimestamp(int(epoch), dt.timezone.utc) if epoch.isdigit() else dt.datetime.now(dt.timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ" if when.microsecond else "%Y-%m-%dT%H:%M:%SZ")


def _write_layer(layout: Layout, stream: BinaryIO, source: str) -> tuple[Descriptor, str]:
    reader = stream if hasattr(stream, "peek") else io.BufferedReader(stream)  # type: ignore[arg-type]
    if not reader.peek(1):
        raise LayerError(f"{source}: the tarball is empty")
    codec = compression.sniff(reader.peek(6)[:6])
    diff = Hasher()
    what = f"{source}: not a valid {codec + '-compressed ' if codec else ''}tar archive"
    with layout.blob_writer() as writer:
        compressor = compression.compressor(compression.GZIP)
        source_stream = compression.decompressed(reader, codec)
        tee = _Tee(source_stream, diff, lambda data: writer.write(compressor.compress(data)), what)
        try:
            with tarfile.open(fileobj=tee, mode="r|", bufsize=CHUNK) as archive:  # type: ignore[call-overload]
                for _ in archive:
                    pass
        except (tarfile.TarError, EOFError) as err:
            raise LayerError(f"{what} ({err})") from err
        while tee.read(CHUNK):
            pass
        writer.write(compressor.flush())
    assert writer.digest is not None
    return Descriptor(OCI_LAYER_GZIP, writer.digest, writer.size), str(diff.digest())


class _Tee:
    """A read-only stream that hands every byte read to a hasher and a sink on the way through.

    Read errors (corrupt compressed data, a failing stdin) become LayerError here; errors of the
    sink (the store's disk) pass through untouched, so the caller can tell the two apart.
    """

    def __init__(self, source: BinaryIO, hasher: Hasher, sink: Callable[[bytes], object], what: str) -> None:
        self._source = source
        self._hasher = hasher
        self._sink = sink
        self._what = what

    def read(self, size: int = -1) -> bytes:
        try:
            data = self._source.read(size)
        except compression.DECOMPRESS_ERRORS as err:
            raise LayerError(f"{self._what} ({err})") from err
        if data:
            self._hasher.update(data)
            self._sink(data)
        return data


# --- docker import --change ------------------------------------------------------------------------------
_CHANGEABLE = ("CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR")


def apply_changes(config: ImageConfig, changes: Iterable[str]) -> ImageConfig:
    """`config` with Dockerfile-style `--change` lines applied in order, as `docker import -c` applies them.

    Raises InvalidChange naming the line for an unsupported instruction, a malformed argument, or an
    edit docker refuses (`EXPOSE abc`).
    """
    cmd_set = False
    for change in changes:
        keyword, _, rest = change.strip().partition(" ")
        keyword, rest = keyword.upper(), rest.strip()
        if keyword not in _CHANGEABLE:
            raise InvalidChange(f"--change {change!r}: unsupported instruction {keyword or '(empty)'!r} (use one of {', '.join(_CHANGEABLE)})")
        if not rest:
            raise InvalidChange(f"--change {change!r}: {keyword} needs an argument")
        try:
            config = _apply(config, keyword, rest, change, cmd_set)
        except InvalidConfigEdit as err:
            raise InvalidChange(f"--change {change!r}: {err}") from err
        cmd_set = cmd_set or keyword == "CMD"
    return config


def _apply(config: ImageConfig, keyword: str, rest: str, change: str, cmd_set: bool) -> ImageConfig:
    """One change; `cmd_set` says whether an earlier change set CMD (an ENTRYPOINT keeps it then)."""
    match keyword:
        case "CMD":
            return config.with_cmd(_json_strings(rest) or config.shell_form(rest))
        case "ENTRYPOINT":
            return config.with_entrypoint(_json_strings(rest) or config.shell_form(rest), keep_cmd=cmd_set)
        case "ENV":
            for key, value in _pairs(rest, change):
                config = config.with_env(key, value)
            return config
        case "EXPOSE":
            return config.with_exposed_ports(_json_strings(rest) or rest.split())
        case "LABEL":
            return config.with_labels(dict(_pairs(rest, change)))
        case "VOLUME":
            return config.with_volumes(_json_strings(rest) or rest.split())
        case "WORKDIR":
            return config.with_working_dir(rest)
        case "USER":
            return replace(config, user=rest)
        case _:  # STOPSIGNAL
            return replace(config, stop_signal=rest)


def _json_strings(rest: str) -> list[str] | None:
    """`rest` as a JSON array of strings, or None if it is not one (then it is shell form / words)."""
    try:
        value = json.loads(rest) if rest.startswith("[") else None
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, list) and all(isinstance(v, str) for v in value) else None


def _pairs(rest: str, change: str) -> list[tuple[str, str]]:
    """`k=v k2="v 2"` pairs, or the legacy `k v` form."""
    try:
        words = shlex.split(rest)
    except ValueError as err:
        raise InvalidChange(f"--change {change!r}: {err}") from err
    if "=" not in words[0]:
        key, _, value = rest.partition(" ")
        return [(key, value.strip())]
    pairs = []
    for word in words:
        key, eq, value = word.partition("=")
        if not eq or not key:
            raise InvalidChange(f"--change {change!r}: expected KEY=VALUE, got {word!r}")
        pairs.append((key, value))
    return pairs
