"""Builder features beyond the basics: RUN --mount=bind/tmpfs, ONBUILD, --format docker, --build-arg
and --label, concurrent builds on one store, the copy snapshotter giving the same layers, and a
read-only or full store."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import mounts

from tests.builder.conftest import build, inspect, ok, one_line_error, run_imagekit, unpack


def test_run_mount_bind_from_context_and_stage_and_tmpfs(root: Path, tmp_path: Path) -> None:
    context = tmp_path / "ctx"
    (context / "src").mkdir(parents=True)
    (context / "src" / "input").write_text("from the context\n")
    text = """\
FROM busybox AS first
RUN mkdir /out && echo from-stage > /out/data
FROM busybox
RUN --mount=type=bind,source=src,target=/mnt cat /mnt/input > /from-context
RUN --mount=type=bind,from=first,source=/out,target=/stage cat /stage/data > /from-stage
RUN --mount=type=tmpfs,target=/scratch echo x > /scratch/f && cat /scratch/f > /from-tmpfs
RUN --mount=type=bind,source=src,target=/rw,rw echo changed > /rw/input
"""
    ok(build(root, context, "-t", "mounts:1", text=text))
    out = unpack(root, "mounts:1", tmp_path / "out")
    assert (out / "from-context").read_text() == "from the context\n"
    assert (out / "from-stage").read_text() == "from-stage\n"
    assert (out / "from-tmpfs").read_text() == "x\n"
    for target in ("mnt", "stage", "scratch", "rw"):
        assert not (out / target).exists(), f"mount target /{target} leaked into a layer"
    assert (context / "src" / "input").read_text() == "from the context\n", "an rw bind wrote into the context"


def test_onbuild_triggers_of_the_base_run_first(root: Path, tmp_path: Path) -> None:
    ok(build(root, tmp_path / "base", "-t", "with-onbuild:1", text="FROM busybox\nONBUILD RUN echo triggered > /trigger\n"))
    assert inspect(root, "with-onbuild:1")["Config"]["OnBuild"] == ["RUN echo triggered > /trigger"]
    ok(build(root, tmp_path / "child", "-t", "child:1", text="FROM with-onbuild:1\nRUN cat /trigger > /seen\n"))
    out = unpack(root, "child:1", tmp_path / "out")
    assert (out / "seen").read_text() == "triggered\n"
    assert not inspect(root, "child:1")["Config"].get("OnBuild")


def test_format_docker_and_build_args_and_labels(root: Path, tmp_path: Path) -> None:
    text = "ARG BASE=busybox\nFROM $BASE\nARG GREETING=default\nRUN echo $GREETING > /greeting\n"
    ok(build(root, tmp_path / "ctx", "-t", "fmt:1", "--format", "docker", "--build-arg", "GREETING=given",
             "--label", "built.by=test", text=text))
    info = inspect(root, "fmt:1")
    assert info["Config"]["Labels"] == {"built.by": "test"}
    assert not any(e.startswith("GREETING=") for e in info["Config"].get("Env", [])), "a build arg leaked into Env"
    index = json.loads((root / "index.json").read_text())
    entry = next(m for m in index["manifests"] if m["annotations"]["org.opencontainers.image.ref.name"].endswith("fmt:1"))
    assert entry["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    manifest = json.loads((root / "blobs" / "sha256" / entry["digest"].split(":")[1]).read_text())
    assert manifest["config"]["mediaType"] == "application/vnd.docker.container.image.v1+json"
    assert {layer["mediaType"] for layer in manifest["layers"]} == {"application/vnd.docker.image.rootfs.diff.tar.gzip"}
    assert (unpack(root, "fmt:1", tmp_path / "out") / "greeting").read_text() == "given\n"


def test_zstd_layers(root: Path, tmp_path: Path) -> None:
    ok(build(root, tmp_path / "ctx", "-t", "z:1", "--compression", "zstd", text="FROM busybox\nRUN echo z > /z\n"))
    config = inspect(root, "z:1")
    assert (unpack(root, "z:1", tmp_path / "out") / "z").read_text() == "z\n"
    assert config["RootFS"]["Layers"]


def test_concurrent_builds_share_the_store(root: Path, tmp_path: Path) -> None:
    results: dict[int, subprocess.CompletedProcess[str]] = {}

    def one(index: int) -> None:
        text = f"FROM busybox\nRUN echo {index} > /n\nRUN echo shared > /s\n"
        results[index] = build(root, tmp_path / f"ctx{index}", "-t", f"conc:{index}", text=text)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for index in range(3):
        ok(results[index])
        assert (unpack(root, f"conc:{index}", tmp_path / f"out{index}") / "n").read_text() == f"{index}\n"
    subprocess.run(["oci-image-tool", "validate", "--type", "image", str(root)], check=True, capture_output=True)


def test_copy_snapshotter_gives_the_same_layers_as_overlay(root: Path, tmp_path: Path) -> None:
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "f").write_text("file\n")
    text = "FROM busybox\nCOPY f /dir/f\nRUN mkdir -p /a/b && echo run > /a/b/c && rm /bin/cat && chmod 700 /tmp\n"
    env = {"SOURCE_DATE_EPOCH": "1700000000"}
    overlay = ok(build(root, context, "-t", "snap:overlay", "--no-cache", text=text, env={**env, "IMAGEKIT_SNAPSHOTTER": "overlay"})).strip()
    copied = ok(build(root, context, "-t", "snap:copy", "--no-cache", env={**env, "IMAGEKIT_SNAPSHOTTER": "copy"})).strip()
    assert inspect(root, "snap:overlay")["RootFS"]["Layers"] == inspect(root, "snap:copy")["RootFS"]["Layers"]
    assert overlay == copied
    out = unpack(root, "snap:copy", tmp_path / "out")
    assert not (out / "bin" / "cat").exists() and (out / "a" / "b" / "c").read_text() == "run\n"


@pytest.fixture
def read_only_store(root: Path) -> Iterator[Path]:
    """The store, bind-mounted read-only over itself (we are root); unmounted afterwards."""
    with mounts.read_only(root):
        yield root


def test_read_only_store_is_one_line(read_only_store: Path, tmp_path: Path) -> None:
    line = one_line_error(build(read_only_store, tmp_path / "ctx", "-q", "-t", "ro:1", text="FROM busybox\nRUN true\n"))
    assert "Read-only file system" in line or "not writable" in line


@pytest.fixture
def small_store(tmp_path: Path, busybox_base_tar: Path) -> Iterator[Path]:
    """A store on a 6 MiB tmpfs holding busybox: room for the base, not for a 20 MB RUN."""
    with mounts.tmpfs(tmp_path / "small", "6m") as mountpoint:
        store = mountpoint / "store"
        ok(run_imagekit(store, "import", str(busybox_base_tar), "busybox:latest"))
        yield store


def test_full_disk_is_one_line_naming_the_step(small_store: Path, tmp_path: Path) -> None:
    text = "FROM busybox\nRUN head -c 20000000 /dev/zero > /big\n"
    result = build(small_store, tmp_path / "ctx", "-q", "-t", "full:1", text=text)
    line = one_line_error(result)
    assert "Builderfile:2:" in line
    assert "full" not in ok(run_imagekit(small_store, "images"))
    snapshots = small_store / "snapshots"
    assert not snapshots.exists() or not any(snapshots.iterdir())


def test_builder_prune_removes_cache_no_image_uses(root: Path, tmp_path: Path) -> None:
    text = "FROM busybox\nRUN --mount=type=cache,target=/c echo x > /c/f && echo kept > /kept\n"
    ok(build(root, tmp_path / "ctx", "-t", "pr:1", text=text))
    ok(build(root, tmp_path / "other", "-t", "gone:1", text="FROM busybox\nRUN echo gone > /gone\n"))
    ok(run_imagekit(root, "rmi", "gone:1"))
    result = run_imagekit(root, "builder", "prune")
    assert "Deleted 1 build cache records" in result.stderr
    assert not (root / "cache" / "mounts").exists()
    assert "CACHED" in build(root, tmp_path / "ctx", "-t", "pr:1").stderr  # the step an image uses stays cached
    assert "CACHED" not in build(root, tmp_path / "other", "-t", "gone:1").stderr


def test_python_api_builds_and_returns_the_image(root: Path, tmp_path: Path) -> None:
    import imagekit

    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Builderfile").write_text("FROM busybox\nARG V=1\nRUN echo $V > /v\nCMD [\"cat\", \"/v\"]\n")
    built = imagekit.build(context, root=root, tags=["api:1"], build_args={"V": "2"})
    assert built.tags == ("docker.io/library/api:1",)
    assert built.image.config["config"]["Cmd"] == ["cat", "/v"]
    assert inspect(root, "api:1")["Id"] == built.id
    assert (unpack(root, "api:1", tmp_path / "out") / "v").read_text() == "2\n"


def test_builderfile_on_stdin_and_iidfile(root: Path, tmp_path: Path) -> None:
    iid = tmp_path / "iid"
    result = subprocess.run(
        [str(Path(__import__("sys").executable).with_name("imagekit")), "--root", str(root), "build", "-t", "stdin:1",
         "--iidfile", str(iid), "-"],
        input=b"FROM busybox\nRUN echo piped > /p\n", capture_output=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert iid.read_text() == result.stdout.decode().strip() == inspect(root, "stdin:1")["Id"]
    failed = subprocess.run(
        [str(Path(__import__("sys").executable).with_name("imagekit")), "--root", str(root), "build", "-q", "-"],
        input=b"FROM busybox\nCOPY x /x\n", capture_output=True, timeout=120,
    )
    assert failed.returncode != 0 and b"there is no build context" in failed.stderr


def test_file_flag_and_the_default_names(root: Path, tmp_path: Path) -> None:
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Containerfile").write_text("FROM busybox\nRUN echo containerfile > /which\n")
    ok(build(root, context, "-t", "names:1"))
    assert (unpack(root, "names:1", tmp_path / "o1") / "which").read_text() == "containerfile\n"
    (context / "Dockerfile").write_text("FROM busybox\nRUN echo dockerfile > /which\n")
    ok(build(root, context, "-t", "names:2"))  # Dockerfile comes before Containerfile
    assert (unpack(root, "names:2", tmp_path / "o2") / "which").read_text() == "dockerfile\n"
    (context / "other.build").write_text("FROM busybox\nRUN echo other > /which\nBOGUS\n")
    failed = build(root, context, "-q", "-f", str(context / "other.build"))
    assert "imagekit: other.build:3: unknown instruction: BOGUS" == one_line_error(failed)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "no Builderfile, Dockerfile, Containerfile in" in one_line_error(build(root, empty, "-q"))


def test_platform_args_and_a_foreign_platform_without_run(root: Path, tmp_path: Path) -> None:
    from imagekit.platforms import host

    here = str(host())
    text = "FROM busybox\nARG TARGETPLATFORM\nARG BUILDARCH\nRUN echo $TARGETPLATFORM $BUILDARCH > /platform\n"
    ok(build(root, tmp_path / "ctx", "-t", "plat:1", "--platform", here, text=text))
    assert (unpack(root, "plat:1", tmp_path / "out") / "platform").read_text() == f"{here} {host().architecture}\n"
    context = tmp_path / "foreign"
    context.mkdir()
    (context / "f").write_text("data\n")
    ok(build(root, context, "-t", "plat:riscv", "--platform", "linux/riscv64", text="FROM scratch\nCOPY f /f\n"))
    assert inspect(root, "plat:riscv")["Architecture"] == "riscv64"


def test_refused_option_combinations_and_missing_mount_sources(root: Path, tmp_path: Path) -> None:
    text = "FROM busybox\nRUN true\n"
    line = one_line_error(build(root, tmp_path / "a", "-q", "--format", "docker", "--compression", "zstd", text=text))
    assert "--format docker supports only gzip layers, not zstd" in line
    missing_secret = "FROM busybox\nRUN --mount=type=secret,id=nope,required=true cat /run/secrets/nope\n"
    line = one_line_error(build(root, tmp_path / "b", "-q", text=missing_secret))
    assert "Builderfile:2: secret 'nope' is not given" in line
    optional = "FROM busybox\nRUN --mount=type=secret,id=nope test ! -e /run/secrets/nope\n"
    ok(build(root, tmp_path / "b2", "-q", text=optional))  # BuildKit: a secret is optional unless required
    outside = "FROM busybox AS s\nRUN ln -s /etc /s/escape 2>/dev/null || (mkdir /s && ln -s /etc /s/escape)\n" \
              "FROM busybox\nRUN --mount=type=bind,from=s,source=/nothere,target=/m true\n"
    line = one_line_error(build(root, tmp_path / "c", "-q", text=outside))
    assert "Builderfile:4: --mount from=s,source=/nothere: not in that stage" in line
