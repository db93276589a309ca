"""`imagekit system df`: every byte under the store root in exactly one row, and each row's RECLAIMABLE is
what its prune frees. Both measured independently with `du -s --block-size=1` (allocated bytes, each
inode once: the method the product uses)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from imagekit.diskusage import Kind, usage
from imagekit.progress import human_size as progress_size
from imagekit.runtime.container import Runtime
from imagekit.runtime.stats import human_size
from imagekit.store import Store
from tests.runtime.conftest import Run, ok, run_cli

BUILDERFILE = """FROM busybox AS scratchpad
RUN head -c 300000 /dev/urandom > /big && echo small > /small
FROM busybox
COPY --from=scratchpad /small /small
RUN --mount=type=cache,target=/c head -c 200000 /dev/urandom > /c/x && head -c 100000 /dev/urandom > /f
"""


def _du(path: Path) -> int:
    return int(subprocess.run(["du", "-s", "--block-size=1", str(path)], check=True, capture_output=True, text=True).stdout.split()[0])


def _rows(root: Path) -> dict[str, Kind]:
    kinds = {kind.type: kind for kind in usage(Runtime(Store(root)))}
    assert list(kinds) == ["Images", "Containers", "Local Volumes", "Build Cache"]
    assert sum(kind.size for kind in kinds.values()) == _du(root)  # every byte in exactly one row
    return kinds


def _row(output: str, kind: str) -> list[str]:
    line = next(line for line in output.splitlines() if line.startswith(kind + " "))
    return [cell.strip() for cell in line[len(kind):].split("   ") if cell.strip()]


def _busy_store(ik: Run, tmp_path: Path) -> None:
    """A built image (a stage no image keeps, a RUN cache mount), an exited container that wrote 3 MB,
    a running one, a volume it mounts, an unused one, and an unused image (withvol)."""
    context = tmp_path / "context"
    context.mkdir()
    (context / "Builderfile").write_text(BUILDERFILE)
    ok(ik("build", "-q", "--network", "none", "-t", "built", str(context)))
    ok(ik("volume", "create", "kept"))
    ok(ik("run", "--network", "none", "--name", "writer", "-v", "kept:/data", "built", "sh", "-c",
          "head -c 3000000 /dev/urandom > /big; head -c 2000000 /dev/urandom > /data/blob"))
    ok(ik("run", "-d", "--network", "none", "--name", "up", "-v", "used:/vol", "busybox", "sleep", "60"))


def test_the_rows_add_up_to_the_store_and_each_prune_frees_its_reclaimable(ik: Run, root: Path, tmp_path: Path) -> None:
    _busy_store(ik, tmp_path)
    rows = _rows(root)
    assert [len(rows["Images"].items), rows["Images"].active] == [3, 2]  # busybox (up), built (writer), withvol
    assert [len(rows["Containers"].items), rows["Containers"].active] == [2, 1]
    assert [len(rows["Local Volumes"].items), rows["Local Volumes"].active] == [2, 2]
    assert rows["Containers"].reclaimable >= 3_000_000 and rows["Local Volumes"].reclaimable == 0
    build_cache = rows["Build Cache"]
    names = [item.name for item in build_cache.items]
    assert "cache/mounts" in names and any(name.startswith("layers/") for name in names)  # the stage's layer
    assert build_cache.reclaimable >= 300_000
    output = ok(ik("system", "df"))
    assert output.splitlines()[0].split() == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
    for kind in rows.values():
        size, reclaimable = _row(output, kind.type)[2:4]
        assert size == human_size(kind.size) and reclaimable.startswith(human_size(kind.reclaimable) + " (")
    ok(ik("rm", "-f", "up"))  # `used` now has no container: it is reclaimable, and busybox is unused
    for row, prune in [("Build Cache", ("builder", "prune")), ("Containers", ("container", "prune", "-f")),
                       ("Local Volumes", ("volume", "prune", "-a")), ("Images", ("image", "prune", "-a", "-f"))]:
        reclaimable = _rows(root)[row].reclaimable
        before = _du(root)
        printed = ok(ik(*prune))
        assert before - _du(root) == reclaimable > 0, prune
        if row in ("Build Cache", "Containers"):  # these two report du's bytes, as df counts them
            size = (progress_size if row == "Build Cache" else human_size)(reclaimable)
            assert printed.endswith(f"Total reclaimed space: {size}\n")
        assert _rows(root)[row].reclaimable == 0
    assert _rows(root)["Build Cache"].reclaimable > 0  # the step records whose image went
    ok(ik("builder", "prune"))
    assert [len(kind.items) for kind in _rows(root).values()] == [0, 0, 0, 0]


def test_what_is_in_use_is_not_reclaimable(ik: Run, root: Path) -> None:
    ok(ik("run", "-d", "--network", "none", "--name", "up", "-v", "used:/vol", "busybox", "sh", "-c",
          "head -c 1000000 /dev/urandom > /vol/data; sleep 60"))
    ok(ik("exec", "up", "sh", "-c", "while [ ! -s /vol/data ] || [ $(wc -c < /vol/data) -lt 1000000 ]; do sleep 0.1; done"))
    rows = _rows(root)
    assert rows["Containers"].reclaimable == 0 and rows["Local Volumes"].reclaimable == 0
    assert rows["Local Volumes"].size >= 1_000_000
    images = rows["Images"]
    assert [item.active for item in images.items] == [name == "docker.io/library/busybox:latest" for name in
                                                       (item.name for item in images.items)]
    before = _du(root)
    ok(ik("container", "prune", "-f"))
    ok(ik("volume", "prune", "-a"))
    assert _du(root) == before  # the running container and its volume stay
    ok(ik("rm", "-f", "up"))


def test_verbose_lists_each_image_container_volume_and_cache_entry(ik: Run, root: Path, tmp_path: Path) -> None:
    _busy_store(ik, tmp_path)
    lines = ok(ik("system", "df", "-v")).splitlines()
    for section in ("Images", "Containers", "Local Volumes", "Build Cache"):
        assert f"{section} space usage:" in lines
    for kind in _rows(root).values():
        for item in kind.items:
            assert [item.name, human_size(item.size), "yes" if item.active else "no"] in [line.split() for line in lines]
    ok(ik("rm", "-f", "up"))


def test_an_empty_store_prints_docker_zero_rows_and_makes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "nothing"
    assert ok(run_cli(root, "system", "df")) == (
        "TYPE            TOTAL     ACTIVE    SIZE      RECLAIMABLE\n"
        "Images          0         0         0B        0B\n"
        "Containers      0         0         0B        0B\n"
        "Local Volumes   0         0         0B        0B\n"
        "Build Cache     0         0         0B        0B\n")
    assert not root.exists()
