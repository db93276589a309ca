"""Differential test against buildah: the same Builderfiles built by `buildah bud --isolation chroot
--layers` and by `imagekit build` give the same config fields, history shape and file trees
(both unpacked by umoci; everything compared but mtimes)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.builder.conftest import build, ok
from tests.layers.treecmp import diff, tree_manifest

BUILDAH = shutil.which("buildah")
UMOCI = shutil.which("umoci")
CONFIG_FIELDS = ("Env", "Cmd", "Entrypoint", "WorkingDir", "User", "ExposedPorts", "Volumes", "Labels", "StopSignal",
                 "Healthcheck")

#: Known differences left out of the cases: a port range (`EXPOSE 8000-8001`) is one key for buildah
#: and one key per port for docker and imagekit (BuildKit expands it with nat.ParsePortSpecs).
CASES = {
    "metadata": """\
ARG BASE
FROM $BASE
ENV A=1 B="two words"
ENV PATH=/opt/bin:$PATH
LABEL one=1 two="2 2"
EXPOSE 80 53/udp 8000
VOLUME /data ["/logs"]
WORKDIR /srv
WORKDIR app
USER 1000:1000
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=5s --retries=2 CMD ["true"]
ENTRYPOINT ["/bin/sh", "-c"]
CMD echo hi
""",
    "filesystem": """\
ARG BASE
FROM $BASE
WORKDIR /work
COPY files/ /copied/
COPY files/a.txt single
COPY files/a.txt files/sub/b.txt /many/
COPY --chmod=0750 files/a.txt /chmodded
COPY --chown=1000:2000 files/sub /owned
RUN mkdir -p /made/deep && echo run > /made/deep/file && ln -s /made/deep/file /made/link
RUN rm -f /bin/ls && mkdir /tmp/t && chmod 1777 /tmp/t
ADD files/archive.tar.gz /unpacked/
""",
    "user_and_shell": """\
ARG BASE
FROM $BASE
USER app
RUN id > /tmp/who
USER root
SHELL ["/bin/sh", "-ec"]
RUN echo shell-form > /shell
CMD ["sh"]
""",
}


def _context(tmp_path: Path, name: str) -> Path:
    import tarfile

    context = tmp_path / name
    (context / "files" / "sub").mkdir(parents=True)
    (context / "files" / "a.txt").write_text("a\n")
    (context / "files" / "sub" / "b.txt").write_text("b\n")
    payload = tmp_path / f"{name}-payload"
    (payload / "inner").mkdir(parents=True)
    (payload / "inner" / "c.txt").write_text("c\n")
    with tarfile.open(context / "files" / "archive.tar.gz", "w:gz") as archive:
        archive.add(payload / "inner", arcname="inner")
    (context / "Builderfile").write_text(CASES[name])
    return context


def _buildah(storage: Path, *args: str) -> str:
    """buildah with its own storage under the test's tmp_path, so parallel tests never share its cache."""
    argv = [BUILDAH, "--root", str(storage / "root"), "--runroot", str(storage / "run"), "--storage-driver", "vfs", *args]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"buildah {' '.join(args)}: {result.stderr}"
    return result.stdout


@pytest.mark.parametrize("name", sorted(CASES))
def test_imagekit_and_buildah_build_the_same_image(name: str, root: Path, tmp_path: Path) -> None:
    assert BUILDAH and UMOCI, "buildah and umoci are installed by make test"
    context = _context(tmp_path, name)
    ok(build(root, context, "-t", "mine:1", "--build-arg", "BASE=busybox"))
    base = f"oci:{root}:docker.io/library/busybox:latest"
    tag = "localhost/imagekit-diff:1"
    storage = tmp_path / "buildah"
    _buildah(storage, "bud", "--isolation", "chroot", "--layers", "--format", "docker", "-f", str(context / "Builderfile"), "--build-arg", f"BASE={base}", "-t", tag, str(context))
    theirs_layout = tmp_path / "theirs"
    _buildah(storage, "push", tag, f"oci:{theirs_layout}:theirs")
    theirs = json.loads(_buildah(storage, "inspect", "--type", "image", tag))["Docker"]  # Healthcheck is docker-only
    mine = _config(root, "docker.io/library/mine:1")
    for field in CONFIG_FIELDS:
        left, right = mine["config"].get(field), theirs["config"].get(field)
        if field == "Labels":
            right = {k: v for k, v in (right or {}).items() if not k.startswith("io.buildah.")} or None
        if field == "Env":  # buildah moves a replaced variable to the end; docker (and imagekit) replace in place
            left, right = sorted(left or []), sorted(right or [])
        assert (left or None) == (right or None), f"{field}: imagekit {left!r}, buildah {right!r}"
    assert [h.get("empty_layer", False) for h in mine["history"]] == [h.get("empty_layer", False) for h in theirs["history"]]
    assert len(mine["rootfs"]["diff_ids"]) == len(theirs["rootfs"]["diff_ids"])
    trees = []
    for layout, ref, out in ((root, "docker.io/library/mine:1", tmp_path / "mine"), (theirs_layout, "theirs", tmp_path / "theirs-b")):
        subprocess.run([UMOCI, "unpack", "--image", f"{layout}:{ref}", str(out)], check=True, capture_output=True, timeout=120)
        trees.append(tree_manifest(out / "rootfs", mtimes=False))
    trees[1] = {path: item for path, item in trees[1].items() if not _buildah_stub(path, item, trees[0])}
    assert diff(trees[0], trees[1]) == [], "\n".join(diff(trees[0], trees[1]))


def _buildah_stub(path: str, item: dict, mine: dict) -> bool:
    """A mount point buildah leaves in its layers (empty /dev, /proc, /sys, /run, /etc/hosts,
    /etc/resolv.conf) where BuildKit, as imagekit, removes the stubs it made."""
    if path in mine:
        return False
    if path in ("dev", "proc", "sys", "run"):
        return item["type"] == "dir"
    return path in ("etc/hosts", "etc/resolv.conf") and item.get("size") == 0


def _config(layout: Path, ref: str) -> dict:
    index = json.loads((layout / "index.json").read_text())
    entry = next(m for m in index["manifests"] if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == ref)
    manifest = json.loads((layout / "blobs" / "sha256" / entry["digest"].split(":")[1]).read_text())
    return json.loads((layout / "blobs" / "sha256" / manifest["config"]["digest"].split(":")[1]).read_text())
