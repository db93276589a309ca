"""Keeps the import arrows of ARCHITECTURE.md true: leaves stay leaves, registry never touches the store.

Every module of imagekit must fall under one entry of ALLOWED, so a new module forces a decision
about where it sits in the map.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# area -> the imagekit areas it may import (an area is the first component below `imagekit`).
ALLOWED: dict[str, set[str]] = {
    "__init__": {"builder", "fetch", "registry", "store", "cli", "runtime", "errors", "reference"},  # imagekit.build() and run(): entry points, imported lazily
    "__main__": {"cli"},
    "errors": set(),
    "values": set(),
    "log": set(),
    "fsutil": {"errors"},
    "digest": {"errors"},
    "reference": {"errors"},
    "oci": {"errors", "digest"},
    "image": {"errors", "digest", "oci"},
    "platforms": {"errors", "oci"},
    "config": {"errors", "oci"},
    "layers": {"errors", "digest", "oci", "image", "log"},
    "layout": {"errors", "digest", "oci", "image", "reference", "fsutil"},
    "store": {"errors", "digest", "oci", "image", "reference", "layout", "layers", "platforms", "fsutil", "log"},
    "importer": {"errors", "digest", "oci", "config", "image", "reference", "layout", "layers", "fsutil"},
    "progress": {"errors"},
    "fetch": {"errors", "digest", "oci", "image", "reference", "layout", "store", "registry", "origins", "platforms", "progress"},
    "origins": {"errors", "digest", "fsutil"},
    "registry": {"errors", "digest", "oci", "image", "reference", "progress", "platforms", "fsutil", "log"},
    "sandbox": {"errors"},
    "users": {"errors"},
    "snapshots": {"errors", "digest", "oci", "image", "layers", "layout", "store", "sandbox", "fsutil"},
    "builder": {"errors", "digest", "oci", "image", "reference", "layers", "layout", "store", "sandbox", "fsutil",
                "config", "platforms", "snapshots", "users"},
    "runtime": {"errors", "digest", "oci", "image", "reference", "config", "layers", "layout", "store", "snapshots", "sandbox",
                "users", "fsutil", "platforms"},
    "diskusage": {"errors", "digest", "oci", "image", "fsutil", "layout", "store", "snapshots", "runtime", "builder"},
    "cli": {"*"},
}


#: Leaves any area may import, as it imports the standard library: frozen value classes (imagekit.values).
EVERYWHERE = {"values"}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def area_of(path: Path) -> str:
    rel = path.relative_to(ROOT / "imagekit")
    return rel.parts[0].removesuffix(".py")


def imagekit_areas(modules: set[str]) -> set[str]:
    return {m.split(".")[1] for m in modules if m.startswith("imagekit.") and len(m.split(".")) > 1}


@pytest.mark.parametrize("path", sorted((ROOT / "imagekit").rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_imagekit_import_arrows(path: Path) -> None:
    area = area_of(path)
    assert area in ALLOWED, f"{area} is not in the module map: add it to ARCHITECTURE.md and ALLOWED"
    allowed = ALLOWED[area]
    if "*" in allowed:
        return
    used = imagekit_areas(imported_modules(path)) - {area} - EVERYWHERE
    # `from imagekit import errors` names the area as an attribute of the package.
    assert used <= allowed | {"__version__"}, f"{path.name} imports {sorted(used - allowed)}"


@pytest.mark.parametrize("path", sorted((ROOT / "builderfile").rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_builderfile_never_imports_imagekit(path: Path) -> None:
    bad = {m for m in imported_modules(path) if m == "imagekit" or m.startswith("imagekit.")}
    assert not bad, f"{path.name} imports {sorted(bad)}"


@pytest.mark.parametrize("path", sorted((ROOT / "builderfile").rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_builderfile_uses_only_the_standard_library(path: Path) -> None:
    import sys

    roots = {m.split(".")[0] for m in imported_modules(path)} - {"builderfile", "__future__"}
    assert roots <= set(sys.stdlib_module_names), f"{path.name} imports {sorted(roots - set(sys.stdlib_module_names))}"
