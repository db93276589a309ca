"""COPY/ADD fixtures: a build context, an image root (plain directories) and a step runner over them."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from builderfile.instructions import Add, Copy, load
from imagekit.builder.context import BuildContext
from imagekit.builder.copy_apply import apply
from imagekit.builder.copy_plan import CopyPlan, plan_copy

#: Every instruction sits on line 2 of its Builderfile (after `FROM scratch`).
LINE = 2


def instruction(text: str) -> Copy | Add:
    """The COPY/ADD `text` parsed as line 2 of a Builderfile."""
    step = load("FROM scratch\n" + text).stages[0].instructions[0]
    assert isinstance(step, (Copy, Add))
    return step


class Harness:
    """`context/` and `root/` under tmp_path; `copy()` plans and applies one instruction."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.context = base / "context"
        self.root = base / "root"
        self.staging = base / "staging"
        self.cache = base / "cache"
        self.context.mkdir()
        self.root.mkdir()
        self.builderfile: Path | None = None

    def write(self, rel: str, data: bytes | str = b"", *, mode: int | None = None, mtime: int | None = None, where: Path | None = None) -> Path:
        path = (where or self.context) / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        if mode is not None:
            path.chmod(mode)
        if mtime is not None:
            os.utime(path, (mtime, mtime))
        return path

    def build_context(self) -> BuildContext:
        return BuildContext(self.context, self.builderfile, cache_dir=self.cache)

    def plan(self, text: str, workdir: str = "/", *, context: BuildContext | None = None, **options: object) -> CopyPlan:
        ctx = context or self.build_context()
        result = plan_copy(instruction(text), ctx, workdir, file="Builderfile", staging=self.staging, **options)  # type: ignore[arg-type]
        ctx.save()
        return result

    def copy(self, text: str, workdir: str = "/", *, owner: tuple[int, int] | None = None, **options: object) -> CopyPlan:
        plan = self.plan(text, workdir, **options)
        apply(str(self.root), plan, owner)
        return plan

    def listing(self) -> dict[str, tuple[object, ...]]:
        """path -> (kind, mode, uid, gid, content or link target) of everything in the root."""
        return listing(self.root)


def listing(top: Path) -> dict[str, tuple[object, ...]]:
    out: dict[str, tuple[object, ...]] = {}
    for directory, dirs, files in os.walk(top):
        for name in dirs + files:
            path = Path(directory) / name
            info = path.lstat()
            rel = path.relative_to(top).as_posix()
            mode = stat.S_IMODE(info.st_mode)
            if stat.S_ISLNK(info.st_mode):
                out[rel] = ("symlink", info.st_uid, info.st_gid, os.readlink(path))
            elif stat.S_ISDIR(info.st_mode):
                out[rel] = ("dir", mode, info.st_uid, info.st_gid)
            else:
                out[rel] = ("file", mode, info.st_uid, info.st_gid, path.read_bytes())
    return out


@pytest.fixture
def harness(tmp_path: Path) -> Harness:
    return Harness(tmp_path)
