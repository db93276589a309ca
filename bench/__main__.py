"""`make bench`: runs every bench module (each exposes `main() -> None` and prints its ratios).

`python -m bench layers registry` runs only the named ones.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import bench


def main(names: list[str]) -> None:
    available = sorted(m.name for m in pkgutil.iter_modules(bench.__path__) if not m.name.startswith("_"))
    for name in names or available:
        if name not in available:
            sys.exit(f"bench: no module {name!r} (have: {', '.join(available)})")
        print(f"== bench {name}", flush=True)
        importlib.import_module(f"bench.{name}").main()


if __name__ == "__main__":
    main(sys.argv[1:])
