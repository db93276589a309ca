"""Random small trees -> write_layer -> read back with Python's tarfile: every path, in layer order, with
its type, mode, owner, mtime, content, link target and xattrs."""

from __future__ import annotations

import io
import os
import shutil
import stat
import tarfile
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imagekit.layers.changes import tree
from imagekit.layers.write import write_layer
from tests.layers.write.conftest import tar_bytes

NAMES = st.sampled_from([b"a", b"b", b"B", b"a.b", b"-x", b"caf\xc3\xa9", b"bad\xff", b"n" * 120, b"sp ace", b"ln"])
ENTRY = st.tuples(
    st.lists(NAMES, min_size=1, max_size=3),
    st.sampled_from(["file", "dir", "symlink", "hardlink", "fifo"]),
    st.binary(max_size=3000),
    st.integers(0, 0o7777),
    st.sampled_from([0, 1, 1000, 2_097_151, 2_097_152, 4_000_000_000]),
    st.integers(-(2**33), 2**35),
    st.dictionaries(st.sampled_from(["user.a", "user.long" + "g" * 40, "trusted.t"]), st.binary(max_size=40), max_size=2),
)


def build(root: Path, entries: list[tuple]) -> None:  # type: ignore[type-arg]
    raw = os.fsencode(root)
    made: list[bytes] = []
    for parts, kind, content, mode, owner, mtime, xattrs in entries:
        path = os.path.join(raw, *parts)
        parent = os.path.dirname(path)
        ancestors = [os.path.join(raw, *parts[:i]) for i in range(1, len(parts))]
        if os.path.lexists(path) or any(os.path.lexists(a) and (os.path.islink(a) or not os.path.isdir(a)) for a in ancestors):
            continue
        os.makedirs(parent, exist_ok=True)
        if kind == "dir":
            os.mkdir(path)
        elif kind == "symlink":
            os.symlink(content[:200].replace(b"\0", b"") or b"x", path)
        elif kind == "hardlink" and any(os.path.isfile(m) and not os.path.islink(m) for m in made):
            os.link(next(m for m in made if os.path.isfile(m) and not os.path.islink(m)), path)
        elif kind == "fifo":
            os.mkfifo(path)
        else:
            with open(path, "wb") as f:
                f.write(content)
        made.append(path)
        if kind not in ("symlink", "fifo"):  # user.* xattrs exist on files and directories only
            for key, value in xattrs.items():
                os.setxattr(path, key, value)
            os.chown(path, owner, owner + 1, follow_symlinks=False)
            os.chmod(path, mode if kind != "dir" else mode | 0o700)
        else:
            os.chown(path, owner, owner + 1, follow_symlinks=False)
    for directory, dirs, files in os.walk(raw, topdown=False):
        for name in dirs + files:
            os.utime(os.path.join(directory, name), ns=(0, entries[0][5] * 10**9 + len(name)), follow_symlinks=False)


def expected(root: Path) -> list[tuple[object, ...]]:
    raw = os.fsencode(root)
    found: list[bytes] = []
    for directory, dirs, files in os.walk(raw):
        found.extend(os.path.relpath(os.path.join(directory, n), raw) for n in dirs + files)
    found.sort(key=lambda n: n.split(b"/"))
    out: list[tuple[object, ...]] = []
    first: dict[tuple[int, int], bytes] = {}
    for name in found:
        path = os.path.join(raw, name)
        s = os.lstat(path)
        xattrs = {k: v for k, v in ((k, os.getxattr(path, k, follow_symlinks=False)) for k in os.listxattr(path, follow_symlinks=False))}
        if not stat.S_ISDIR(s.st_mode) and s.st_nlink > 1 and (s.st_dev, s.st_ino) in first:
            out.append((name, "link", first[(s.st_dev, s.st_ino)]))
            continue
        first.setdefault((s.st_dev, s.st_ino), name)
        if stat.S_ISREG(s.st_mode):
            data: object = open(path, "rb").read()
        elif stat.S_ISLNK(s.st_mode):
            data = os.readlink(path)
        else:
            data = None
        out.append((name, stat.S_IFMT(s.st_mode), stat.S_IMODE(s.st_mode), s.st_uid, s.st_gid, s.st_mtime_ns // 10**9, data, xattrs))
    return out


def read_back(tar: bytes) -> list[tuple[object, ...]]:
    kinds = {tarfile.REGTYPE: stat.S_IFREG, tarfile.DIRTYPE: stat.S_IFDIR, tarfile.SYMTYPE: stat.S_IFLNK, tarfile.FIFOTYPE: stat.S_IFIFO}
    out: list[tuple[object, ...]] = []
    with tarfile.open(fileobj=io.BytesIO(tar), mode="r:") as archive:
        for m in archive:
            name = m.name.encode("utf-8", "surrogateescape")
            if m.islnk():
                out.append((name, "link", m.linkname.encode("utf-8", "surrogateescape")))
                continue
            xattrs = {k.removeprefix("SCHILY.xattr."): v.encode("utf-8", "surrogateescape") for k, v in m.pax_headers.items() if k.startswith("SCHILY.xattr.")}
            if m.isfile():
                data: object = archive.extractfile(m).read()  # type: ignore[union-attr]
            elif m.issym():
                data = m.linkname.encode("utf-8", "surrogateescape")
            else:
                data = None
            out.append((name, kinds[m.type], m.mode, m.uid, m.gid, int(m.mtime), data, xattrs))
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(entries=st.lists(ENTRY, min_size=1, max_size=12), codec=st.sampled_from(["gzip", "zstd", "none"]))
def test_random_trees_round_trip_through_tarfile(entries: list[tuple], codec: str) -> None:  # type: ignore[type-arg]
    root = Path(tempfile.mkdtemp(prefix="imagekit-hyp."))
    try:
        build(root, entries)
        sink = io.BytesIO()
        layer = write_layer(tree(root), sink, codec, source_date_epoch=2**40)
        assert read_back(tar_bytes(sink.getvalue(), layer.media_type)) == expected(root)
    finally:
        shutil.rmtree(root)
