"""Pulls through a fault-injecting proxy: each ends correct after retries, or fails with a clear error,
and the store never holds a corrupt blob."""

from __future__ import annotations

import io
import uuid
from pathlib import Path

import pytest

from imagekit.digest import Digest
from imagekit.errors import DigestMismatch, RegistryError
from imagekit.image import Image
from imagekit.layout import Layout
from imagekit.progress import LineProgress
from imagekit.registry.client import Repository
from imagekit.registry.retry import RetryPolicy
from imagekit.registry.transfer import download, pull, push
from imagekit.registry.transport import Transport
from tests.registry.cli import assert_one_line_error, run_cli
from tests.registry.fault_proxy import Fault, FaultProxy
from tests.registry.images import build_image, random_layer
from tests.registry.registry_server import RegistryServer

LAYER_SIZE = 3_000_000


class Sleeps:
    """Records the backoff delays instead of sleeping, so fault tests are fast and can check them."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def pushed(tmp_path: Path, open_registry: RegistryServer) -> tuple[str, Image]:
    """An image (config + two layers) pushed straight to the registry; returns (repository name, image)."""
    image = build_image(Layout(tmp_path / "src"), "app", [random_layer(LAYER_SIZE), random_layer(1000)])
    name = f"test/{uuid.uuid4().hex[:12]}"
    push(image, Repository(Transport(open_registry.host), name), "v1")
    return name, image


def assert_store_sound(root: Path) -> None:
    """Every stored blob hashes to its name, and no temporary file is left behind."""
    blobs = root / "blobs" / "sha256"
    for path in blobs.iterdir() if blobs.exists() else ():
        assert str(Digest.of_bytes(path.read_bytes())) == f"sha256:{path.name}"
    assert not list((root / "tmp").iterdir()) if (root / "tmp").exists() else True


def pull_through(proxy: FaultProxy, name: str, root: Path, sleeps: Sleeps) -> Image:
    pulled = pull(Repository(Transport(proxy.host, retry=RetryPolicy(attempts=4, sleep=sleeps)), name), "v1")
    layout = Layout(root)
    download(pulled.image, layout)
    layout.write_image(pulled.image, "ref")
    return pulled.image


def layer_path(image: Image) -> str:
    return f"/blobs/{image.manifest.layers[0].digest}"


def test_truncated_body_resumes_with_range(tmp_path: Path, fault_proxy: FaultProxy, pushed: tuple[str, Image], sleeps: Sleeps) -> None:
    name, image = pushed
    fault_proxy.inject(Fault("truncate", layer_path(image)))
    got = pull_through(fault_proxy, name, tmp_path / "store", sleeps)
    assert got.digest == image.digest
    ranges = [h.get("Range") for m, p, h in fault_proxy.requests if m == "GET" and p.endswith(layer_path(image))]
    assert ranges == [None, f"bytes={image.manifest.layers[0].size // 2}-"]
    assert_store_sound(tmp_path / "store")
    assert Layout(tmp_path / "store").has_blob(image.manifest.layers[0].digest)


def test_resume_when_the_registry_ignores_range(tmp_path: Path, fault_proxy: FaultProxy, pushed: tuple[str, Image], sleeps: Sleeps) -> None:
    """A 200 instead of 206 sends the whole blob again: the bytes already stored are skipped, not doubled."""
    name, image = pushed
    fault_proxy.inject(Fault("truncate", layer_path(image)), Fault("norange", layer_path(image)))
    assert pull_through(fault_proxy, name, tmp_path / "store", sleeps).digest == image.digest
    assert [kind for kind, _, _ in fault_proxy.fired] == ["truncate", "norange"]
    assert Layout(tmp_path / "store").has_blob(image.manifest.layers[0].digest)
    assert_store_sound(tmp_path / "store")


def test_downloads_run_in_parallel_within_the_bound(tmp_path: Path, open_registry: RegistryServer, fault_proxy: FaultProxy, sleeps: Sleeps) -> None:
    image = build_image(Layout(tmp_path / "src"), "many", [random_layer(1000 + i) for i in range(6)])
    name = f"test/{uuid.uuid4().hex[:12]}"
    push(image, Repository(Transport(open_registry.host), name), "v1")
    pulled = pull(Repository(Transport(fault_proxy.host), name), "v1")
    fault_proxy.clear()
    fault_proxy.inject(Fault("slow", "/blobs/", times=100, delay=0.5))
    assert len(download(pulled.image, Layout(tmp_path / "dst"), workers=3)) == 7
    assert fault_proxy.peak == 3


def test_the_cli_pushes_and_pulls_four_blobs_at_a_time_by_default(
    tmp_path: Path, fault_proxy: FaultProxy, capsys: pytest.CaptureFixture[str]
) -> None:
    """The default parallelism (4), seen as the most requests in flight at once through a slow proxy."""
    build_image(Layout(tmp_path / "src"), "many", [random_layer(1000 + i) for i in range(7)])
    dest = f"{fault_proxy.host}/test/{uuid.uuid4().hex[:12]}:v1"
    fault_proxy.inject(Fault("slow", "/blobs/uploads/", method="PUT", times=100, delay=0.3))
    code, _, err = run_cli(capsys, "--root", str(tmp_path / "src"), "push", "-q", "many", dest)
    assert code == 0, err
    assert fault_proxy.peak == 4
    fault_proxy.clear()
    fault_proxy.inject(Fault("slow", "/blobs/sha256:", times=100, delay=0.3))
    code, _, err = run_cli(capsys, "--root", str(tmp_path / "dst"), "pull", "-q", dest)
    assert code == 0, err
    assert fault_proxy.peak == 4


def test_truncated_manifest_is_fetched_again_or_fails_clearly(
    tmp_path: Path, fault_proxy: FaultProxy, pushed: tuple[str, Image], sleeps: Sleeps
) -> None:
    name, image = pushed
    fault_proxy.inject(Fault("truncate", "/manifests/v1"))
    assert pull_through(fault_proxy, name, tmp_path / "a", sleeps).digest == image.digest
    fault_proxy.inject(Fault("truncate", "/manifests/v1", times=100))
    with pytest.raises(RegistryError, match="connection broke"):
        pull_through(fault_proxy, name, tmp_path / "b", sleeps)


def test_dropped_connection_is_retried(tmp_path: Path, fault_proxy: FaultProxy, pushed: tuple[str, Image], sleeps: Sleeps) -> None:
    name, image = pushed
    fault_proxy.inject(Fault("drop", layer_path(image)), Fault("drop", "/manifests/v1"))
    assert pull_through(fault_proxy, name, tmp_path / "store", sleeps).digest == image.digest
    assert {kind for kind, _, _ in fault_proxy.fired} == {"drop"} and len(fault_proxy.fired) == 2
    assert_store_sound(tmp_path / "store")


def test_server_errors_are_retried_with_backoff(tmp_path: Path, fault_proxy: FaultProxy, pushed: tuple[str, Image], sleeps: Sleeps) -> None:
    name, image = pushed
    fault_proxy.inject(Fault("status", "/manifests/v1", times=2, status=500), Fault("status", layer_path(image), times=2, status=503))
    assert pull_through(fault_proxy, name, tmp_path / "store", sleeps).digest == image.digest
    assert len(sleeps.delays) == 4
    assert_store_sound(tmp_path / "store")


def test_429_honours_retry_after(tmp_path: Path, fault_proxy: FaultProxy, pushed: tuple[str, Image], sleeps: Sleeps) -> None:
    name, image = pushed
    fault_proxy.inject(Fault("status", layer_path(image), status=429, headers={"Retry-After": "7"}, body=b'{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}'))
    assert pull_through(fault_proxy, name, tmp_path / "store", sleeps).digest == image.digest
    assert sleeps.delays == [7.0]


def test_corrupt_byte_once_is_fetched_again(tmp_path: Path, fault_proxy: FaultProxy, pushed: tuple[str, Image], sleeps: Sleeps) -> None:
    name, image = pushed
    fault_proxy.inject(Fault("corrupt", layer_path(image)))
    assert pull_through(fault_proxy, name, tmp_path / "store", sleeps).digest == image.digest
    assert ("corrupt", "GET", f"/v2/{name}{layer_path(image)}") in fault_proxy.fired
    assert_store_sound(tmp_path / "store")


def stored_digests(root: Path) -> set[str]:
    """The names of every blob file in the store (whatever their content hashes to)."""
    blobs = root / "blobs" / "sha256"
    return {f"sha256:{p.name}" for p in blobs.iterdir()} if blobs.exists() else set()


def test_persistent_corruption_fails_and_stores_nothing(tmp_path: Path, fault_proxy: FaultProxy, pushed: tuple[str, Image], sleeps: Sleeps) -> None:
    """The download itself refuses the corrupt layer, and no blob but the image's own appears.

    A self-consistent blob stored under the corrupt bytes' own hash would pass assert_store_sound, so
    the store's blobs are also compared with the digests the image names.
    """
    name, image = pushed
    fault_proxy.inject(Fault("corrupt", layer_path(image), times=100))
    pulled = pull(Repository(Transport(fault_proxy.host, retry=RetryPolicy(attempts=4, sleep=sleeps)), name), "v1")
    layout = Layout(tmp_path / "store")
    with pytest.raises(DigestMismatch, match=str(image.manifest.layers[0].digest)):
        download(pulled.image, layout)
    assert stored_digests(tmp_path / "store") <= {str(d.digest) for d in image.blobs()} - {str(image.manifest.layers[0].digest)}
    with pytest.raises(DigestMismatch, match=str(image.manifest.layers[0].digest)):
        pull_through(fault_proxy, name, tmp_path / "store", sleeps)
    assert not layout.has_blob(image.manifest.layers[0].digest)
    assert layout.refs() == []
    assert stored_digests(tmp_path / "store") <= {str(d.digest) for d in image.blobs()}
    assert_store_sound(tmp_path / "store")


def test_persistent_server_errors_fail_clearly(tmp_path: Path, fault_proxy: FaultProxy, pushed: tuple[str, Image], sleeps: Sleeps) -> None:
    name, image = pushed
    fault_proxy.inject(Fault("status", layer_path(image), times=100, status=500))
    with pytest.raises(RegistryError, match="HTTP 500"):
        pull_through(fault_proxy, name, tmp_path / "store", sleeps)
    assert not Layout(tmp_path / "store").has_blob(image.manifest.layers[0].digest)
    assert_store_sound(tmp_path / "store")


def test_persistent_truncation_fails_clearly(tmp_path: Path, fault_proxy: FaultProxy, pushed: tuple[str, Image], sleeps: Sleeps) -> None:
    name, image = pushed
    fault_proxy.inject(Fault("truncate", layer_path(image), times=100))
    with pytest.raises(RegistryError, match=f"download of blob {image.manifest.layers[0].digest} failed"):
        pull_through(fault_proxy, name, tmp_path / "store", sleeps)
    assert_store_sound(tmp_path / "store")


def test_wrong_digest_header_once_is_retried_and_always_fails(tmp_path: Path, fault_proxy: FaultProxy, pushed: tuple[str, Image], sleeps: Sleeps) -> None:
    name, image = pushed
    fault_proxy.inject(Fault("digest", "/manifests/v1"))
    assert pull_through(fault_proxy, name, tmp_path / "a", sleeps).digest == image.digest
    fault_proxy.inject(Fault("digest", "/manifests/v1", times=100))
    with pytest.raises(DigestMismatch, match="Docker-Content-Digest"):
        pull_through(fault_proxy, name, tmp_path / "b", sleeps)
    assert not (tmp_path / "b").exists()


def test_cli_reports_a_corrupt_pull_in_one_line(
    tmp_path: Path, fault_proxy: FaultProxy, pushed: tuple[str, Image], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    name, image = pushed
    fault_proxy.inject(Fault("corrupt", layer_path(image), times=100))
    monkeypatch.setattr(RetryPolicy, "wait", lambda self, retry, retry_after=None: 0.0)
    root = tmp_path / "store"
    code, out, err = run_cli(capsys, "--root", str(root), "pull", f"{fault_proxy.host}/{name}:v1")
    assert "Traceback" not in err
    assert_one_line_error(code, err.splitlines()[-1] + "\n")  # after the progress lines
    assert str(image.manifest.layers[0].digest) in err.splitlines()[-1]
    assert not Layout(root).has_blob(image.manifest.layers[0].digest)
    assert stored_digests(root) <= {str(d.digest) for d in image.blobs()}
    assert_store_sound(root)



def test_each_retry_is_one_short_line_and_queued_layers_wait(tmp_path: Path, fault_proxy: FaultProxy, pushed: tuple[str, Image], sleeps: Sleeps) -> None:
    """Five retries of one blob print five lines of a few words (no digests, no URLs); layers not yet
    started show as Waiting; the config blob is not shown as a layer."""
    name, image = pushed
    fault_proxy.inject(Fault("truncate", layer_path(image), times=3), Fault("corrupt", layer_path(image), times=2))
    pulled = pull(Repository(Transport(fault_proxy.host, retry=RetryPolicy(attempts=6, sleep=sleeps)), name), "v1")
    out = io.StringIO()
    download(pulled.image, Layout(tmp_path / "store"), progress=LineProgress(out), workers=1)
    lines = out.getvalue().splitlines()
    layers = [d.digest.short for d in image.manifest.layers]
    assert lines[:2] == [f"{key}: Waiting" for key in layers]
    retries = [line for line in lines if "retrying" in line]
    assert len(retries) == 5 and all(line.startswith(f"{layers[0]}: retrying at ") for line in retries)
    assert all(len(line) < 80 and "sha256" not in line and "http" not in line for line in retries), retries
    assert not any(line.startswith(image.manifest.config.digest.short) for line in lines)
    assert_store_sound(tmp_path / "store")
