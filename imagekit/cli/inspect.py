"""`imagekit inspect`: any object by name or ID, and the printing every `inspect` command shares.

Without --type, each name is looked up as docker's CLI does (cli/command/system/inspect.go,
inspectAll): as a container, then an image, then a volume, and the first found is shown; a lookup
that finds nothing of its kind (or, for an image, a name that is no reference) passes to the next, any
other failure (a corrupt store) is the answer. imagekit has no networks beyond the bridge, so there is
no network step. A name that is nothing is `no such object: NAME`; as docker, the objects found are
printed and the exit status is 1 if any name failed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import click

from imagekit.cli import report_error
from imagekit.cli.group import cli
from imagekit.errors import BadReference, ContainerNotFound, ImageNotFound, ImagekitError, ObjectNotFound, VolumeNotFound

#: object types in docker's order of lookup
TYPES = ("container", "image", "volume")
#: what each lookup raises for "not one of mine", which lets the next type try
_NOT_MINE = (ContainerNotFound, ImageNotFound, BadReference, VolumeNotFound)


def show(ctx: click.Context, names: tuple[str, ...], fmt: str | None, lookup: Callable[[str], dict[str, Any]]) -> None:
    """Prints what `lookup` gives for each name (a JSON array, or `fmt` rendered once per object); each
    failure is one line on stderr and makes the exit status 1, as `docker inspect` goes past a missing name."""
    from imagekit.cli.store import format_template

    template = format_template(fmt)[0] if fmt else None  # a bad template fails before anything is looked up
    found, failed = [], False
    for name in names:
        try:
            found.append(lookup(name))
        except ImagekitError as err:
            report_error(err)
            failed = True
    if template is not None:
        for info in found:
            click.echo(template.render(info))
    else:
        click.echo(json.dumps(found, indent=4))
    if failed:
        ctx.exit(1)


@cli.command("inspect")
@click.option("-f", "--format", "fmt", metavar="TEMPLATE", help="A Go template per object, e.g. '{{.Id}}' or '{{json .Config}}'.")
@click.option("--type", "kind", type=click.Choice(TYPES), default=None, help="Only look for objects of this type.")
@click.argument("names", nargs=-1, required=True, metavar="NAME|ID...")
@click.pass_context
def inspect(ctx: click.Context, fmt: str | None, kind: str | None, names: tuple[str, ...]) -> None:
    """Show containers, images and volumes as JSON (docker inspect's fields): each NAME is looked up as a
    container, then an image, then a volume, and the first match is shown; a NAME that is nothing is an
    error (exit 1)."""
    from imagekit.cli.containers import inspect_container
    from imagekit.cli.store import inspect_image
    from imagekit.runtime.container import Runtime
    from imagekit.store import Store

    runtime = Runtime(Store(ctx.obj.root))
    finders: dict[str, Callable[[str], dict[str, Any]]] = {
        "container": lambda text: inspect_container(runtime, runtime.containers.find(text)),
        "image": lambda text: inspect_image(runtime.store.find(text)),
        "volume": lambda text: runtime.volumes.get(text).inspect(),
    }

    def lookup(text: str) -> dict[str, Any]:
        if kind is not None:
            return finders[kind](text)
        for finder in finders.values():
            try:
                return finder(text)
            except _NOT_MINE:
                continue
        raise ObjectNotFound(f"no such object: {text}")

    show(ctx, names, fmt, lookup)
