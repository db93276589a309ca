"""Properties over generated trees: `COPY dir /x/` reproduces the tree, and the checksum sees exactly what it should."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from builderfile.instructions import load
from imagekit.builder.context import BuildContext
from imagekit.builder.copy_apply import apply
from imagekit.builder.copy_plan import CopyPlan, plan_copy
from tests.builder.copy.conftest import listing

NAMES = st.text(alphabet="abcxyz-_.ä", min_size=1, max_size=6).filter(lambda n: n not in (".", ".."))
MODES = st.sampled_from([0o644, 0o600, 0o755, 0o700, 0o444, 0o4755])
STEP = load("FROM scratch\nCOPY src /x/\n").stages[0].instructions[0]


@st.composite
def trees(draw: st.DrawFn, depth: int = 0) -> dict[str, object]:
    """name -> bytes (a file), ("link", target) or a nested dict (a directory)."""
    entries: dict[str, object] = {}
    for name in draw(st.lists(NAMES, max_size=5, unique=True)):
        kind = draw(st.sampled_from(["file", "file", "link", "dir"] if depth < 3 else ["file", "link"]))
        if kind == "file":
            entries[name] = (draw(st.binary(max_size=64)), draw(MODES))
        elif kind == "link":
            entries[name] = ("link", draw(st.sampled_from(["a", "../b", "/etc/passwd", "x/y"])))
        else:
            entries[name] = draw(trees(depth + 1))
    return entries


def make(path: Path, tree: dict[str, object]) -> None:
    path.mkdir()
    for name, entry in tree.items():
        if isinstance(entry, dict):
            make(path / name, entry)
        elif entry[0] == "link":
            os.symlink(str(entry[1]), path / name)
        else:
            data, mode = entry
            (path / name).write_bytes(data)  # type: ignore[arg-type]
            os.chmod(path / name, mode)  # type: ignore[arg-type]


def plan_of(context: Path, cache: Path) -> CopyPlan:
    ctx = BuildContext(context, None, cache)
    plan = plan_copy(STEP, ctx, "/")  # type: ignore[arg-type]
    ctx.save()
    return plan


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trees())
def test_copy_reproduces_the_tree(tree: dict[str, object]) -> None:
    base = Path(tempfile.mkdtemp(prefix="imagekit-prop-"))
    try:
        context = base / "context"
        context.mkdir()
        make(context / "src", tree)
        root = base / "root"
        root.mkdir()
        plan = plan_of(context, base / "cache")
        apply(str(root), plan, None)
        assert listing(root / "x") == listing(context / "src")  # all owned by root here, as the copy
        for path, entry in listing(context / "src").items():
            if entry[0] == "file":
                assert (root / "x" / path).stat().st_mtime_ns == (context / "src" / path).stat().st_mtime_ns
        assert plan_of(context, base / "cache").checksum() == plan.checksum()  # again, from the stat cache
        files = [p for p, e in listing(context / "src").items() if e[0] == "file"]
        if files:
            victim = context / "src" / files[0]
            os.chmod(victim, stat.S_IMODE(victim.stat().st_mode) ^ 0o001)
            assert plan_of(context, base / "cache").checksum() != plan.checksum()
    finally:
        shutil.rmtree(base)
