"""Kill rate per module from `mutmut results --all true` on stdin (used by `make mutation`, not a test).

A mutant counts as killed when a test failed (or the run timed out: an endless loop is noticed too);
"no tests" means no selected test reaches the mutated function, so it is left out of the rate and
listed on its own. Survivors are listed by name: each must be killed by a new test or explained as
equivalent in tests/MUTANTS.md.
"""

from __future__ import annotations

import re
import sys
from collections import Counter, defaultdict

DETECTED = {"killed", "timeout", "caught by type check", "segfault"}
_LINE = re.compile(r"^\s*(?P<name>\S+): (?P<status>.+?)\s*$")
_FUNCTION = re.compile(r"\.x(?:_|ǁ)")


def module_of(name: str) -> str:
    """`imagekit.layout.xǁLayoutǁwrite_blob__mutmut_5` -> `imagekit.layout`."""
    match = _FUNCTION.search(name)
    return name[: match.start()] if match else name.rsplit(".", 1)[0]


def main() -> None:
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    survivors: list[str] = []
    for line in sys.stdin:
        match = _LINE.match(line)
        if not match:
            continue
        name, status = match["name"], match["status"]
        counts[module_of(name)][status] += 1
        if status == "survived":
            survivors.append(name)
    print(f"{'module':34} {'mutants':>7} {'killed':>7} {'survived':>8} {'no tests':>8} {'kill rate':>9}")
    total: Counter[str] = Counter()
    for module in sorted(counts):
        total.update(counts[module])
        print(_row(module, counts[module]))
    print(_row("all", total))
    print()
    print(f"survivors ({len(survivors)}):")
    for name in sorted(survivors):
        print(f"  {name}")


def _row(module: str, c: Counter[str]) -> str:
    detected = sum(c[s] for s in DETECTED)
    tested = sum(c.values()) - c["no tests"]
    rate = f"{100 * detected / tested:.1f}%" if tested else "-"
    return f"{module:34} {sum(c.values()):>7} {detected:>7} {c['survived']:>8} {c['no tests']:>8} {rate:>9}"


if __name__ == "__main__":
    main()
