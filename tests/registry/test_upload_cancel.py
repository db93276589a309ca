"""A failed upload cancels its session with DELETE: a chunk, the final PUT or the source failing, a
retried push's abandoned session, and Ctrl-C in the middle of a chunked push.

"Cancelled" is judged on the real registry's storage, not on what imagekit sent: distribution keeps an
upload session as `_uploads/<uuid>/startedat` in the repository and removes it when the session is
cancelled (or completed), so a session left open is a file still there.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from imagekit.digest import Digest
from imagekit.errors import RegistryError
from imagekit.layout import Layout
from imagekit.registry.client import Repository
from imagekit.registry.retry import RetryPolicy
from imagekit.registry.transfer import push
from imagekit.registry.transport import Transport
from tests.registry.auth_servers import AuthRegistry
from tests.registry.fault_proxy import Fault, FaultProxy
from tests.registry.images import build_image, random_layer
from tests.registry.registry_server import RegistryServer

CHUNK = 64 << 10


def open_sessions(registry: RegistryServer, name: str) -> list[str]:
    """The upload sessions the registry still holds open in repository `name` (their UUIDs)."""
    uploads = registry.storage / "docker/registry/v2/repositories" / name / "_uploads"
    return sorted(p.parent.name for p in uploads.glob("*/startedat"))


def sessions_started(proxy: FaultProxy) -> int:
    return sum(1 for method, path, _ in proxy.requests if method == "POST" and "/blobs/uploads/" in path)


def deletes(proxy: FaultProxy) -> list[str]:
    return [path for method, path, _ in proxy.requests if method == "DELETE"]


@pytest.fixture
def name() -> str:
    return f"test/{uuid.uuid4().hex[:12]}"


@pytest.mark.parametrize(
    ("size", "failing", "source"),
    [
        (5 * CHUNK, ("PATCH", 500), 5 * CHUNK),
        (5 * CHUNK, ("PUT", 400), 5 * CHUNK),
        (1000, ("PUT", 400), 1000),
        (5 * CHUNK, None, 2 * CHUNK + 10),
    ],
    ids=["chunk-fails", "final-put-after-chunks-fails", "monolithic-put-fails", "source-ends-early"],
)
def test_a_failed_upload_cancels_its_session(
    open_registry: RegistryServer, fault_proxy: FaultProxy, name: str, size: int, failing: tuple[str, int] | None, source: int
) -> None:
    """`failing`: the (method, status) the proxy answers instead of the registry; `source`: where the stream breaks off."""
    data = os.urandom(size)
    stream = io.BytesIO(data[:source])  # a source that breaks off, as a failing disk or a dead pipe would
    if failing is not None:
        fault_proxy.inject(Fault("status", r"/blobs/uploads/", method=failing[0], status=failing[1]))
    repo = Repository(Transport(fault_proxy.host), name)
    with pytest.raises(RegistryError):
        repo.upload_blob(stream, Digest.of_bytes(data), size, chunk_size=CHUNK)  # type: ignore[arg-type]
    assert sessions_started(fault_proxy) == 1
    assert open_sessions(open_registry, name) == [], fault_proxy.requests
    assert len(deletes(fault_proxy)) == 1


def test_a_failing_cancel_is_tried_twice_and_never_hides_the_uploads_own_error(fault_proxy: FaultProxy, name: str) -> None:
    """Cancelling is best effort on the way out: a DELETE that fails is retried once, quickly, and then
    the caller still sees why the upload failed, not why the cancel did."""
    fault_proxy.inject(
        Fault("status", r"/blobs/uploads/", method="PUT", status=400, body=b'{"errors":[{"code":"DIGEST_INVALID","message":"upload failed"}]}'),
        Fault("status", r"/blobs/uploads/", method="DELETE", status=503, times=100),
    )
    repo = Repository(Transport(fault_proxy.host), name)
    with pytest.raises(RegistryError, match="DIGEST_INVALID"):
        repo.upload_blob(io.BytesIO(b"data"), Digest.of_bytes(b"data"), 4)  # type: ignore[arg-type]
    assert len(deletes(fault_proxy)) == 2


def test_a_failed_upload_to_a_token_registry_is_cancelled_with_the_delete_scope_its_401_names(token_registry: AuthRegistry) -> None:
    """distribution wants the `delete` action for any DELETE, an upload session's too. The cancel asks for what
    the push had (pull,push: a registry that lets the pusher cancel needs no new token), and distribution's 401
    names `delete`, which is asked for with it and granted to the namespace's owner: the session is gone."""
    repository = f"{token_registry.namespace}/{uuid.uuid4().hex[:12]}"
    proxy = FaultProxy(token_registry.host)
    try:
        proxy.inject(Fault("status", r"/blobs/uploads/", method="PUT", status=400))
        repo = Repository(Transport(proxy.host, credentials=token_registry.credentials), repository)
        with pytest.raises(RegistryError, match="HTTP 400"):
            repo.upload_blob(io.BytesIO(b"data"), Digest.of_bytes(b"data"), 4)  # type: ignore[arg-type]
        assert open_sessions(token_registry.server, repository) == [], proxy.requests
        assert len(deletes(proxy)) == 2  # the first answered 401 naming delete
    finally:
        proxy.stop()
    assert token_registry.token_server is not None
    asked = [r.scopes for r in token_registry.token_server.requests if any(repository in s for s in r.scopes)]
    assert asked == [[f"repository:{repository}:pull,push"], [f"repository:{repository}:delete,pull,push"]]


def test_a_push_that_retries_an_upload_cancels_the_session_it_abandons(
    tmp_path: Path, open_registry: RegistryServer, fault_proxy: FaultProxy, name: str
) -> None:
    image = build_image(Layout(tmp_path / "src"), "app", [random_layer(3000)])
    fault_proxy.inject(Fault("status", r"/blobs/uploads/", method="PUT", status=503))
    repo = Repository(Transport(fault_proxy.host, retry=RetryPolicy(sleep=lambda s: None)), name)
    assert push(image, repo, "v1") == image.digest
    assert sessions_started(fault_proxy) == 3  # config, layer, and the one the 503 hit again
    assert open_sessions(open_registry, name) == [], fault_proxy.requests
    assert len(deletes(fault_proxy)) == 1


PUSHER = """
import sys
from imagekit.layout import Layout
from imagekit.registry.client import Repository
from imagekit.registry.transfer import push
from imagekit.registry.transport import Transport
image = Layout(sys.argv[1]).image(sys.argv[2])
try:
    push(image, Repository(Transport(sys.argv[3]), sys.argv[4]), "v1", chunk_size=int(sys.argv[5]), workers=1)
except KeyboardInterrupt:
    sys.exit(130)
"""


def test_ctrl_c_in_the_middle_of_a_chunked_push_cancels_the_session(
    tmp_path: Path, open_registry: RegistryServer, fault_proxy: FaultProxy, name: str
) -> None:
    layer = random_layer(32 * CHUNK)
    image = build_image(Layout(tmp_path / "src"), "app", [layer])
    fault_proxy.inject(Fault("slow", r"/blobs/uploads/", method="PATCH", times=1000, delay=0.2))
    pusher = subprocess.Popen(
        [sys.executable, "-c", PUSHER, str(tmp_path / "src"), "docker.io/library/app:latest", fault_proxy.host, name, str(CHUNK)],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not any(method == "PATCH" for method, _, _ in fault_proxy.requests):
            assert pusher.poll() is None and time.monotonic() < deadline, "the push never reached its first chunk"
            time.sleep(0.01)
        pusher.send_signal(signal.SIGINT)
        _, err = pusher.communicate(timeout=60)
    finally:
        if pusher.poll() is None:
            pusher.kill()
    assert pusher.returncode == 130, err
    patches = sum(1 for method, _, _ in fault_proxy.requests if method == "PATCH")
    assert patches < len(layer) // CHUNK, "the push was not interrupted: the test proved nothing"
    assert open_sessions(open_registry, name) == [], fault_proxy.requests
    assert len(deletes(fault_proxy)) == 1
