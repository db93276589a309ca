"""A FROM image missing from the store is pulled from its registry (a real loopback docker-registry),
and `--pull` asks the registry again even when the store has the image."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.builder.conftest import build, ok, run_imagekit, unpack
from tests.registry.registry_server import RegistryServer, start_registry


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    server = start_registry(tmp_path_factory.mktemp("builder-registry"))
    yield server
    server.stop()


def test_from_pulls_a_missing_base_and_pull_flag_refreshes_it(root: Path, tmp_path: Path, registry: RegistryServer) -> None:
    remote = f"{registry.host}/base/busybox:1"
    ok(run_imagekit(root, "push", "busybox:latest", remote))
    fresh = tmp_path / "fresh-store"
    result = build(fresh, tmp_path / "ctx", "-t", "pulled:1", text=f"FROM {remote}\nRUN echo on-pulled > /x\n")
    ok(result)
    assert f"Pulling {remote}" in result.stderr
    assert (unpack(fresh, "pulled:1", tmp_path / "out") / "x").read_text() == "on-pulled\n"
    ok(run_imagekit(fresh, "inspect", remote))  # the base is in the store under its own name
    again = build(fresh, tmp_path / "ctx", "-t", "pulled:1")
    assert "Pulling" not in again.stderr  # in the store now
    refreshed = build(fresh, tmp_path / "ctx", "-t", "pulled:1", "--pull")
    ok(refreshed)
    assert f"Pulling {remote}" in refreshed.stderr
