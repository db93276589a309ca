"""`python -m builderfile parse FILE|-` prints the syntax as JSON; `check FILE` validates the instructions too.

Findings go to stderr as `FILE:LINE: message` lines in line order (warnings marked `warning:`), exit
status 1 if any is an error, never a traceback; a file that passes gets a one-line summary on stdout.
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


def _parse(name: str, data: bytes, pretty: bool) -> int:
    document = parse(data)
    sys.stdout.write(json.dumps(contract(document), ensure_ascii=True, indent=2 if pretty else None) + "\n")
    return 0


def _check(name: str, data: bytes, pretty: bool) -> int:
    from builderfile.instructions import check

    report = check(data)
    for finding in report.findings():  # warnings do not fail the check, but a human should see them
        print(finding.located(name), file=sys.stderr)
    if report.errors or report.builderfile is None:
        return 1
    stages = report.builderfile.stages
    count = len(report.builderfile.meta_args) + sum(1 + len(stage.instructions) for stage in stages)
    print(f"ok: {len(stages)} stage{'s' * (len(stages) != 1)}, {count} instruction{'s' * (count != 1)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Runs one command and returns the exit status (0 fine, 1 bad input, 2 usage)."""
    parser = argparse.ArgumentParser(prog="python -m builderfile", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["parse", "check"])
    parser.add_argument("file", help="a Builderfile, or - for stdin")
    parser.add_argument("--pretty", action="store_true", help="parse: indent the JSON")
    args = parser.parse_args(argv)
    shown = "<stdin>" if args.file == "-" else args.file
    try:
        data = _read(args.file)
    except OSError as err:
        print(f"{shown}: cannot read: {err.strerror or err}", file=sys.stderr)
        return 1
    try:
        return (_parse if args.command == "parse" else _check)(shown, data, args.pretty)
    except BuilderfileError as err:
        print(err.located(shown), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
