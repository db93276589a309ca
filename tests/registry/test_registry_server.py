"""The test registry itself answers the distribution API (guards every registry test's premise)."""

from __future__ import annotations

import json
import urllib.request

from tests.registry.registry_server import RegistryServer


def test_open_registry_answers_v2(open_registry: RegistryServer) -> None:
    with urllib.request.urlopen(f"{open_registry.url}/v2/", timeout=5) as response:
        assert response.status == 200
        assert response.headers["Docker-Distribution-Api-Version"] == "registry/2.0"
        assert json.loads(response.read()) == {}
