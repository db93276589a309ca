"""Where the store lives when no --root or IMAGEKIT_ROOT is given: /var/lib/imagekit for root, else
$XDG_DATA_HOME/imagekit, else ~/.local/share/imagekit. Told by the CLI itself (a lookup in an empty store
names the store) run as root and as an unprivileged user (setpriv); nothing is created on the way."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def store_named(env: dict[str, str], as_user: list[str]) -> str:
    """The store path the CLI names when it fails to find an image (with `env` as its whole environment)."""
    passed = {k: v for k, v in os.environ.items() if k in ("PATH", "PYTHONPATH")} | env
    done = subprocess.run([*as_user, sys.executable, "-m", "imagekit", "image", "inspect", "nosuch:1"], capture_output=True, text=True, env=passed, timeout=60)
    assert done.returncode == 1, done.stderr
    line = done.stderr.strip()
    assert line.startswith("imagekit: no image 'nosuch:1' in the store at "), line
    return line.rsplit(" ", 1)[1]


@pytest.mark.parametrize(
    ("as_user", "env", "expected"),
    [
        ([], {"XDG_DATA_HOME": "/nonexistent/xdg", "HOME": "/nonexistent/home"}, "/var/lib/imagekit"),
        (NOBODY, {"XDG_DATA_HOME": "/nonexistent/xdg", "HOME": "/nonexistent/home"}, "/nonexistent/xdg/imagekit"),
        (NOBODY, {"HOME": "/nonexistent/home"}, "/nonexistent/home/.local/share/imagekit"),
        (NOBODY, {"XDG_DATA_HOME": "", "HOME": "/nonexistent/home"}, "/nonexistent/home/.local/share/imagekit"),
    ],
    ids=["root", "user-xdg", "user-home", "user-empty-xdg"],
)
def test_the_default_store_root(as_user: list[str], env: dict[str, str], expected: str) -> None:
    existed = Path("/var/lib/imagekit").exists()
    assert store_named(env, as_user) == expected
    assert Path("/var/lib/imagekit").exists() == existed  # looking up an image creates no store
