"""The OCI image-spec's own JSON schemas as validators, to check what imagekit writes.

The schemas live in `<repo>/../shared/conformance/oci-image-spec/schema` (copied data, see its README).
In a git worktree the repository's main checkout stands in for `<repo>`, so helpers working in
worktrees test against the same files. Tests skip, saying why, only when the folder is absent.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest
from jsonschema import Draft4Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

REPO = Path(__file__).resolve().parent.parent
SCHEMA_SUBDIR = Path("shared/conformance/oci-image-spec/schema")


def _checkouts() -> list[Path]:
    """This checkout, then (in a worktree) the main checkout that `.git` points back to."""
    found = [REPO]
    dot_git = REPO / ".git"
    if dot_git.is_file() and dot_git.read_text().startswith("gitdir:"):
        gitdir = Path(dot_git.read_text().split(":", 1)[1].strip())
        found.append(gitdir.parent.parent.parent)  # <main>/.git/worktrees/<name> -> <main>
    return found


def schema_dir() -> Path | None:
    for checkout in _checkouts():
        candidate = checkout.parent / SCHEMA_SUBDIR
        if candidate.is_dir():
            return candidate
    return None


@cache
def _registry_and_docs() -> tuple[Registry, dict[str, Any]]:
    folder = schema_dir()
    if folder is None:
        pytest.skip(f"OCI schemas not found at {REPO.parent / SCHEMA_SUBDIR}")
    docs = {p.name: json.loads(p.read_text()) for p in folder.glob("*.json")}
    # Each file is registered under its file name; its `$ref`s are relative to the `id` of the schema
    # they appear in, so each file is also registered under every schema id's base.
    bases = {""} | {doc.get("id", "") for doc in docs.values()}
    registry = Registry().with_resources(
        (urljoin(base, name), Resource(doc, specification=DRAFT4)) for name, doc in docs.items() for base in bases
    )
    return registry, docs


def validator(schema_file: str) -> Draft4Validator:
    """A Draft-4 validator for one schema file (e.g. `image-manifest-schema.json`)."""
    registry, docs = _registry_and_docs()
    return Draft4Validator(docs[schema_file], registry=registry)


def errors(schema_file: str, instance: Any) -> list[str]:
    """Every schema violation of `instance`, as messages; [] means valid."""
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator(schema_file).iter_errors(instance)]


MANIFEST = "image-manifest-schema.json"
INDEX = "image-index-schema.json"
CONFIG = "config-schema.json"
DESCRIPTOR = "content-descriptor.json"
LAYOUT = "image-layout-schema.json"
