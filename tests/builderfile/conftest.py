"""Shared fixtures of the builderfile tests: where BuildKit's conformance data lives."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.oci_schema import _checkouts

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures" / "builderfile"


def find_conformance() -> Path | None:
    """`shared/conformance` beside the clone (CI), or beside the main checkout when run from a worktree."""
    for checkout in _checkouts():
        candidate = checkout.parent / "shared" / "conformance"
        if candidate.is_dir():
            return candidate
    return None


CONFORMANCE = find_conformance()
BUILDKIT = CONFORMANCE / "buildkit" / "frontend" / "dockerfile" if CONFORMANCE else None


@pytest.fixture
def buildkit() -> Path:
    """The copied BuildKit test data (frontend/dockerfile); skips when ../shared/conformance is absent."""
    if BUILDKIT is None or not BUILDKIT.is_dir():
        pytest.skip("../shared/conformance is absent: BuildKit conformance data not available")
    return BUILDKIT
