"""The report of `make mutation` (not a test): kill rate per module, and every survivor with its diff line,
sorted into kinds by what the mutation touched. Run from the project root with mutmut installed.

A mutant counts as killed when a test failed or the run timed out; "no tests" means no selected test
reaches the mutated function, so it is left out of the rate; "not checked" mutants (an interrupted run)
are left out too and counted. The kinds are a first sort for tests/MUTANTS.md, which says why each kind
survives; "other" is what needs a reader (a new test, or a sentence in MUTANTS.md).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict

from mutmut.__main__ import SourceFileMutationData, get_diff_for_mutant, walk_mutatable_files
from mutmut.stats import status_by_exit_code

DETECTED = {"killed", "timeout", "caught by type check", "segfault"}
_FUNCTION = re.compile(r"\.x(?:_|ǁ)")
_MESSAGE_CALL = re.compile(r"raise |Error\(|BrokenBody\(|Cancelled\(|_skip\(|_error\(|warnings|message|what=|hint|detail|f\"")


def module_of(name: str) -> str:
    """`imagekit.layout.xǁLayoutǁwrite_blob__mutmut_5` -> `imagekit.layout`."""
    match = _FUNCTION.search(name)
    return name[: match.start()] if match else name.rsplit(".", 1)[0]


def changed_lines(diff: str) -> tuple[str, str]:
    minus = " ".join(line[1:].strip() for line in diff.splitlines() if line.startswith("-") and not line.startswith("---"))
    plus = " ".join(line[1:].strip() for line in diff.splitlines() if line.startswith("+") and not line.startswith("+++"))
    return minus, plus


def kind_of(minus: str, plus: str) -> str:
    """logging, message (only the words of an error or warning change), or other."""
    if re.search(r"\blog\.(debug|info|warning)\(", minus):
        return "logging"
    strings = re.compile(r"(?:b|f|rb|fr)?\"(?:[^\"\\]|\\.)*\"")
    if _MESSAGE_CALL.search(minus) and ("XX" in plus or strings.sub('""', minus.lower()) == strings.sub('""', plus.lower())):
        return "message"
    if _MESSAGE_CALL.search(minus) and re.search(r"(Error|BrokenBody|Cancelled)\((None\b|\))|_skip\(None|what=None", plus):
        return "message"
    return "other"


def main() -> None:
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    survivors: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    for path in walk_mutatable_files():
        data = SourceFileMutationData(path=path)
        data.load()
        for name, code in data.exit_code_by_key.items():
            status = status_by_exit_code[code]
            counts[module_of(name)][status] += 1
            if status == "survived":
                minus, plus = changed_lines(get_diff_for_mutant(name, path=data.path))
                survivors[kind_of(minus, plus)].append((name, minus, plus))
    print(f"{'module':30} {'mutants':>7} {'killed':>7} {'survived':>8} {'no tests':>8} {'unchecked':>9} {'kill rate':>9}")
    total: Counter[str] = Counter()
    for module in sorted(counts):
        total.update(counts[module])
        print(_row(module, counts[module]))
    print(_row("all", total))
    for kind in ("other", "message", "logging"):
        print(f"\nsurvivors, {kind} ({len(survivors[kind])}):")
        for name, minus, plus in sorted(survivors[kind]):
            print(f"  {name}\n      - {minus[:160]}\n      + {plus[:160]}")


def _row(module: str, c: Counter[str]) -> str:
    detected = sum(c[s] for s in DETECTED)
    checked = detected + c["survived"]
    rate = f"{100 * detected / checked:.1f}%" if checked else "-"
    return f"{module:30} {sum(c.values()):>7} {detected:>7} {c['survived']:>8} {c['no tests']:>8} {c['not checked']:>9} {rate:>9}"


if __name__ == "__main__":
    main()
