"""`COPY --from`: the sources a step takes from another stage's (or an image's) root, copied out to a
host directory that `plan_copy` then reads as it reads the context.

The stage's root is an overlay that is only mounted inside a sandbox.call child, so this runs there:
each source pattern is expanded and resolved inside the mounted root (symlinks never leave it), and
what it names is copied to the same relative path under `dest` with owners, modes, times and links
kept, so the plan sees exactly what the stage holds.

Imports: stdlib, imagekit.errors, imagekit.builder.context.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Sequence
from pathlib import Path

from imagekit.builder.context import SourceRoot, clean_source


def stage_sources(root: str, patterns: Sequence[str], dest: str) -> None:
    """Copies what `patterns` name in the mounted root `root` to `dest` (created); a pattern that
    names nothing copies nothing, and planning then reports it as missing."""
    source = SourceRoot(Path(root), keep_owner=True, label="--from")
    out = Path(dest)
    out.mkdir(parents=True, exist_ok=True)
    for pattern in patterns:
        cleaned = clean_source(pattern)
        if cleaned is None:
            continue
        try:
            names = source.expand(cleaned)
        except ValueError:
            continue
        for name in names:
            resolved = source.resolve(name)
            if resolved is None:
                continue
            _copy(source.host(resolved), out / name if name else out)


def _copy(path: str, target: Path) -> None:
    """cp -a of one path: a directory recursively (symlinks inside it copied as symlinks), owners first,
    then modes (a chown clears setuid bits), then times."""
    info = os.lstat(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    if stat.S_ISDIR(info.st_mode):
        target.mkdir(exist_ok=True)
        for name in sorted(os.listdir(path)):
            _copy(os.path.join(path, name), target / name)
    elif stat.S_ISLNK(info.st_mode):
        os.symlink(os.readlink(path), target)
    elif stat.S_ISREG(info.st_mode):
        shutil.copyfile(path, target, follow_symlinks=False)
    else:
        return  # devices, fifos and sockets are not copied by COPY either
    os.lchown(target, info.st_uid, info.st_gid)
    if not stat.S_ISLNK(info.st_mode):
        os.chmod(target, stat.S_IMODE(info.st_mode))
    os.utime(target, ns=(info.st_atime_ns, info.st_mtime_ns), follow_symlinks=False)
