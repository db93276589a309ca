"""COPY/ADD against a real peer: buildah builds the same Builderfile from the same context, the trees must agree.

buildah (Debian's 1.28, `--isolation chroot`, vfs storage under tmp_path) writes its result with
`-o type=local`; imagekit plans and applies each step onto one root. Compared: every path, its kind,
mode, owner, content or link target, and the mtime of copied files. Only cases where buildah and
BuildKit agree are in the file (buildah 1.28 has no --parents, --exclude or heredocs).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from builderfile.instructions import Add, Copy, Workdir, load
from imagekit.builder.context import BuildContext
from imagekit.builder.copy_apply import apply
from imagekit.builder.copy_plan import plan_copy
from tests.builder.copy.conftest import listing

BUILDERFILE = """FROM scratch
COPY a.txt /app/
COPY a.txt /renamed
COPY dir /d2
COPY dir/ /d3/
COPY *.txt /txt/
COPY --chmod=0700 exe.sh /bin/
COPY --chown=1000:1001 dir /owned/
COPY link /followed/
COPY . /ctx/
ADD arch.tar.gz /unpacked/
ADD arch.tar.gz /unpacked2
ADD --chown=7:8 b.txt /added/
COPY a.txt /app
COPY dir/sub/x /d2/sub
COPY a.txt b.txt ./multi/
WORKDIR /w
COPY a.txt b.txt ./
COPY dir rel
COPY a.txt .
"""


def make_context(context: Path) -> None:
    (context / "dir" / "sub").mkdir(parents=True)
    for name, data in (("a.txt", "A"), ("b.txt", "B"), ("dir/sub/x", "X"), ("dir/top", "T"), ("exe.sh", "#!/bin/sh\n"),
                       ("drop.log", "L"), ("keep.log", "K"), (".dockerignore", "*.log\n!keep.log\n"), ("Builderfile", BUILDERFILE)):
        (context / name).write_text(data)
    (context / "dir" / "sub").chmod(0o750)
    (context / "dir" / "top").chmod(0o600)
    os.symlink("sub/x", context / "dir" / "lnk")
    os.symlink("dir", context / "link")
    inner = context.parent / "inner.txt"
    inner.write_text("in")
    os.utime(inner, (1_400_000_000, 1_400_000_000))  # whole seconds: buildah drops a PAX mtime's fraction
    with tarfile.open(context / "arch.tar.gz", "w:gz") as archive:
        archive.add(inner, "inner")
    for directory, _, names in os.walk(context):  # fixed times: both sides must keep them
        for name in names:
            os.utime(os.path.join(directory, name), (1_500_000_000, 1_500_000_000), follow_symlinks=False)


def with_mtimes(top: Path) -> dict[str, tuple[object, ...]]:
    found = listing(top)
    return {path: (*entry, (top / path).lstat().st_mtime) if entry[0] == "file" else entry for path, entry in found.items()}


@pytest.mark.slow
def test_copy_and_add_agree_with_buildah(tmp_path: Path) -> None:
    buildah = shutil.which("buildah")
    if buildah is None:
        pytest.fail("buildah is not installed (make test installs it)")
    context = tmp_path / "context"
    context.mkdir()
    make_context(context)
    theirs = tmp_path / "buildah"
    subprocess.run(
        [buildah, "bud", "--isolation", "chroot", "--storage-driver", "vfs", "--root", str(tmp_path / "storage"),
         "--runroot", str(tmp_path / "run"), "-f", str(context / "Builderfile"), "-o", f"type=local,dest={theirs}", str(context)],
        check=True, capture_output=True,
    )
    ours = tmp_path / "imagekit"
    ours.mkdir()
    build_context = BuildContext(context, context / "Builderfile")
    workdir = "/"
    for step in load(BUILDERFILE).stages[0].instructions:
        if isinstance(step, Workdir):  # as BuildKit: the directory is made, 0755
            workdir = step.path
            (ours / step.path.lstrip("/")).mkdir(mode=0o755, parents=True, exist_ok=True)
            continue
        assert isinstance(step, (Copy, Add))
        plan = plan_copy(step, build_context, workdir, file="Builderfile")
        apply(str(ours), plan, (int(step.chown.split(":")[0]), int(step.chown.split(":")[1])) if step.chown else None)
    assert with_mtimes(ours) == with_mtimes(theirs)
