"""imagekit.fetch.pull_to_store: the pull flow as a library call (what the CLI and the builder use).

"Docker Hub" is the local open registry through IMAGEKIT_DOCKER_HUB_API; mirrors are dead loopback ports.
"""

from __future__ import annotations

import io
import uuid
from pathlib import Path

import pytest

from imagekit.digest import Digest
from imagekit.errors import RegistryError
from imagekit.fetch import pull_sources, pull_to_store
from imagekit.layout import Layout
from imagekit.origins import BlobOrigins
from imagekit.progress import LineProgress, Progress
from imagekit.reference import parse_reference
from imagekit.registry.client import Repository
from imagekit.registry.mirrors import Source
from imagekit.registry.options import RegistryOptions
from imagekit.registry.transfer import RegistrySource, push
from imagekit.registry.transport import Transport
from imagekit.store import Store
from tests.registry.images import build_image, random_layer
from tests.registry.registry_server import RegistryServer, free_port


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, open_registry: RegistryServer) -> None:
    monkeypatch.setenv("IMAGEKIT_DOCKER_HUB_API", open_registry.host)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    monkeypatch.delenv("REGISTRY_AUTH_FILE", raising=False)


def _seed(tmp_path: Path, host: str, path: str) -> Digest:
    image = build_image(Layout(tmp_path / f"seed-{uuid.uuid4().hex[:8]}"), "seed:1", [random_layer(5000), random_layer(100)])
    return push(image, Repository(Transport(host), path), "latest")


def _never() -> tuple[str, ...]:
    raise AssertionError("the settings were read for a pull that needs no mirrors")


def test_pull_to_store_falls_back_from_a_dead_mirror_and_stores_the_image(tmp_path: Path, open_registry: RegistryServer) -> None:
    name = "f" + uuid.uuid4().hex[:12]
    digest = _seed(tmp_path, open_registry.host, f"library/{name}")
    dead = f"http://127.0.0.1:{free_port()}"
    options = RegistryOptions(default_mirrors=lambda: (dead,))
    ref = parse_reference(name)
    started: list[Source] = []
    fallbacks: list[tuple[str, str, str]] = []
    lines = io.StringIO()

    def progress(source: Source) -> Progress:
        started.append(source)
        return LineProgress(lines)

    store = Store(tmp_path / "store")
    pulled = pull_to_store(ref, store, options, progress=progress, on_fallback=lambda failed, err, nxt: fallbacks.append((str(failed), str(err), str(nxt))))
    assert pulled.digest == digest
    assert [str(s) for s in started] == [open_registry.host]
    assert len(fallbacks) == 1 and fallbacks[0][0] == f"mirror {dead}" and "cannot reach" in fallbacks[0][1] and fallbacks[0][2] == open_registry.host
    assert "Pull complete" in lines.getvalue()
    # The returned image reads from the store, which names it by the reference and knows where its blobs came from.
    assert store.find(name).image.digest == pulled.image.digest == digest
    assert all(store.layout.has_blob(d.digest) for d in pulled.image.blobs())
    assert not isinstance(pulled.image.source, RegistrySource)
    layer = pulled.image.layers[0].digest
    assert BlobOrigins(store.root).on_registry([layer], "docker.io") == {layer: [f"library/{name}"]}


def test_other_registries_never_ask_for_mirrors_and_failures_leave_no_ref(tmp_path: Path, open_registry: RegistryServer) -> None:
    options = RegistryOptions(default_mirrors=_never)
    ref = parse_reference(f"{open_registry.host}/test/{uuid.uuid4().hex[:12]}")
    assert [str(s) for s in pull_sources(ref, options)] == [open_registry.host]
    store = Store(tmp_path / "store")
    with pytest.raises(RegistryError, match="manifest unknown"):
        pull_to_store(ref, store, options)
    assert store.images() == []
    digest = _seed(tmp_path, open_registry.host, ref.path)
    assert pull_to_store(ref, store, options).digest == digest
