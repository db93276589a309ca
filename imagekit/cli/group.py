"""The `imagekit` command as click runs it: the group with its global options, loading command modules lazily.

Command groups live in sibling modules, one per area, and register themselves on `cli` below when
COMMAND_MODULES has them imported. Options are declared once, as data (imagekit.cli.optionspec), and built
into click's here, so the click-free run path (imagekit.cli.fastpath) reads the same definitions. Failures
common to both paths are translated in imagekit.cli.main; click's own (usage errors, Abort) here.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from imagekit import __version__
from imagekit.cli import GLOBAL_OPTIONS, aborted, start
from imagekit.cli.optionspec import OptionSpec

F = TypeVar("F", bound=Callable[..., Any])


#: Command -> the sibling module that defines it (and registers it on `cli` when imported).
COMMAND_MODULES = {
    "login": "auth",
    "logout": "auth",
    "images": "store",
    "tag": "store",
    "rmi": "store",
    "inspect": "inspect",
    "prune": "store",
    "import": "store",
    "image": "store",
    "pull": "registry",
    "push": "registry",
    "tags": "registry",
    "manifest": "registry",
    "unpack": "layers",
    "build": "build",
    "builder": "build",
    "run": "run",
    "ps": "containers",
    "port": "containers",
    "exec": "run",
    "start": "containers",
    "stop": "containers",
    "kill": "containers",
    "rm": "containers",
    "logs": "containers",
    "container": "containers",
    "volume": "containers",
    "stats": "system",
    "system": "system",
}


class LazyGroup(click.Group):
    """Imports a command's module only when that command is asked for: start-up is a large part of a
    short command's time (`imagekit pull` needs requests, never the layer code; `images` needs neither)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(COMMAND_MODULES))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = COMMAND_MODULES.get(cmd_name)
        if module is not None:
            importlib.import_module(f"imagekit.cli.{module}")
        return super().get_command(ctx, cmd_name)


def click_options(specs: tuple[OptionSpec, ...]) -> Callable[[F], F]:
    """The click options of a table (imagekit.cli.optionspec), in the table's order for --help."""

    def decorate(function: F) -> F:
        for spec in reversed(specs):  # click lists options in decorator order: the last applied comes first
            function = click.option(*spec.flags, spec.dest, help=spec.help, metavar=spec.metavar, envvar=spec.envvar,
                                    show_envvar=spec.envvar is not None,
                                    **_click_kind(spec))(function)
        return function

    return decorate


def _click_kind(spec: OptionSpec) -> dict[str, Any]:
    """What click needs to know about an option's value besides its names and help."""
    if spec.is_flag:
        return {"is_flag": True}
    if spec.type == "bool":
        return {"type": click.BOOL, "default": spec.default, "is_flag": False, "flag_value": True}
    types: dict[str, Any] = {
        "str": None,
        "int": int,
        "dir": click.Path(file_okay=False, path_type=Path),
        "existing-dir": click.Path(exists=True, file_okay=False, path_type=Path),
    }
    kind: dict[str, Any] = {"multiple": spec.multiple, "default": spec.default}
    if spec.choices:
        kind["type"] = click.Choice(list(spec.choices))
    elif types[spec.type] is not None:
        kind["type"] = types[spec.type]
    return kind


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="imagekit")
@click_options(GLOBAL_OPTIONS)
@click.pass_context
def cli(ctx: click.Context, **options: Any) -> None:
    """imagekit: build, move and run OCI images without a daemon."""
    ctx.obj = start(**options)


def click_main(args: list[str]) -> object:
    """The CLI as click runs it (imagekit.cli.main handles the failures common to both paths): the command's status."""
    try:
        return cli.main(args=args, prog_name="imagekit", standalone_mode=False)
    except click.exceptions.Abort:
        aborted()
    except click.ClickException as err:
        err.show()
        sys.exit(err.exit_code)
