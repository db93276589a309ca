"""A build without privileges: the builder itself runs as an unprivileged user (uid 1000 in a user
namespace of its own, as in a CI container without privileges) with `--isolation rootless`, and makes
the same layers as a build as root, owners included."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.builder.conftest import CLOSED_PORT, inspect, ok, run_imagekit, unpack

IMAGEKIT = str(Path(sys.executable).with_name("imagekit"))
TEXT = "FROM busybox\nRUN echo made-here > /made && mkdir -p /d/e && id -u > /d/e/uid\nCOPY f /copied\n"


def test_rootless_build_makes_the_layers_a_root_build_makes(root: Path, tmp_path: Path) -> None:
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Builderfile").write_text(TEXT)
    (context / "f").write_text("from the context\n")
    env = {k: v for k, v in os.environ.items() if k != "IMAGEKIT_ROOT"}
    env.update({"SOURCE_DATE_EPOCH": "1700000000", "IMAGEKIT_DOCKER_HUB_API": CLOSED_PORT})
    as_root = subprocess.run([IMAGEKIT, "--root", str(root), "build", "-q", "--no-cache", "-t", "asroot:1", str(context)],
                             capture_output=True, text=True, env=env, timeout=120)
    assert as_root.returncode == 0, as_root.stderr
    unprivileged = subprocess.run(
        ["unshare", "--user", "--map-user=1000", "--map-group=1000", IMAGEKIT, "--root", str(root), "build", "-q",
         "--no-cache", "--isolation", "rootless", "-t", "rootless:1", str(context)],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert unprivileged.returncode == 0, unprivileged.stderr
    assert inspect(root, "rootless:1")["RootFS"]["Layers"] == inspect(root, "asroot:1")["RootFS"]["Layers"]
    out = unpack(root, "rootless:1", tmp_path / "out")
    assert (out / "d" / "e" / "uid").read_text() == "0\n"  # the step ran as root inside
    assert os.stat(out / "made").st_uid == 0 and os.stat(out / "copied").st_uid == 0
    ok(run_imagekit(root, "images"))
