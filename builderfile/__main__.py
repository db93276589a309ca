"""`python -m builderfile parse FILE|-` prints the syntax as JSON; `check FILE` validates the instructions too.

Errors go to stderr as one `FILE:LINE: message` line with exit status 1, never a traceback.
Stdlib only; must not import imagekit.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from builderfile.errors import BuilderfileError
from builderfile.syntax import contract, parse


def _read(name: str) -> bytes:
    if name == "-":
        return sys.stdin.buffer.read()
    return Path(name).read_bytes()


def _parse(name: str, data: bytes) -> int:
    document = parse(data)
    sys.stdout.write(json.dumps(contract(document), ensure_ascii=True, indent=None) + "\n")
    return 0


def _check(name: str, data: bytes) -> int:
    from builderfile.instructions import check

    report = check(data)
    for problem in report.errors:
        print(problem.located(name), file=sys.stderr)
    for warning in report.warnings:  # they do not fail the check, but a human should see them
        print(BuilderfileError(f"warning: {warning.message}", warning.line).located(name), file=sys.stderr)
    return 1 if report.errors else 0


def main(argv: list[str] | None = None) -> int:
    """Runs one command and returns the exit status (0 fine, 1 bad input, 2 usage)."""
    parser = argparse.ArgumentParser(prog="python -m builderfile", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["parse", "check"])
    parser.add_argument("file", help="a Builderfile, or - for stdin")
    args = parser.parse_args(argv)
    shown = "<stdin>" if args.file == "-" else args.file
    try:
        data = _read(args.file)
    except OSError as err:
        print(f"{shown}: cannot read: {err.strerror or err}", file=sys.stderr)
        return 1
    try:
        return (_parse if args.command == "parse" else _check)(shown, data)
    except BuilderfileError as err:
        print(err.located(shown), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
