"""`imagekit.run()` from Python: a handle that waits, reads logs, stops and removes."""

from __future__ import annotations

from pathlib import Path

import pytest

import imagekit
from imagekit.errors import ContainerError, RegistryError, SandboxError
from imagekit.registry.options import DOCKER_HUB_API_ENV
from imagekit.runtime.options import VolumeSpec
from tests.runtime.conftest import CLOSED_PORT


def test_run_wait_logs_remove(root: Path) -> None:
    handle = imagekit.run("busybox", ["sh", "-c", "echo hello from python; exit 4"], root=root, env=("A=1",), name="py")
    assert handle.name == "py" and len(handle.id) == 64
    assert handle.wait(timeout=30) == 4
    assert handle.logs() == b"hello from python\n"
    assert handle.status == "exited"
    handle.remove()
    assert not (root / "containers" / handle.id).exists() and not (root / "snapshots" / handle.id).exists()


def test_stop_and_volumes(root: Path, tmp_path: Path) -> None:
    (tmp_path / "share").mkdir()
    handle = imagekit.run("busybox", ["sh", "-c", "echo $A > /share/a; sleep 100"], root=root, env=("A=xyz",),
                          volumes=(VolumeSpec("bind", "/share", str(tmp_path / "share")),), init=True)
    with pytest.raises(ContainerError, match="still runs"):
        handle.wait(timeout=0.2)
    assert handle.stop(timeout=5) == 143
    assert (tmp_path / "share" / "a").read_text() == "xyz\n"
    handle.remove()


def test_missing_image_and_bad_options_leave_nothing(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DOCKER_HUB_API_ENV, CLOSED_PORT)
    with pytest.raises(RegistryError, match="cannot reach"):
        imagekit.run("not-in-the-store:1", root=root)
    with pytest.raises(SandboxError, match="Minimum memory"):
        imagekit.run("busybox", root=root, memory=1024)
    with pytest.raises(ContainerError, match="no command"):
        imagekit.run("busybox", root=root, entrypoint="")
    assert not (root / "containers").exists() or [p.name for p in (root / "containers").iterdir()] == ["lock"]
