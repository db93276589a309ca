"""`imagekit run` without click: a parser of the common case, over the same option tables click builds from.

`import click` costs about as much as `runc run`'s whole start (issue 10), so main() asks parse() first. It reads
argv as click's parser reads it (POSIX clusters `-it`, `-eK=V`, `--opt=value` and `--opt value`, `--`, the
first positional ending the options) against GLOBAL_OPTIONS and RUN_OPTIONS, and returns exactly the params
click would pass to the group's and run's callbacks, or None for anything it does not fully know (another
command, --help, an unknown option, a missing value, a value click would refuse or a type it does not
convert, a multiple option from the environment, shell completion): click then parses, with its messages.
tests/test_cli_fastpath.py holds the two parsers to the same answers. Must not import click.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

from imagekit.cli import GLOBAL_OPTIONS, aborted, start
from imagekit.cli.optionspec import OptionSpec

TYPE_CHECKING = False  # typing's import is a run's start-up cost; its names are for the type checker
if TYPE_CHECKING:
    from typing import NoReturn

#: click's shell completion runs when this is set (click.Command.main's complete_var for prog_name imagekit).
COMPLETE_VAR = "_IMAGEKIT_COMPLETE"


class Declined(Exception):
    """An argument the fast path leaves to click."""


Params = dict[str, object]


def parse(args: list[str]) -> tuple[Params, Params] | None:
    """The group's and run's params for `[GLOBAL OPTIONS] run [OPTIONS] IMAGE [COMMAND]...`, else None."""
    if os.environ.get(COMPLETE_VAR):
        return None
    try:
        global_params, rest = _options(GLOBAL_OPTIONS, args)
        if not rest or rest[0] != "run":
            return None
        from imagekit.cli.runner import RUN_OPTIONS  # only now: another command must not load the run path

        run_params, positional = _options(RUN_OPTIONS, rest[1:])
    except Declined:
        return None
    if not positional:
        return None
    return global_params, {"image": positional[0], "command": tuple(positional[1:]), **run_params}


def run(parsed: tuple[Params, Params]) -> NoReturn:
    """What click would do with these params: the group's start(), then run's body. ^C or EOF before the
    container takes over are click's Abort, as under click's main."""
    from imagekit.cli.runner import run_container

    global_params, run_params = parsed
    try:
        run_container(start(**global_params), **run_params)  # type: ignore[arg-type]
    except (EOFError, KeyboardInterrupt):
        sys.stderr.write("\n")
        aborted()


def _options(specs: tuple[OptionSpec, ...], args: list[str]) -> tuple[Params, list[str]]:
    """Options up to `--` or the first positional (click's allow_interspersed_args=False), converted, with the
    defaults and environment of those not given; and the arguments left. A long option's spellings all start
    with `--` (the tables have no `-long`), so any other dash starts a cluster of short ones."""
    by_flag = {flag: spec for spec in specs for flag in spec.flags}
    given: dict[str, list[str | None]] = {}  # dest -> the values given, in order (None: a flag)
    rest = list(args)
    while rest:
        arg = rest.pop(0)
        if arg == "--":
            break
        if not arg.startswith("-") or len(arg) == 1:
            rest.insert(0, arg)
            break
        if not arg.startswith("--"):
            _cluster(arg, by_flag, rest, given)
            continue
        name, eq, explicit = arg.partition("=")
        spec = by_flag.get(name)
        if spec is None:
            raise Declined  # no such option
        if spec.is_flag:
            if eq:
                raise Declined  # "does not take a value"
            given.setdefault(spec.dest, []).append(None)
            continue
        if eq:
            rest.insert(0, explicit)
        given.setdefault(spec.dest, []).append(_value(rest))
    return {spec.dest: _converted(spec, given.get(spec.dest)) for spec in specs}, rest


def _cluster(arg: str, by_flag: dict[str, OptionSpec], rest: list[str], given: dict[str, list[str | None]]) -> None:
    """Short options in one argument: flags, then at most one that takes the rest of the argument (or the next
    one) as its value, as in `-it` and `-eK=V`."""
    for at, char in enumerate(arg[1:], start=2):
        spec = by_flag.get("-" + char)
        if spec is None:
            raise Declined
        if spec.is_flag:
            given.setdefault(spec.dest, []).append(None)
            continue
        if at < len(arg):
            rest.insert(0, arg[at:])
        given.setdefault(spec.dest, []).append(_value(rest))
        return


def _value(rest: list[str]) -> str:
    """The option's value: the next argument, whatever it looks like (click's rule for a one-value option)."""
    if not rest:
        raise Declined  # "requires an argument"
    return rest.pop(0)


def _converted(spec: OptionSpec, values: list[str | None] | None) -> object:
    """The param click would pass: True for a given flag, a tuple for a multiple option, the last value else;
    the environment's value or the default when not given."""
    if spec.is_flag:
        return values is not None
    if values is None:
        from_env = os.environ.get(spec.envvar) if spec.envvar else None
        if not from_env:
            return () if spec.multiple else spec.default
        if spec.multiple:
            raise Declined  # click splits a multiple option's variable by its type's rule
        values = [from_env]
    converted = tuple(_typed(spec, value) for value in values if value is not None)
    return converted if spec.multiple else converted[-1]


def _typed(spec: OptionSpec, value: str) -> object:
    """One value as click's type for the option converts it, or Declined where click would refuse it (or the
    fast path does not convert its type)."""
    if spec.choices:
        if value not in spec.choices:
            raise Declined
        return value
    if spec.type == "str":
        return value
    if spec.type == "int":
        try:
            return int(value)
        except ValueError:
            raise Declined from None
    if spec.type == "dir":  # click.Path(file_okay=False): absent is fine; a file or an unreadable path is refused
        try:
            mode = os.stat(value).st_mode
        except OSError:
            return Path(value)
        if stat.S_ISREG(mode) or not os.access(value, os.R_OK):
            raise Declined
        return Path(value)
    raise Declined
