"""Registry fixtures: real registries per test session (per xdist worker).

- `open_registry`: no auth, plain HTTP (a RegistryServer).
- `basic_registry`, `token_registry`, `tls_registry`: AuthRegistry handles (tests/registry/auth_servers.py)
  with host, url, user, password, namespace, ca_path, certs_dir, credentials, token_server, transport().
- `any_registry`: parametrized over all four (open, basic, token, tls), each as an AuthRegistry.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.registry.auth_servers import AuthRegistry, start_basic_registry, start_tls_registry, start_token_registry
from tests.registry.fault_proxy import FaultProxy
from tests.registry.registry_server import RegistryServer, start_registry


@pytest.fixture(scope="session")
def open_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    server = start_registry(tmp_path_factory.mktemp("registry-open"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def basic_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthRegistry]:
    registry = start_basic_registry(tmp_path_factory.mktemp("registry-basic"))
    yield registry
    registry.stop()


@pytest.fixture(scope="session")
def token_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthRegistry]:
    registry = start_token_registry(tmp_path_factory.mktemp("registry-token"))
    yield registry
    registry.stop()


@pytest.fixture(scope="session")
def tls_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthRegistry]:
    registry = start_tls_registry(tmp_path_factory.mktemp("registry-tls"))
    yield registry
    registry.stop()


@pytest.fixture(params=["open", "basic", "token", "tls"])
def any_registry(request: pytest.FixtureRequest) -> AuthRegistry:
    """Each registry flavour in turn, as an AuthRegistry (the open one without user or CA)."""
    if request.param == "open":
        return AuthRegistry(request.getfixturevalue("open_registry"))
    return request.getfixturevalue(f"{request.param}_registry")


@pytest.fixture(scope="session")
def relative_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """A registry that answers uploads with relative Location headers (`http.relativeurls`)."""
    server = start_registry(tmp_path_factory.mktemp("registry-relative"), {"http": {"relativeurls": True}})
    yield server
    server.stop()


@pytest.fixture(scope="session")
def _session_proxy(open_registry: RegistryServer) -> Iterator[FaultProxy]:
    proxy = FaultProxy(open_registry.host)
    yield proxy
    proxy.stop()


@pytest.fixture
def fault_proxy(_session_proxy: FaultProxy) -> Iterator[FaultProxy]:
    """The fault-injecting proxy in front of the open registry, with no faults armed."""
    _session_proxy.clear()
    yield _session_proxy
    _session_proxy.clear()
